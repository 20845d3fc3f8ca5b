"""What differs between SQLite and PostgreSQL outside the SQL text, asked in one place.

The SQL itself (statements written twice because one database can do in one round trip what
the other needs two for) lives in :mod:`mdmserver.storage.sql.statements`; this module answers
"which database is this?" and hands out the dialect's own constructs (its ``INSERT ... ON
CONFLICT``), so no store compares dialect names itself.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.engine import Connection, Engine

SQLITE = "sqlite"
POSTGRESQL = "postgresql"

_NAMED = re.compile(r"(?<!:):([a-z_]+)")


def name(bind: Engine | Connection) -> str:
    """``"sqlite"`` or ``"postgresql"``: the two databases the server runs on."""
    return bind.dialect.name


def is_sqlite(bind: Engine | Connection) -> bool:
    return name(bind) == SQLITE


def is_postgresql(bind: Engine | Connection) -> bool:
    return name(bind) == POSTGRESQL


def upsert_insert(bind: Engine | Connection) -> Any:
    """The dialect's ``insert`` (both have ``on_conflict_do_update`` with the same shape)."""
    return pg_dialect.insert if is_postgresql(bind) else sqlite_dialect.insert


def driver_sql(sql: str, *, sqlite: bool) -> str:
    """A statement written with ``:name`` parameters, in the driver's own paramstyle:
    sqlite3 takes ``:name`` as it is, psycopg wants ``%(name)s``."""
    return sql if sqlite else _NAMED.sub(r"%(\1)s", sql)
