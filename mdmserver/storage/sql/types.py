"""Time in the database: one column type, one clock, one layout for the driver paths.

Every timestamp the server stores is UTC. PostgreSQL keeps them as ``timestamptz``; SQLite has
no time type, and SQLAlchemy keeps a datetime there as text in its own layout, without the
offset, so it comes back naive. :class:`UTCDateTime` hides that difference: whatever goes in
is turned into UTC, and what comes out is always an aware UTC datetime, on both databases.

The few statements that run straight on the DB-API cursor (the device hot path, and the bulk
writes of push results and the outbox) bypass SQLAlchemy's types, so they bind their times
through :func:`driver_timestamp`, which writes exactly what the column type would have.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

# SQLAlchemy's own text layout for a datetime on SQLite: stored and compared as text, so a
# value bound by hand must use exactly this layout (a different one would sort differently).
SQLITE_LAYOUT = "%Y-%m-%d %H:%M:%S.%f"


def utcnow() -> datetime:
    """Now, as an aware UTC datetime (the only clock the storage layer reads)."""
    return datetime.now(UTC)


def as_utc(value: datetime | None) -> datetime | None:
    """``value`` as an aware UTC datetime; a naive one is taken to be UTC already."""
    if value is None or value.tzinfo is UTC:
        return value
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def driver_timestamp(value: datetime, *, sqlite: bool) -> Any:
    """``value`` ready for a DB-API parameter: text in SQLAlchemy's layout on SQLite, an
    aware UTC datetime on PostgreSQL (psycopg sends it as timestamptz)."""
    utc = as_utc(value)
    assert utc is not None
    if sqlite:
        return utc.strftime(SQLITE_LAYOUT)
    return utc


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp column: ``timestamptz`` on PostgreSQL, naive UTC text on SQLite, and an
    aware UTC datetime in Python either way."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        utc = as_utc(value)
        if utc is not None and dialect.name == "sqlite":
            return utc.replace(tzinfo=None)  # SQLite would drop the offset, not convert it
        return utc

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return as_utc(value)
