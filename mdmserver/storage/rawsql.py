"""The per-request statements, run straight on the DB-API connection.

SQLAlchemy Core costs about 140 µs of Python per statement here, three times what PostgreSQL
takes to answer one; a device poll runs three or four statements. So the hot path (each one a
single autocommit statement: none of them needs a transaction) bypasses the statement
machinery but keeps the engine's connection pool. Everything else stays on SQLAlchemy Core.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import create_engine
from sqlalchemy.engine import Engine

from mdmserver.storage.engine import make_engine

_NAMED = re.compile(r"(?<!:):([a-z_]+)")


class RawSQL:
    def __init__(self, engine: Engine) -> None:
        self.is_sqlite = engine.dialect.name == "sqlite"
        # Every statement here commits on its own, so a connection coming back to the pool has
        # no transaction to roll back: the pool's reset (a rollback, and on PostgreSQL a round
        # trip costing ~2/3 of a short query) is skipped on this engine of its own.
        if self.is_sqlite and engine.url.database in (None, "", ":memory:"):
            self._engine = engine  # an in-memory database exists once, on its first engine
        elif self.is_sqlite:
            url = engine.url.render_as_string(hide_password=False)
            self._engine = make_engine(url, pool_reset_on_return=None)
        else:
            self._engine = create_engine(
                engine.url,
                isolation_level="AUTOCOMMIT",
                pool_reset_on_return=None,
                pool_size=8,
                max_overflow=16,
            )
        self._statements: dict[str, str] = {}

    def _driver_sql(self, sql: str) -> str:
        """Write statements as ``:name``; psycopg wants ``%(name)s``."""
        prepared = self._statements.get(sql)
        if prepared is None:
            prepared = sql if self.is_sqlite else _NAMED.sub(r"%(\1)s", sql)
            self._statements[sql] = prepared
        return prepared

    def timestamp(self, value: datetime) -> Any:
        """SQLite keeps datetimes as text in SQLAlchemy's layout, which must compare as text."""
        if self.is_sqlite:
            return value.strftime("%Y-%m-%d %H:%M:%S.%f")
        return value

    @contextmanager
    def cursor(self) -> Iterator[Any]:
        connection = self._engine.raw_connection()
        try:
            cursor = connection.cursor()
            try:
                yield cursor
            finally:
                cursor.close()
        finally:
            connection.close()  # back to the pool

    def one(self, cursor: Any, sql: str, params: Mapping[str, Any]) -> tuple[Any, ...] | None:
        cursor.execute(self._driver_sql(sql), params)
        return cursor.fetchone()

    def run(self, cursor: Any, sql: str, params: Mapping[str, Any]) -> int:
        cursor.execute(self._driver_sql(sql), params)
        return cursor.rowcount

    def dispose(self, close: bool = True) -> None:
        """``close=False`` after a fork: forget the parent's connections without closing them."""
        self._engine.dispose(close=close)
