"""The WSGI application gunicorn loads (the Procfile's ``web:`` line, ``mdmserver serve``).

A process that cannot serve — a bad setting, a database schema behind the code, a database
that cannot be reached — says why in one line per problem and stops the whole server (exit
status 4, gunicorn's "application failed to load"), instead of a worker traceback that
gunicorn retries, or a server that answers every request with 500.
"""

from __future__ import annotations

import os
import sys

from flask import Flask
from sqlalchemy.exc import DBAPIError

from mdmserver.app import create_app
from mdmserver.config import ConfigError
from mdmserver.storage.migrate import SchemaNotCurrent

APP_LOAD_ERROR = 4  # gunicorn's arbiter halts (instead of respawning) on this exit status


def create() -> Flask:
    try:
        return create_app()
    except ConfigError as exc:
        problems = exc.problems
    except SchemaNotCurrent as exc:
        problems = [str(exc)]
    except DBAPIError as exc:
        detail = str(exc.orig or exc).strip().splitlines()[0]
        problems = [f"the database cannot be reached ({detail}): check MDM_DATABASE_URL"]
    for problem in problems:
        sys.stderr.write(f"mdmserver: {problem}\n")
    sys.stderr.flush()
    os._exit(APP_LOAD_ERROR)
