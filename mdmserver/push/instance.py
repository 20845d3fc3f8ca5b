"""The push certificate installed in the instance folder: import it safely, read it, use it.

``push.pem`` holds the certificate, ``push.key`` its private key; both are created with mode
0600 from the start (never written world-readable and tightened afterwards). The installed
certificate's topic counts as an accepted push topic, so devices enrolled for it are accepted.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
from pathlib import Path

from mdmserver.config import Config
from mdmserver.logs import get_logger
from mdmserver.push.cert import (
    PushCertificate,
    PushCertificateError,
    check_renewal,
    load_push_certificate,
)

log = get_logger("push.cert")

EXPIRY_WARNING_DAYS = 30
EXPIRY_URGENT_DAYS = 7
REQUEST_KEY = "push-request.key"  # the key `push-cert csr` made, until its certificate comes


def request_key_path(config: Config) -> Path:
    return config.home / REQUEST_KEY


def expiry_level(days_left: int) -> str:
    """ "ok", "warning" (within 30 days), "urgent" (within 7) or "expired": what to say."""
    if days_left < 0:
        return "expired"
    if days_left < EXPIRY_URGENT_DAYS:
        return "urgent"
    return "warning" if days_left < EXPIRY_WARNING_DAYS else "ok"


def installed(config: Config) -> PushCertificate | None:
    """The installed push certificate, or None when there is none (or it is unusable: logged)."""
    cert_path, key_path = config.resolved_push_cert_file, config.resolved_push_key_file
    if not cert_path.is_file():
        return None
    data = cert_path.read_bytes()
    if key_path.is_file():
        data = data.rstrip(b"\n") + b"\n" + key_path.read_bytes()
    try:
        return load_push_certificate(data)
    except PushCertificateError as exc:
        log.error(
            "push_certificate_unusable",
            extra={"fields": {"path": str(cert_path), "error": str(exc)}},
        )
        return None


def install(
    config: Config, data: bytes, *, password: bytes | None = None, force: bool = False
) -> tuple[PushCertificate, PushCertificate | None]:
    """Check and store a new push certificate; returns (new, replaced or None).

    Refuses an expired certificate, and one whose topic differs from the installed one
    unless ``force`` (devices listen on the old topic and would have to re-enroll).
    """
    request_key, key_path = request_key_path(config), config.resolved_push_key_file
    known = [p.read_bytes() for p in (request_key, key_path) if p.is_file()]
    new = load_push_certificate(data, password, known_keys=known)
    old = installed(config)
    if old is not None:
        check_renewal(old, new, force=force)
    elif new.days_left() < 0:
        raise PushCertificateError(f"the push certificate expired on {new.not_after:%Y-%m-%d}")
    write_private(config.resolved_push_key_file, new.key_pem)
    write_private(config.resolved_push_cert_file, new.cert_pem)
    if request_key.is_file() and request_key.read_bytes().strip() == new.key_pem.strip():
        request_key.unlink()  # it is push.key now
    log.info(
        "push_certificate_installed",
        extra={"fields": {"topic": new.topic, "not_after": new.not_after.isoformat()}},
    )
    return new, old


def with_push_topic(config: Config, now: dt.datetime | None = None) -> Config:
    """The config with the installed certificate's topic accepted; warns when it expires soon."""
    certificate = installed(config)
    if certificate is None:
        return config
    days = certificate.days_left(now)
    fields = {
        "topic": certificate.topic,
        "not_after": certificate.not_after.isoformat(),
        "days_left": days,
    }
    level = expiry_level(days)
    if level == "expired":
        log.error("push_certificate_expired", extra={"fields": fields})
    elif level == "urgent":
        log.error("push_certificate_expiring", extra={"fields": {**fields, "level": level}})
    elif level == "warning":
        log.warning("push_certificate_expiring", extra={"fields": {**fields, "level": level}})
    if certificate.topic in config.push_topics:
        return config
    return dataclasses.replace(config, push_topics=(*config.push_topics, certificate.topic))


def write_private(path: Path, data: bytes) -> None:
    """Write via a 0600 temporary file in the same folder, then rename over the target."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
