"""The WSGI application each ``mdmserver serve`` worker runs (the Procfile's ``web:`` line too).

A server that cannot serve — a bad setting, a database schema behind the code, a database
that cannot be reached — says why in one line per problem and stops, instead of a worker
traceback retried forever, or a server that answers every request with 500. ``serve`` checks
once before any worker starts (:func:`startup_problems`); a worker that still fails to build
the app exits with APP_LOAD_ERROR, and the supervisor stops instead of restarting it.

Nothing here imports Flask: the app itself is built by :func:`mdmserver.web.app.create`
(``mdmserver.wsgi.create`` still names it, loaded on first use).
"""

from __future__ import annotations

import sys
from typing import Any

from sqlalchemy.exc import DBAPIError

from mdmserver.config import ConfigError, load_config
from mdmserver.storage.sql import migrate
from mdmserver.storage.sql.engine import make_engine

APP_LOAD_ERROR = 4  # the exit status of a server that cannot start: not retried


def problems_of(exc: Exception) -> list[str]:
    """What to tell the operator about a startup failure, one line each."""
    if isinstance(exc, ConfigError):
        return exc.problems
    if isinstance(exc, DBAPIError):
        detail = str(exc.orig or exc).strip().splitlines()[0]
        return [f"the database cannot be reached ({detail}): check MDM_DATABASE_URL"]
    return [str(exc)]


def startup_problems() -> list[str]:
    """Check the settings and the schema (migrating the embedded default, once)."""
    try:
        config = load_config()
        engine = make_engine(config.resolved_database_url)
        try:
            if config.migrate_on_start:
                migrate.upgrade(engine)
            else:
                migrate.require_current(engine)
        finally:
            engine.dispose()
    except (ConfigError, migrate.SchemaNotCurrent, DBAPIError) as exc:
        return problems_of(exc)
    return []


def say(problems: list[str]) -> None:
    for problem in problems:
        sys.stderr.write(f"mdmserver: {problem}\n")
    sys.stderr.flush()


def __getattr__(name: str) -> Any:
    """``mdmserver.wsgi.create``, the worker's app factory, lives with the web layer."""
    if name == "create":
        from mdmserver.web.app import create

        return create
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
