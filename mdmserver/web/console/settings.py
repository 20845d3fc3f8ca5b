"""The console's settings: the APNs push certificate (expiry, upload and renewal with the topic
check of ``mdmserver push-cert import``), API keys (created once-shown, revoked), and the
webhook receivers the configuration names (their secret is never shown)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flask import current_app, render_template, request

from mdmserver.admin.api_keys import SCOPES
from mdmserver.admin.errors import AdminError, BadRequest, Unprocessable
from mdmserver.push.cert import PushCertificateError
from mdmserver.push.instance import install, installed
from mdmserver.web.console.auth import actor, admin, require
from mdmserver.web.console.blueprint import bp
from mdmserver.web.runtime import runtime

UPLOAD_MAX = 64 * 1024


def _page(*, status: int = 200, **extra: Any) -> tuple[str, int]:
    config = runtime(current_app).config
    certificate = installed(config)
    webhooks = [
        urlsplit(url)._replace(query="", fragment="").geturl() for url in config.webhook_urls
    ]
    page = render_template(
        "settings.html",
        certificate=certificate,
        keys=admin().api_keys.list(),
        scopes=SCOPES,
        webhooks=webhooks,
        webhook_secret_set=bool(config.webhook_secret),
        **extra,
    )
    return page, status


@bp.get("/settings")
@require("view")
def settings() -> tuple[str, int]:
    return _page()


@bp.post("/settings/push-certificate")
@require("settings.manage")
def push_certificate() -> tuple[str, int]:
    upload = request.files.get("file")
    data = upload.read(UPLOAD_MAX + 1) if upload is not None else b""
    password = request.form.get("password", "").encode() or None
    force = request.form.get("force") == "yes"
    try:
        with admin().audit.record(actor(), "push_cert.install", ["push-certificate"]) as entry:
            if not data or len(data) > UPLOAD_MAX:
                raise BadRequest("choose the certificate file (PEM with its key, or PKCS#12)")
            try:
                new, old = install(
                    runtime(current_app).config, data, password=password, force=force
                )
            except PushCertificateError as exc:
                raise Unprocessable(str(exc)) from None
            entry.detail.update(topic=new.topic, not_after=new.not_after.isoformat())
    except AdminError as exc:
        return _page(status=exc.status, error=exc.message)
    changed = old is not None and old.topic != new.topic
    notice = f"installed the push certificate for {new.topic}, valid until {new.not_after:%Y-%m-%d}"
    if changed:
        notice += "; the topic changed: enrolled devices must enroll again"
    return _page(notice=notice)


@bp.post("/settings/api-keys")
@require("settings.manage")
def api_key_create() -> tuple[str, int]:
    try:
        new = admin().api_keys.create(
            request.form.get("name", ""), request.form.get("scope", "admin"), actor=actor()
        )
    except AdminError as exc:
        return _page(status=exc.status, error=exc.message)
    return _page(new_key=new)


@bp.post("/settings/api-keys/<name>/revoke")
@require("settings.manage")
def api_key_revoke(name: str) -> tuple[str, int]:
    try:
        admin().api_keys.revoke(name, actor=actor())
    except AdminError as exc:
        return _page(status=exc.status, error=exc.message)
    return _page(notice=f"revoked {name}")
