"""Gunicorn settings for the Procfile's ``web:`` line (``--config python:mdmserver.gunicorn_conf``).

The master checks the settings and the database schema once, before it starts any worker:
one line per problem and exit status 4, rather than every worker failing on its own.
"""

from __future__ import annotations

from typing import Any

from mdmserver.wsgi import APP_LOAD_ERROR, say, startup_problems


def on_starting(server: Any) -> None:
    problems = startup_problems()
    if problems:
        say(problems)
        raise SystemExit(APP_LOAD_ERROR)
