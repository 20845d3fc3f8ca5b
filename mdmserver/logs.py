"""Structured (JSON lines) logging, with the current request id on every record.

Call sites log an event name plus fields: ``log.info("checkin", extra={"fields": {...}})``.
Secrets never go into fields: keys, tokens and certificates are logged by fingerprint only.
"""

from __future__ import annotations

import json
import logging
import sys
import time
import uuid
from contextvars import ContextVar
from typing import Any

request_id_var: ContextVar[str | None] = ContextVar("mdm_request_id", default=None)


def request_id_for(incoming: str) -> str:
    """A caller's X-Request-ID when it is sane (so a proxy's id joins our logs), else a new one."""
    return incoming if 0 < len(incoming) <= 64 and incoming.isprintable() else uuid.uuid4().hex


_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "fields"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line, so log pipelines can index fields without regexes."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        request_id = request_id_var.get()
        if request_id:
            entry["request_id"] = request_id
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            entry.update(fields)
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, separators=(",", ":"))


def configure_logging(level: str = "INFO", json_lines: bool = True) -> None:
    """Install one stderr handler on the package logger (idempotent across app factories)."""
    logger = logging.getLogger("mdmserver")
    logger.setLevel(level.upper())
    # Records still propagate: the root logger has no handler in production (no duplicates),
    # and test tools that listen on the root logger keep seeing them.
    for handler in list(logger.handlers):
        if getattr(handler, "_mdmserver", False):
            logger.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler._mdmserver = True  # type: ignore[attr-defined]
    handler.setFormatter(
        JsonFormatter() if json_lines else logging.Formatter("%(levelname)s %(name)s %(message)s")
    )
    logger.addHandler(handler)


def get_logger(name: str) -> logging.Logger:
    return logging.getLogger(f"mdmserver.{name}")


_access = get_logger("access")


def log_request(method: str, path: str, status: int, started: float) -> None:
    """The access-log line of one HTTP request (``started``: its time.perf_counter())."""
    _access.info(
        "request",
        extra={
            "fields": {
                "method": method,
                "path": path,
                "status": status,
                "ms": round((time.perf_counter() - started) * 1000, 2),
            }
        },
    )
