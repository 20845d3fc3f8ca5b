"""What push jobs read and write: whom to wake, what APNs said, and who is due a re-push.

Kept apart from the device hot path (storage/sql/device_store.py): these queries run in workers and
in the periodic scan, never inside a device request.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, func, select, update
from sqlalchemy.engine import Engine

from mdmserver.storage.sql import dialect
from mdmserver.storage.sql.schema import command_queue, enrollments, push_status
from mdmserver.storage.sql.types import driver_timestamp, utcnow

_CHUNK = 5000


@dataclass(frozen=True, slots=True)
class PushRow:
    """How to wake one enrollment right now."""

    enrollment_id: str
    token_hex: str
    push_magic: str
    topic: str


@dataclass(frozen=True, slots=True)
class PushResult:
    """One push's outcome, as stored in push_status."""

    enrollment_id: str
    outcome: str
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class RepushPolicy:
    interval: timedelta
    max_attempts: int
    grace: timedelta = timedelta(seconds=30)


class PushStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def targets(self, enrollment_ids: Sequence[str]) -> list[PushRow]:
        """Active enrollments among these with a usable token (stale tokens are skipped)."""
        e = enrollments.c
        rows: list[PushRow] = []
        with self.engine.connect() as conn:
            for chunk in _chunks(list(dict.fromkeys(enrollment_ids))):
                query = select(e.id, e.push_token, e.push_magic, e.topic).where(
                    e.id.in_(chunk),
                    e.status == "active",
                    e.token_stale.is_(False),
                    e.push_token.is_not(None),
                    e.push_magic.is_not(None),
                    e.topic.is_not(None),
                )
                rows.extend(PushRow(*row) for row in conn.execute(query))
        return rows

    def mark_stale(self, stale: Iterable[tuple[str, str]]) -> int:
        """APNs said these (enrollment, token) pairs are dead: no pushes until a TokenUpdate.

        The token is part of the match, so a TokenUpdate that landed meanwhile is not undone.
        """
        params = [{"eid": eid, "token": token} for eid, token in stale]
        if not params:
            return 0
        e = enrollments.c
        statement = (
            update(enrollments)
            .where(e.id == bindparam("eid"), e.push_token == bindparam("token"))
            .values(token_stale=True)
        )
        with self.engine.begin() as conn:
            return conn.execute(statement, params).rowcount

    def record(self, results: Sequence[PushResult], *, repush: bool) -> None:
        """Store each enrollment's latest push (a fresh push resets the re-push count).

        Written on the driver, not through SQLAlchemy's statement machinery, whose per-row
        parameter handling cost more than the database's own work: PostgreSQL gets one
        statement over arrays per chunk (half its CPU per row of an executemany, a quarter of
        psycopg's), SQLite one executemany of tuples.
        """
        if not results:
            return
        latest = {r.enrollment_id: r for r in results}.values()
        ids = [r.enrollment_id for r in latest]
        outcomes = [str(r.outcome) for r in latest]
        reasons = [r.reason[:64] if r.reason else None for r in latest]
        now = utcnow()
        attempts = 1 if repush else 0
        set_attempts = "push_status.attempts + 1" if repush else "0"
        with self.engine.begin() as conn:
            if dialect.is_postgresql(conn):
                statement = _UPSERT_ARRAYS.format(attempts=set_attempts)
                for start in range(0, len(ids), _CHUNK):
                    end = start + _CHUNK
                    arrays = (ids[start:end], outcomes[start:end], reasons[start:end])
                    conn.exec_driver_sql(statement, (now, attempts, *arrays))
            else:
                stamp = driver_timestamp(now, sqlite=True)
                rows = [
                    (i, stamp, o, r, attempts)
                    for i, o, r in zip(ids, outcomes, reasons, strict=True)
                ]
                statement = _UPSERT_ROWS.format(attempts=set_attempts)
                for chunk in _chunks(rows):
                    conn.exec_driver_sql(statement, chunk)

    def due(
        self, policy: RepushPolicy, *, now: datetime | None = None, limit: int = 50_000
    ) -> tuple[list[str], list[str]]:
        """Enrollments with pending commands that need a push: (never pushed, silent since).

        Never pushed: a command is newer than the last push and older than the grace period
        (the request's own push had its chance). Silent: pushed, not seen since, and the
        back-off (interval doubling per attempt) has passed, up to ``max_attempts`` times.
        """
        now = now or utcnow()
        e, q, s = enrollments.c, command_queue.c, push_status.c
        query = (
            select(e.id, e.last_seen_at, s.last_push_at, s.attempts, func.max(q.created_at))
            .select_from(
                enrollments.join(
                    command_queue,
                    and_(q.enrollment_id == e.id, q.status.in_(("queued", "sent"))),
                ).outerjoin(push_status, s.enrollment_id == e.id)
            )
            .where(
                e.status == "active",
                e.token_stale.is_(False),
                e.push_token.is_not(None),
            )
            .group_by(e.id, e.last_seen_at, s.last_push_at, s.attempts)
        )
        fresh: list[str] = []
        again: list[str] = []
        with self.engine.connect() as conn:
            for eid, seen, pushed, attempts, newest in conn.execute(query):
                seen, pushed, newest = seen, pushed, newest
                if newest is not None and (pushed is None or newest > pushed):
                    if newest <= now - policy.grace:
                        fresh.append(eid)
                elif (
                    pushed is not None
                    and (seen is None or seen < pushed)
                    and (attempts or 0) < policy.max_attempts
                    and now - pushed >= policy.interval * (2 ** (attempts or 0))
                ):
                    again.append(eid)
                if len(fresh) + len(again) >= limit:
                    break
        return fresh, again

    def channels(self, device_id: str) -> list[str]:
        """The device's active enrollments (its device channel and any user channels)."""
        e = enrollments.c
        query = select(e.id).where(e.device_id == device_id, e.status == "active").order_by(e.id)
        with self.engine.connect() as conn:
            return list(conn.execute(query).scalars())

    def status(self, enrollment_id: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(push_status).where(push_status.c.enrollment_id == enrollment_id)
            ).first()
        if row is None:
            return None
        return {
            "last_push_at": row.last_push_at,
            "last_outcome": row.last_outcome,
            "last_reason": row.last_reason,
            "attempts": row.attempts,
        }

    def summary(self) -> dict[str, Any]:
        """Enrollments per last outcome, and the latest certificate error (for the admin)."""
        s = push_status.c
        with self.engine.connect() as conn:
            counts: dict[str, int] = dict(
                conn.execute(select(s.last_outcome, func.count()).group_by(s.last_outcome)).all()
            )
            latest = conn.execute(
                select(s.last_push_at, s.last_reason)
                .where(s.last_outcome == "certificate_error")
                .order_by(s.last_push_at.desc())
                .limit(1)
            ).first()
        return {
            "by_outcome": {str(k): int(v) for k, v in counts.items()},
            "last_certificate_error": None
            if latest is None
            else {"at": latest.last_push_at, "reason": latest.last_reason},
        }


_ON_CONFLICT = (
    " ON CONFLICT (enrollment_id) DO UPDATE SET last_push_at = excluded.last_push_at,"
    " last_outcome = excluded.last_outcome, last_reason = excluded.last_reason,"
    " attempts = {attempts}"  # a re-push counts one more attempt, a fresh push starts again
)
_COLUMNS = (
    "INSERT INTO push_status (enrollment_id, last_push_at, last_outcome, last_reason, attempts)"
)
_UPSERT_ROWS = _COLUMNS + " VALUES (?, ?, ?, ?, ?)" + _ON_CONFLICT
_UPSERT_ARRAYS = (
    _COLUMNS
    + " SELECT t.e, %s, t.o, t.r, %s FROM unnest(%s::text[], %s::text[], %s::text[]) AS t(e, o, r)"
    + _ON_CONFLICT
)


def _chunks(values: list[Any]) -> Iterable[list[Any]]:
    for start in range(0, len(values), _CHUNK):
        yield values[start : start + _CHUNK]
