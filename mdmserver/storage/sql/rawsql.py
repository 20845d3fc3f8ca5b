"""The per-request statements, run straight on the DB-API connection.

SQLAlchemy Core costs about 140 µs of Python per statement here, three times what PostgreSQL
takes to answer one; a device poll runs two to four statements. So the hot path (each one a
single autocommit statement: none of them needs a transaction) bypasses the statement
machinery and the engine's pool, on connections of its own. Everything else stays on
SQLAlchemy Core.
"""

from __future__ import annotations

import queue
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Engine

from mdmserver.storage.sql import dialect
from mdmserver.storage.sql.engine import make_engine
from mdmserver.storage.sql.types import driver_timestamp

_MAX_IDLE = 32  # connections kept for reuse; more than the server has threads


class RawSQL:
    def __init__(self, engine: Engine) -> None:
        self.is_sqlite = dialect.is_sqlite(engine)
        # An in-memory SQLite database exists once, on its first engine's own connections.
        self._shared = self.is_sqlite and engine.url.database in (None, "", ":memory:")
        if self._shared:
            self._engine = engine
        else:
            # An engine of its own, only to open connections set up like the main engine's
            # (SQLite's pragmas; autocommit on PostgreSQL, as every statement here commits on
            # its own). They then live in self._idle, not in an SQLAlchemy pool.
            url = engine.url.render_as_string(hide_password=False)
            options = {} if self.is_sqlite else {"isolation_level": "AUTOCOMMIT"}
            self._engine = make_engine(url, **options)
        self._statements: dict[str, str] = {}
        self._idle: queue.SimpleQueue[Any] = queue.SimpleQueue()

    def _driver_sql(self, sql: str) -> str:
        """Write statements as ``:name``; psycopg wants ``%(name)s``."""
        prepared = self._statements.get(sql)
        if prepared is None:
            prepared = dialect.driver_sql(sql, sqlite=self.is_sqlite)
            self._statements[sql] = prepared
        return prepared

    def timestamp(self, value: datetime) -> Any:
        """A time parameter as the column type would have bound it: these statements bypass
        SQLAlchemy's types (see :func:`~mdmserver.storage.sql.types.driver_timestamp`)."""
        return driver_timestamp(value, sqlite=self.is_sqlite)

    @contextmanager
    def cursor(self) -> Iterator[Any]:
        """A cursor on an idle connection of this object's own small pool.

        A device request runs two to four statements here, and SQLAlchemy's pool checkout and
        return (fairy objects, events, a lock) cost ~13% of a poll's CPU under threads; a
        SimpleQueue of connections costs next to nothing. A statement that raises may have
        broken its connection, so that connection is closed rather than reused.
        """
        if self._shared:
            with self._pooled_cursor() as cursor:
                yield cursor
            return
        try:
            connection = self._idle.get_nowait()
        except queue.Empty:
            connection = self._connect()
        cursor = connection.cursor()
        try:
            yield cursor
        except BaseException:
            _close_quietly(connection)
            raise
        cursor.close()
        if self._idle.qsize() < _MAX_IDLE:
            self._idle.put(connection)
        else:
            connection.close()

    def _connect(self) -> Any:
        """A new DB-API connection, made (and set up) by the engine, then left to us."""
        fairy = self._engine.raw_connection()
        fairy.detach()
        connection = fairy.dbapi_connection
        assert connection is not None  # detached, not closed: the connection is ours now
        if not self.is_sqlite:
            connection.autocommit = True
        return connection

    @contextmanager
    def _pooled_cursor(self) -> Iterator[Any]:
        connection = self._engine.raw_connection()
        try:
            cursor = connection.cursor()
            try:
                yield cursor
            finally:
                cursor.close()
        finally:
            connection.close()  # back to the engine's pool

    def one(self, cursor: Any, sql: str, params: Mapping[str, Any]) -> tuple[Any, ...] | None:
        cursor.execute(self._driver_sql(sql), params)
        return cursor.fetchone()

    def run(self, cursor: Any, sql: str, params: Mapping[str, Any]) -> int:
        cursor.execute(self._driver_sql(sql), params)
        return cursor.rowcount

    def dispose(self, close: bool = True) -> None:
        """``close=False`` after a fork: forget the parent's connections without closing them."""
        idle, self._idle = self._idle, queue.SimpleQueue()
        while close:
            try:
                _close_quietly(idle.get_nowait())
            except queue.Empty:
                break
        self._engine.dispose(close=close)


def _close_quietly(connection: Any) -> None:
    with suppress(Exception):  # already broken: nothing left to release
        connection.close()
