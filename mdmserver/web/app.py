"""The Flask app factory: the web side of one server.

The server itself (stores, the device service stack, every feature, the job backend) is built
by :func:`mdmserver.assembly.build_server`; this module only serves it over HTTP: device
authentication, request ids and the access log, error handlers, the bare WSGI layer for the two
device endpoints, and every blueprint, registered here in one list.
"""

from __future__ import annotations

import os
import time
from typing import Any

from flask import Blueprint, Flask, Response, g, request
from sqlalchemy.exc import DBAPIError

from mdmserver.assembly import Server, build_server
from mdmserver.config import Config, ConfigError, load_config
from mdmserver.logs import configure_logging, log_request, request_id_for, request_id_var
from mdmserver.storage.sql import migrate
from mdmserver.web import api as admin_api
from mdmserver.web import app_files, ddm_assets, enroll, enroll_ota, mdm, metrics, scep, trust
from mdmserver.web.api import apps as apps_api
from mdmserver.web.api import commands as commands_api
from mdmserver.web.api import declarations as declarations_api
from mdmserver.web.api import devices as devices_api
from mdmserver.web.api import enrollment_tokens as enrollment_tokens_api
from mdmserver.web.api import openapi as openapi_api
from mdmserver.web.api import profiles as profiles_api
from mdmserver.web.api import push as push_api
from mdmserver.web.api import queue as queue_api
from mdmserver.web.console import bp as console_bp
from mdmserver.web.console.auth import configure_sessions
from mdmserver.web.device_auth import DeviceAuthenticator
from mdmserver.web.errors import register_error_handlers
from mdmserver.web.runtime import MDMApp
from mdmserver.wsgi import APP_LOAD_ERROR, problems_of, say

# The admin API's resources: under /api/v1 and named ``api.<resource>``, so the api blueprint's
# key check, audit and error handlers apply to them exactly as to a nested blueprint.
API = {"url_prefix": admin_api.API_PREFIX, "name_prefix": admin_api.bp.name}


def blueprints() -> list[tuple[Blueprint, dict[str, str]]]:
    """Every blueprint the server serves, with its registration options."""
    return [
        (scep.bp, {}),  # /scep: identity certificates
        (enroll.bp, {}),  # /mdm/enroll: enrollment profiles
        (enroll_ota.bp, {}),  # over-the-air enrollment, phase 2 (issue #12)
        (metrics.bp, {}),  # /metrics
        (ddm_assets.bp, {}),  # DDM assets devices download
        (app_files.bp, {}),  # app packages and manifests devices download
        (trust.bp, {}),  # device trust for relying services, compliance policy (issue #7)
        (admin_api.bp, {}),  # /api/v1: the admin API's key check, audit and errors
        (devices_api.bp, API),
        (queue_api.bp, API),
        (commands_api.bp, API),
        (enrollment_tokens_api.bp, API),
        (openapi_api.bp, API),
        (profiles_api.bp, API),  # configuration profiles (issue #6)
        (push_api.bp, API),  # push status and wakes (issue #4)
        (declarations_api.bp, API),  # declarations, OS updates (issue #15)
        (apps_api.bp, API),  # app catalog, Apps and Books licenses (issue #17)
        (console_bp, {}),  # the web console at / (issue #16)
    ]


def create_app(config: Config | None = None, **overrides: Any) -> Flask:
    config = config or load_config(overrides=overrides)
    configure_logging(config.log_level, config.log_json)
    server = build_server(config)
    return serve(server)


def create() -> Flask:
    """The app one ``mdmserver serve`` worker runs; a server that cannot start says why and
    exits with APP_LOAD_ERROR (mdmserver/wsgi.py), which the supervisor does not retry."""
    try:
        return create_app()
    except (ConfigError, migrate.SchemaNotCurrent, DBAPIError) as exc:
        say(problems_of(exc))
    os._exit(APP_LOAD_ERROR)


def serve(server: Server) -> MDMApp:
    """The Flask app serving ``server`` (which it closes with ``runtime(app).close()``)."""
    config = server.config
    app = MDMApp("mdmserver", instance_path=str(config.home.resolve()))
    app.config["MAX_CONTENT_LENGTH"] = config.max_body_bytes
    app.server = server
    app.authenticator = DeviceAuthenticator(
        server.device_cas,
        config.client_cert_header,
        config.trusted_proxies,
        own_ca=server.own_ca,
    )
    _install_request_ids(app)
    register_error_handlers(app)
    admin_api.register_api_errors(app)
    configure_sessions(app, config.home)  # the console's session cookie
    for blueprint, options in blueprints():
        app.register_blueprint(blueprint, **options)
    app.wsgi_app = mdm.DeviceEndpoints(server, app.authenticator, app.wsgi_app)  # type: ignore[method-assign]
    return app


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
