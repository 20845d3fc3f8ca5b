"""The device hot path's statements, each with its SQLite and PostgreSQL variants, in one place.

They run straight on the DB-API cursor (see :mod:`mdmserver.storage.sql.rawsql`), written with
``:name`` parameters; table and column names come from :mod:`mdmserver.storage.sql.schema`'s
Table objects, so renaming a column there breaks this module at import, not a device at run
time. Where the two databases differ it is for speed: PostgreSQL answers over the network, so
one statement that does three things beats three statements; SQLite runs in process, where
three short statements cost less than one clever one, and its RETURNING cannot reach a joined
table.

:func:`for_database` picks one database's set; the rest of the storage never compares dialect
names for these statements.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Table, bindparam, or_, text, update

from mdmserver.storage.sql.schema import (
    PENDING_WHERE,
    cert_bindings,
    command_queue,
    commands,
    devices,
    enrollments,
)


class _Names:
    """A table's name and its column names, checked against the schema when first read."""

    def __init__(self, table: Table) -> None:
        self._table = table

    def __getattr__(self, column: str) -> str:
        return str(self._table.c[column].name)  # KeyError: the schema has no such column

    def __str__(self) -> str:
        return self._table.name


QUEUE, CMD, BINDING, ENR = (
    _Names(command_queue),
    _Names(commands),
    _Names(cert_bindings),
    _Names(enrollments),
)
_ANSWERED = "'acknowledged', 'error', 'commandformaterror'"

# A command the device answered NotNow is not offered again in the same session (a sleeping
# Mac would loop): 'notnow' rows are left out until a new session (an Idle) turns them back
# into 'queued'. Literal statuses (not parameters) let the databases use the partial index
# ix_command_queue_next; SQLite uses it only when the query repeats the index's own WHERE term
# word for word (without it, every poll scanned the whole queue table, history included).
_SELECT_NEXT = f"""
SELECT q.{QUEUE.id}, q.{QUEUE.command_uuid}, c.{CMD.request_type}, c.{CMD.plist}
FROM {QUEUE} q JOIN {CMD} c ON c.{CMD.uuid} = q.{QUEUE.command_uuid}
WHERE q.{QUEUE.enrollment_id} = :enrollment_id
  AND q.{PENDING_WHERE} AND q.{QUEUE.status} IN ({{statuses}})
  AND (c.{CMD.expires_at} IS NULL OR c.{CMD.expires_at} > :now)
ORDER BY q.{QUEUE.priority} DESC, q.{QUEUE.id} LIMIT 1
"""
NEXT = _SELECT_NEXT.format(statuses="'queued', 'sent'")
NEW_SESSION = (
    f"UPDATE {QUEUE} SET {QUEUE.status} = 'queued'"
    f" WHERE {QUEUE.enrollment_id} = :enrollment_id AND {QUEUE.status} = 'notnow'"
)
MARK_SENT = (
    f"UPDATE {QUEUE} SET {QUEUE.status} = 'sent', {QUEUE.sent_at} = :now WHERE {QUEUE.id} = :id"
)

# PostgreSQL picks the command, marks it sent and (in a new session) turns NotNow'd rows back
# into queued ones in one round trip. Every part sees the rows as they were before the
# statement, so the pick counts 'notnow' as eligible itself, and the reset leaves the picked
# row to the mark (one statement must not update a row twice).
_PICK_AND_MARK_PG = f"""
WITH picked AS ({{select}}),
{{reset}}marked AS (
  UPDATE {QUEUE} SET {QUEUE.status} = 'sent', {QUEUE.sent_at} = :now
  FROM picked WHERE {QUEUE}.{QUEUE.id} = picked.{QUEUE.id}
)
SELECT {QUEUE.id}, {QUEUE.command_uuid}, {CMD.request_type}, {CMD.plist} FROM picked
"""
NEXT_PG = _PICK_AND_MARK_PG.format(select=NEXT, reset="")
NEXT_NEW_SESSION_PG = _PICK_AND_MARK_PG.format(
    select=_SELECT_NEXT.format(statuses="'queued', 'sent', 'notnow'"),
    reset=f"reset AS ({NEW_SESSION} AND {QUEUE.id} NOT IN (SELECT {QUEUE.id} FROM picked)),\n",
)

