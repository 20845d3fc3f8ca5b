"""The Flask app factory: configuration, storage, the service stack and the blueprints."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any, cast

from cryptography import x509
from flask import Flask, Response, g, request

from mdmserver.apps.reconcile import AppReconciler
from mdmserver.config import Config, load_config
from mdmserver.crypto.ca import load_pem_certificates
from mdmserver.crypto.trust import TrustStore
from mdmserver.enrollment.instance import CA_CERT, CA_KEY
from mdmserver.instance_files import ensure_home
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
from mdmserver.service.last_seen import SeenEvents, SeenRecorder
from mdmserver.service.maintenance import upkeep
from mdmserver.service.next_command import Step, build_steps
from mdmserver.service.rate_limits import build_rate_limiter
from mdmserver.service.reenroll import ReenrollRule
from mdmserver.service.renewal import RenewalStep
from mdmserver.service.wakes import PushQueued, WakingStorage
from mdmserver.service.webhooks import Emit, WebhookEvents
from mdmserver.storage import migrate
from mdmserver.storage.base import Storage
from mdmserver.storage.engine import make_engine
from mdmserver.storage.enrollment_store import EnrollmentStore
from mdmserver.storage.sql import SQLStorage
from mdmserver.web import app_files, ddm_assets, enroll, enroll_ota, mdm, metrics, scep
from mdmserver.web.api import apps as apps_api  # noqa: F401 (nests /api/v1/apps)
from mdmserver.web.api import declarations as declarations_api  # noqa: F401 (nests routes)
from mdmserver.web.api import profiles as profiles_api  # noqa: F401 (nests /api/v1/profiles)
from mdmserver.web.api import push as push_api  # noqa: F401 (nests /api/v1 push routes)
from mdmserver.web.api import register_api
from mdmserver.web.apps_runtime import install_apps
from mdmserver.web.console import install_console
from mdmserver.web.ddm_runtime import install_ddm
from mdmserver.web.device_auth import DeviceAuthenticator
from mdmserver.web.enrollment_runtime import EXTENSION as ENROLLMENT
from mdmserver.web.enrollment_runtime import build_enrollment
from mdmserver.web.errors import register_error_handlers
from mdmserver.web.profiles_runtime import EXTENSION as PROFILES
from mdmserver.web.profiles_runtime import install_profiles
from mdmserver.web.runtime import EXTENSION, Runtime, runtime
from mdmserver.web.trust import EXTENSION as INVENTORY
from mdmserver.web.trust import install_trust

log = get_logger("app")


def create_app(config: Config | None = None, **overrides: Any) -> Flask:
    config = config or load_config(overrides=overrides)
    configure_logging(config.log_level, config.log_json)
    ensure_home(config.home)
    config = with_push_topic(config)  # the installed push certificate's topic is accepted

    app = Flask("mdmserver", instance_path=str(config.home.resolve()))
    app.config["MAX_CONTENT_LENGTH"] = config.max_body_bytes

    if config.reenroll == "open":
        log.warning(
            "reenroll_open",
            extra={
                "fields": {
                    "detail": "reenroll = open: any identity can take over an enrolled device"
                }
            },
        )
    engine = make_engine(config.resolved_database_url)
    if config.migrate_on_start:
        migrate.upgrade(engine)
    else:
        migrate.require_current(engine)  # a shared database is migrated by the release step
    storage = SQLStorage(engine)
    hooks = Hooks()
    enrollment_store = EnrollmentStore(engine)
    jobs = build_jobs(config, engine)
    rate_limiter = build_rate_limiter(config, engine)
    webhooks = jobs.emitter.emit if jobs.emitter is not None else None
    # Features queue commands through this one, so each is pushed right away (service.wakes);
    # the admin asks for its pushes itself.
    waking = WakingStorage(storage, jobs.pusher.request_push)
    seen = SeenRecorder(storage)
    steps = build_steps(queue=storage)  # the features' steps join below, once they are built
    app.extensions[EXTENSION] = Runtime(
        config=config,
        engine=engine,
        storage=cast(Storage, waking),
        service=build_service(
            storage, config, enrollment_store, hooks, webhooks, waking, seen, steps=steps
        ),
        hooks=hooks,
        authenticator=DeviceAuthenticator(
            load_trust(config),
            config.client_cert_header,
            config.trusted_proxies,
            own_ca=issuing_ca(config),
        ),
        admin=build_admin(engine, storage, enrollment_store, wake=jobs.pusher.request_push),
        pusher=jobs.pusher,
        jobs=jobs,
        rate_limiter=rate_limiter,
        seen=seen,
    )
    register_database_metrics(app.extensions[EXTENSION].metrics, engine)
    register_push_metrics(
        app.extensions[EXTENSION].metrics, jobs.pusher, config.resolved_push_cert_file
    )
    install_profiles(app)  # profile hooks, identity-cert recording, signing jobs (issue #6)
    install_trust(app)  # inventory + compliance hooks, trust API and policy (issue #7)
    install_ddm(app)  # declarative management, its status channel feeding compliance (#15)
    install_apps(app)  # app catalog, Apps and Books licenses (issue #17)

    _install_request_ids(app)
    register_error_handlers(app)
    enrollment = build_enrollment(config, enrollment_store, rate_limiter)
    app.extensions[ENROLLMENT] = enrollment
    # What a device gets next: the order is service/next_command.py's.
    apps = hooks.readers.apps
    steps[:] = build_steps(
        queue=storage,
        renewal=RenewalStep(
            enrollment_store,
            waking,
            enrollment.profiles,
            window=timedelta(days=config.identity_renewal_days),
        )
        if enrollment.profiles is not None
        else None,
        profiles=app.extensions[PROFILES].service,
        apps=apps if isinstance(apps, AppReconciler) else None,
        remediation=app.extensions[INVENTORY].compliance.remediator,
    )
    app.wsgi_app = mdm.DeviceEndpoints(partial(runtime, app), app.wsgi_app)  # type: ignore[method-assign]
    app.register_blueprint(scep.bp)
    app.register_blueprint(enroll.bp)
    app.register_blueprint(enroll_ota.bp)  # over-the-air enrollment, phase 2 (issue #12)
    app.register_blueprint(metrics.bp)
    app.register_blueprint(ddm_assets.bp)
    app.register_blueprint(app_files.bp)
    register_api(app)
    install_console(app, config.home)  # the web console at / (issue #16)
    # Upkeep (renewals, inventory refresh, stale compliance) runs with the push scan.
    jobs.dispatcher.maintenance = upkeep(app)
    return app


def build_service(
    storage: Storage,
    config: Config,
    identities: EnrollmentStore | None = None,
    hooks: Hooks | None = None,
    webhooks: Emit | None = None,
    waking: WakingStorage | None = None,
    seen: SeenRecorder | None = None,
    *,
    steps: Sequence[Step] | None = None,
) -> MDMService:
    """The service stack, innermost first: core handlers, webhook events, pushes for what the
    request queued, last seen, certificate binding."""
    core = CoreService(
        CheckinHandlers(
            storage,
            config.push_topics,
            allow_user_auth=config.user_authenticate == "allow",
            hooks=hooks,
        ),
        CommandLoop(storage, steps if steps is not None else build_steps(queue=storage), hooks),
    )
    inner: MDMService = core if webhooks is None else WebhookEvents(core, webhooks)
    if waking is not None:
        inner = PushQueued(inner, waking)
    if seen is not None:
        inner = SeenEvents(inner, seen)
    reenroll = None
    if identities is not None:
        reenroll = ReenrollRule(identities, strict=config.reenroll == "strict")
    return CertAuth(inner, storage, identities, reenroll)


def load_trust(config: Config) -> TrustStore | None:
    """The device CAs: the server's own CA plus any an organisation configured (whose
    identities may come without an extendedKeyUsage)."""
    own = config.resolved_ca_cert_file
    cas = load_pem_certificates(own.read_bytes()) if own.is_file() else []
    extra = []
    for path in (Path(value) for value in config.device_ca_files):
        if not path.is_file():
            raise FileNotFoundError(f"device CA file {path} does not exist")
        extra.extend(load_pem_certificates(path.read_bytes()))
    if not cas and not extra:
        log.warning(
            "no_device_ca",
            extra={"fields": {"detail": "no device CA configured: every device is refused"}},
        )
        return None
    return TrustStore([*cas, *extra], eku_optional=extra)


def issuing_ca(config: Config) -> x509.Certificate | None:
    """The CA our SCEP server issues with (MDM_HOME/ca.pem beside its key), if there is one."""
    cert, key = config.home / CA_CERT, config.home / CA_KEY
    if not (cert.is_file() and key.is_file()):
        return None
    return load_pem_certificates(cert.read_bytes())[0]


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
