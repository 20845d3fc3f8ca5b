"""Throwaway PostgreSQL databases for tests and benchmarks.

Each run gets a database of its own on a shared server (so runs never see each other's rows)
and drops it afterwards, even when connections are still open (a crashed server process).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine, text

from mdmserver.storage.sql.engine import normalise_url


def check_server(server_url: str) -> None:
    """Raise if the PostgreSQL server at ``server_url`` is absent or refuses us."""
    engine = create_engine(normalise_url(server_url), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    finally:
        engine.dispose()


@contextmanager
def scratch_database(server_url: str, prefix: str = "mdm_scratch") -> Iterator[str]:
    """Create an empty database on the server ``server_url`` points at; yield its URL.

    ``server_url`` names any database the role may connect to (it is only used to run
    CREATE / DROP DATABASE); the yielded URL differs from it only in the database name.
    """
    server = normalise_url(server_url)
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield server.rsplit("/", 1)[0] + f"/{name}"
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()
