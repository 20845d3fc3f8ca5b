"""The SQL implementation of the storage ports (SQLAlchemy Core on SQLite and PostgreSQL).

- :mod:`.types`: the UTC column type and the one clock (``utcnow``);
- :mod:`.dialect`: what differs between the two databases, asked in one place;
- :mod:`.statements`: the device hot path's statements, each with its dialect variants;
- :mod:`.device_store`: :class:`SQLStorage`, the check-in, queue, certificate binding and
  last-seen ports.

``SQLStorage`` is loaded on first use: the schema imports :mod:`.types`, and the store imports
the schema, so importing the store here eagerly would be a cycle.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mdmserver.storage.sql.device_store import SQLStorage

__all__ = ["SQLStorage"]


def __getattr__(name: str) -> object:
    if name == "SQLStorage":
        from mdmserver.storage.sql.device_store import SQLStorage

        return SQLStorage
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
