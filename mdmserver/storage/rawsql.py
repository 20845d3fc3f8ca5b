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

_NAMED = re.compile(r"(?<!:):([a-z_]+)")


class RawSQL:
    def __init__(self, engine: Engine) -> None:
        self.is_sqlite = engine.dialect.name == "sqlite"
        if self.is_sqlite:
            # The SQLite engine's connections are already in autocommit mode.
            self._engine = engine
        else:
            # Autocommit leaves no transaction to roll back when a connection returns to the
            # pool, so the pool's reset (a round trip, ~2/3 of a short query's cost) is skipped.
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
        if not self.is_sqlite:
            self._engine.dispose(close=close)
