"""The push outbox: push requests written to the database first, handed to the job queue later.

Writing the request where the command is stored means a Redis outage cannot lose a push: the
row waits until a dispatcher manages to hand it over. Rows are claimed with a short lease, so
several dispatchers (web processes, workers) rarely hand over the same row twice, and a
dispatcher that dies mid-handover only delays its rows until the lease runs out. A duplicate
handover is harmless: it wakes the device once more.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.sql import Executable

from mdmserver.storage.sql import dialect
from mdmserver.storage.sql.schema import push_outbox
from mdmserver.storage.sql.types import driver_timestamp, utcnow


@dataclass(frozen=True, slots=True)
class OutboxRow:
    id: int
    enrollment_id: str
    repush: bool


_CHUNK = 5000
_ADD_ROW = "INSERT INTO push_outbox (enrollment_id, repush, created_at) VALUES (?, ?, ?)"
_ADD_ARRAY = (
    "INSERT INTO push_outbox (enrollment_id, repush, created_at)"
    " SELECT t.e, %s, %s FROM unnest(%s::text[]) AS t(e)"
)


class OutboxStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def add(self, enrollment_ids: Iterable[str], *, repush: bool = False) -> int:
        """Record that these enrollments need a push; returns how many rows were written.

        Written on the driver (one statement over an array on PostgreSQL, one executemany on
        SQLite): SQLAlchemy's per-row parameter handling cost more than the inserts did.
        """
        ids = list(dict.fromkeys(enrollment_ids))
        if not ids:
            return 0
        now = utcnow()
        with self.engine.begin() as conn:
            if dialect.is_postgresql(conn):
                for start in range(0, len(ids), _CHUNK):
                    conn.exec_driver_sql(_ADD_ARRAY, (repush, now, ids[start : start + _CHUNK]))
            else:
                stamp = driver_timestamp(now, sqlite=True)
                conn.exec_driver_sql(_ADD_ROW, [(eid, repush, stamp) for eid in ids])
        return len(ids)

    def claim(self, limit: int, lease: float = 60.0) -> list[OutboxRow]:
        """Take up to ``limit`` unclaimed (or lease-expired) rows, oldest first."""
        now = utcnow()
        free = or_(push_outbox.c.claimed_until.is_(None), push_outbox.c.claimed_until < now)
        oldest = select(push_outbox.c.id).where(free).order_by(push_outbox.c.id).limit(limit)
        statement = (
            update(push_outbox)
            # Re-checked on the row itself: PostgreSQL re-evaluates it after a concurrent claim.
            .where(push_outbox.c.id.in_(oldest.scalar_subquery()), free)
            .values(claimed_until=now + timedelta(seconds=lease))
            .returning(push_outbox.c.id, push_outbox.c.enrollment_id, push_outbox.c.repush)
        )
        with self.engine.begin() as conn:
            rows = conn.execute(statement).all()
        return sorted((OutboxRow(r.id, r.enrollment_id, bool(r.repush)) for r in rows), key=_id)

    def done(self, ids: Iterable[int]) -> None:
        """The rows reached the job queue: forget them."""
        self._chunked(ids, lambda chunk: delete(push_outbox).where(push_outbox.c.id.in_(chunk)))

    def release(self, ids: Iterable[int]) -> None:
        """The handover failed: make the rows claimable again at once."""
        self._chunked(
            ids,
            lambda chunk: (
                update(push_outbox).where(push_outbox.c.id.in_(chunk)).values(claimed_until=None)
            ),
        )

    def pending(self) -> int:
        """Rows not yet handed to the job queue (claimed or not)."""
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(push_outbox)).scalar_one())

    def _chunked(self, ids: Iterable[int], build: Callable[[list[int]], Executable]) -> None:
        values = list(ids)
        with self.engine.begin() as conn:
            for start in range(0, len(values), 5000):
                conn.execute(build(values[start : start + 5000]))


def _id(row: OutboxRow) -> int:
    return row.id
