"""The Flask app factory: configuration, storage, the service stack and the blueprints."""

from __future__ import annotations

import time
from functools import partial
from pathlib import Path
from typing import Any

from flask import Flask, Response, g, request

from mdmserver.config import Config, load_config
from mdmserver.crypto.ca import load_pem_certificates
from mdmserver.crypto.trust import TrustStore
from mdmserver.jobs.metrics import register_push_metrics
from mdmserver.jobs.runtime import build_jobs
from mdmserver.logs import (
    configure_logging,
    get_logger,
    log_request,
    request_id_for,
    request_id_var,
)
from mdmserver.metrics.database import register_database_metrics
from mdmserver.push.instance import with_push_topic
from mdmserver.service.admin import build_admin
from mdmserver.service.base import MDMService
from mdmserver.service.certauth import CertAuth
from mdmserver.service.checkin import CheckinHandlers
from mdmserver.service.connect import CommandLoop
from mdmserver.service.core import CoreService
from mdmserver.service.hooks import Hooks
from mdmserver.service.maintenance import maintenance_tasks, run_maintenance
from mdmserver.service.next_command import queued_command
from mdmserver.service.webhooks import Emit, WebhookEvents
from mdmserver.storage import migrate
from mdmserver.storage.base import Storage
from mdmserver.storage.engine import make_engine
from mdmserver.storage.enrollment_store import EnrollmentStore
from mdmserver.storage.sql import SQLStorage
from mdmserver.web import app_files, enroll, mdm, metrics, scep
from mdmserver.web.api import apps as apps_api  # noqa: F401 (nests /api/v1/apps)
from mdmserver.web.api import profiles as profiles_api  # noqa: F401 (nests /api/v1/profiles)
from mdmserver.web.api import push as push_api  # noqa: F401 (nests /api/v1 push routes)
from mdmserver.web.api import register_api
from mdmserver.web.apps_runtime import install_apps
from mdmserver.web.device_auth import DeviceAuthenticator
from mdmserver.web.enrollment_runtime import EXTENSION as ENROLLMENT
from mdmserver.web.enrollment_runtime import build_enrollment
from mdmserver.web.errors import register_error_handlers
from mdmserver.web.profiles_runtime import install_profiles
from mdmserver.web.runtime import EXTENSION, Runtime, runtime
from mdmserver.web.trust import install_trust

log = get_logger("app")


def create_app(config: Config | None = None, **overrides: Any) -> Flask:
    config = config or load_config(overrides=overrides)
    configure_logging(config.log_level, config.log_json)
    config.home.mkdir(parents=True, exist_ok=True)
    config = with_push_topic(config)  # the installed push certificate's topic is accepted

    app = Flask("mdmserver", instance_path=str(config.home.resolve()))
    app.config["MAX_CONTENT_LENGTH"] = config.max_body_bytes

    engine = make_engine(config.resolved_database_url)
    if config.migrate_on_start:
        migrate.upgrade(engine)
    storage = SQLStorage(engine)
    hooks = Hooks()
    enrollment_store = EnrollmentStore(engine)
    jobs = build_jobs(config, engine)
    webhooks = jobs.emitter.emit if jobs.emitter is not None else None
    app.extensions[EXTENSION] = Runtime(
        config=config,
        engine=engine,
        storage=storage,
        service=build_service(storage, config, enrollment_store, hooks, webhooks),
        hooks=hooks,
        authenticator=DeviceAuthenticator(load_trust(config), config.client_cert_header),
        admin=build_admin(engine, storage, enrollment_store, wake=jobs.pusher.request_push),
        pusher=jobs.pusher,
        jobs=jobs,
    )
    register_database_metrics(app.extensions[EXTENSION].metrics, engine)
    register_push_metrics(
        app.extensions[EXTENSION].metrics, jobs.pusher, config.resolved_push_cert_file
    )
    install_profiles(app)  # profile hooks, identity-cert recording, signing jobs (issue #6)
    install_trust(app)  # inventory + compliance hooks, trust API and policy (issue #7)
    install_apps(app)  # app catalog, Apps and Books licenses (issue #17)

    _install_request_ids(app)
    register_error_handlers(app)
    app.extensions[ENROLLMENT] = build_enrollment(config, enrollment_store)
    app.wsgi_app = mdm.DeviceEndpoints(partial(runtime, app), app.wsgi_app)  # type: ignore[method-assign]
    app.register_blueprint(scep.bp)
    app.register_blueprint(enroll.bp)
    app.register_blueprint(metrics.bp)
    app.register_blueprint(app_files.bp)
    register_api(app)
    # Upkeep (renewals, inventory refresh, stale compliance) runs with the push scan.
    jobs.dispatcher.maintenance = partial(run_maintenance, maintenance_tasks(app))
    return app


def build_service(
    storage: Storage,
    config: Config,
    identities: EnrollmentStore | None = None,
    hooks: Hooks | None = None,
    webhooks: Emit | None = None,
) -> MDMService:
    """The service stack, innermost first: core handlers, webhook events, certificate binding."""
    core = CoreService(
        CheckinHandlers(
            storage,
            config.push_topics,
            allow_user_auth=config.user_authenticate == "allow",
            hooks=hooks,
        ),
        CommandLoop(storage, [queued_command(storage)], hooks),
    )
    inner: MDMService = core if webhooks is None else WebhookEvents(core, webhooks)
    return CertAuth(inner, storage, identities)


def load_trust(config: Config) -> TrustStore | None:
    """The device CAs: the server's own CA plus any an organisation configured."""
    paths = [config.resolved_ca_cert_file, *(Path(value) for value in config.device_ca_files)]
    cas = []
    for path in paths:
        if path.is_file():
            cas.extend(load_pem_certificates(path.read_bytes()))
        elif path != config.resolved_ca_cert_file:
            raise FileNotFoundError(f"device CA file {path} does not exist")
    if not cas:
        log.warning(
            "no_device_ca",
            extra={"fields": {"detail": "no device CA configured: every device is refused"}},
        )
        return None
    return TrustStore(cas)


def _install_request_ids(app: Flask) -> None:
    @app.before_request
    def _start() -> None:
        rid = request_id_for(request.headers.get("X-Request-ID", ""))
        g.request_id = rid
        g.request_token = request_id_var.set(rid)
        g.started = time.perf_counter()

    @app.after_request
    def _finish(response: Response) -> Response:
        rid = g.get("request_id")
        if rid:
            response.headers["X-Request-ID"] = rid
            log_request(request.method, request.path, response.status_code, g.started)
        return response

    @app.teardown_request
    def _clear(_exc: BaseException | None) -> None:
        token = g.get("request_token")
        if token is not None:
            request_id_var.reset(token)
