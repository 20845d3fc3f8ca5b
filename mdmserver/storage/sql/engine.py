"""Database engines: SQLite (embedded default, WAL) and PostgreSQL (production)."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine, make_url

from mdmserver.instance_files import private_file


def normalise_url(url: str) -> str:
    """Let people write ``postgresql://``; we always drive PostgreSQL with psycopg 3."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def make_engine(url: str, **kwargs: Any) -> Engine:
    url = normalise_url(url)
    if url.startswith("sqlite"):
        return _sqlite_engine(url, **kwargs)
    kwargs.setdefault("pool_size", 8)
    kwargs.setdefault("max_overflow", 16)
    return create_engine(url, **kwargs)


def _sqlite_file(url: str) -> None:
    """Create the database file 0600 before SQLite does (it would follow the umask, 0644 by
    default); SQLite gives the -wal and -shm files the database file's mode."""
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    path = Path(database)
    if path.parent.is_dir():
        private_file(path)
        for suffix in ("-wal", "-shm"):
            side = path.with_name(path.name + suffix)
            if side.exists():
                private_file(side)


def _sqlite_engine(url: str, **kwargs: Any) -> Engine:
    _sqlite_file(url)
    # isolation_level=None hands transaction control to us, so that every transaction can
    # start with BEGIN IMMEDIATE: a deferred transaction that reads and then writes fails at
    # once with "database is locked" when another process wrote in between, instead of waiting.
    engine = create_engine(
        url,
        connect_args={"check_same_thread": False, "timeout": 30, "isolation_level": None},
        **kwargs,
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        # The wait first: switching a new file to WAL takes a lock another process may hold.
        cursor.execute("PRAGMA busy_timeout=30000")
        _enable_wal(cursor)
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def _enable_wal(cursor: Any, timeout: float = 30.0) -> None:
    """Switch the file to WAL (it stays so), waiting while another connection holds it.

    SQLite answers "database is locked" at once here, without calling the busy handler, when
    several processes open a brand-new file together (gunicorn workers on a first start).
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)