# A result counts only for a command that went out to that enrollment.
_TARGET = (
    f"{QUEUE.enrollment_id} = :enrollment_id AND {QUEUE.command_uuid} = :command_uuid"
    f" AND {QUEUE.sent_at} IS NOT NULL"
)
_SET_RESULT = (
    f"UPDATE {QUEUE} SET {QUEUE.status} = :status, {QUEUE.result} = :result,"
    f" {QUEUE.answered_at} = :now"
)
RECORD_RESULT = f"{_SET_RESULT} WHERE {_TARGET} AND {QUEUE.status} NOT IN ({_ANSWERED})"
# PostgreSQL hands back the command's RequestType in the same round trip (for result hooks);
# SQLite's RETURNING cannot reach a joined table, so it asks separately (in process, cheap).
RECORD_RESULT_PG = (
    f"{_SET_RESULT} FROM {CMD} WHERE {CMD}.{CMD.uuid} = {QUEUE}.{QUEUE.command_uuid}"
    f" AND {_TARGET} AND {QUEUE.status} NOT IN ({_ANSWERED})"
    f" RETURNING {CMD}.{CMD.request_type}"
)
RECORD_NOTNOW = (
    f"UPDATE {QUEUE} SET {QUEUE.status} = 'notnow',"
    f" {QUEUE.notnow_count} = {QUEUE.notnow_count} + 1"
    f" WHERE {_TARGET} AND {QUEUE.status} IN ('sent', 'notnow')"
)
WAS_SENT = f"SELECT 1 FROM {QUEUE} WHERE {_TARGET}"
REQUEST_TYPE = f"SELECT {CMD.request_type} FROM {CMD} WHERE {CMD.uuid} = :command_uuid"

# Certificate binding and enrollment status: asked on every device request.
IS_BOUND = (
    f"SELECT 1 FROM {BINDING}"
    f" WHERE {BINDING.device_id} = :device_id AND {BINDING.fingerprint} = :fingerprint"
)
ENROLLMENT_STATUS = f"SELECT {ENR.status} FROM {ENR} WHERE {ENR.id} = :enrollment_id"
ACCESS = (
    f"SELECT EXISTS ({IS_BOUND}), (SELECT {ENR.status} FROM {ENR} WHERE {ENR.id} = :enrollment_id)"
)


@dataclass(frozen=True, slots=True)
class HotStatements:
    """One database's variants of the device path's statements."""

    sqlite: bool
    # PostgreSQL: pick, mark sent (and reset NotNow'd rows) in one statement each; SQLite:
    # ``next`` picks only, then ``new_session`` and ``mark_sent`` run on their own.
    next: str
    next_new_session: str | None
    new_session: str
    mark_sent: str
    # PostgreSQL's answers the RequestType; SQLite's answers a row count only.
    record_result: str
    record_result_returns_type: bool
    record_notnow: str = RECORD_NOTNOW
    was_sent: str = WAS_SENT
    request_type: str = REQUEST_TYPE
    is_bound: str = IS_BOUND
    enrollment_status: str = ENROLLMENT_STATUS
    access: str = ACCESS


SQLITE = HotStatements(
    sqlite=True,
    next=NEXT,
    next_new_session=None,
    new_session=NEW_SESSION,
    mark_sent=MARK_SENT,
    record_result=RECORD_RESULT,
    record_result_returns_type=False,
)
POSTGRESQL = HotStatements(
    sqlite=False,
    next=NEXT_PG,
    next_new_session=NEXT_NEW_SESSION_PG,
    new_session=NEW_SESSION,
    mark_sent=MARK_SENT,
    record_result=RECORD_RESULT_PG,
    record_result_returns_type=True,
)


def for_database(*, sqlite: bool) -> HotStatements:
    return SQLITE if sqlite else POSTGRESQL


# Statements on SQLAlchemy Core (not on the raw cursor) that are still per request or per batch.

# Still pending, in any session (NotNow'd rows included).
PENDING_ANY_SESSION = text(f"{QUEUE}.{PENDING_WHERE}")

# One parameter set per target is most of the time at 100,000 targets: on PostgreSQL the
# targets travel as one array and the rows are built server-side.
FAN_OUT_PG = text(
    f"INSERT INTO {QUEUE} ({QUEUE.enrollment_id}, {QUEUE.command_uuid}, {QUEUE.status},"
    f" {QUEUE.priority}, {QUEUE.created_at})"
    " SELECT target, :command_uuid, :status, :priority, :now"
    " FROM unnest(CAST(:targets AS text[])) AS t(target)"
)
FAN_OUT_THRESHOLD = 500  # below this the plain insert is just as quick

# Last seen, for many enrollments and their devices: a time never moves backwards (a late
# batch does not undo a newer one written by another process).
TOUCH_ENROLLMENTS = (
    update(enrollments)
    .where(
        enrollments.c.id == bindparam("eid"),
        or_(enrollments.c.last_seen_at.is_(None), enrollments.c.last_seen_at < bindparam("at")),
    )
    .values(last_seen_at=bindparam("at"))
)
TOUCH_DEVICES = (
    update(devices)
    .where(
        devices.c.id == bindparam("did"),
        or_(devices.c.last_seen_at.is_(None), devices.c.last_seen_at < bindparam("at")),
    )
    .values(last_seen_at=bindparam("at"))
)
