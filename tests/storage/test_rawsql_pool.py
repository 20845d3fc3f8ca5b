"""The hot path's own connection pool: connections are reused, a broken one is dropped, and
the next request gets a working one (a database restart costs one failed request, not many)."""

from __future__ import annotations

import sqlite3

import psycopg
import pytest
from sqlalchemy import text

from mdmserver.storage.sql import migrate
from mdmserver.storage.sql.engine import make_engine
from mdmserver.storage.sql.rawsql import RawSQL

PROBE = "SELECT 1 WHERE :one = 1"


@pytest.fixture
def raw(database_url):
    engine = make_engine(database_url)
    migrate.upgrade(engine)
    raw = RawSQL(engine)
    yield raw
    raw.dispose()
    engine.dispose()


def _connection_of(raw: RawSQL) -> object:
    with raw.cursor() as cursor:
        assert raw.one(cursor, PROBE, {"one": 1}) == (1,)
        return cursor.connection


def test_connections_are_reused(raw):
    assert _connection_of(raw) is _connection_of(raw)


def test_a_broken_connection_is_dropped_and_replaced(raw, database_url):
    first = _connection_of(raw)
    engine = make_engine(database_url)
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            )
            with pytest.raises(psycopg.OperationalError), raw.cursor() as cursor:  # hung up
                raw.one(cursor, PROBE, {"one": 1})
        else:  # nothing can kill a SQLite connection from outside: a failing statement will do
            with pytest.raises(sqlite3.OperationalError), raw.cursor() as cursor:
                raw.one(cursor, "SELECT * FROM no_such_table", {})
    engine.dispose()
    replacement = _connection_of(raw)
    assert replacement is not first
    assert _connection_of(raw) is replacement


def test_dispose_after_fork_forgets_without_closing(raw):
    first = _connection_of(raw)
    raw.dispose(close=False)  # what a forked child does: the parent still owns these
    assert _connection_of(raw) is not first
    cursor = first.cursor()  # type: ignore[attr-defined]
    cursor.execute("SELECT 1")  # still open for its owner
    cursor.close()
