"""Versioned schema migrations (Alembic), run from code so no alembic.ini needs to ship.

Features add their tables in their own migration branching from the one they need, so
upgrades go to all heads; a merge revision can join the branches at any time.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Engine

from mdmserver.storage.sql import dialect

MIGRATIONS = Path(__file__).with_name("migrations")


def _alembic_config() -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


# Any constant: it names the lock every server process takes before migrating PostgreSQL.
_MIGRATION_LOCK = 0x6D646D73


def upgrade(engine: Engine, revision: str = "heads") -> None:
    """Migrate, safely even when several workers start at once on the same database.

    SQLite transactions here start with BEGIN IMMEDIATE, which already serialises them; on
    PostgreSQL a transaction-scoped advisory lock does, so the second worker waits and then
    finds nothing left to do.
    """
    cfg = _alembic_config()
    with engine.begin() as connection:
        if dialect.is_postgresql(connection):
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, revision)


def current_revisions(engine: Engine) -> frozenset[str]:
    with engine.connect() as connection:
        return frozenset(MigrationContext.configure(connection).get_current_heads())


def known_revisions() -> frozenset[str]:
    """Every revision this code ships."""
    script = ScriptDirectory.from_config(_alembic_config())
    return frozenset(rev.revision for rev in script.walk_revisions())


def head_revisions() -> frozenset[str]:
    return frozenset(ScriptDirectory.from_config(_alembic_config()).get_heads())


class SchemaNotCurrent(RuntimeError):
    """The database lacks migrations this code needs (or has ones it does not know)."""


@dataclass(frozen=True)
class SchemaStatus:
    """How far the database is: revisions applied out of those this code ships.

    The migrations are independent branches from 0001 (or joined by merge revisions): the
    schema is current when every head is applied, however many heads there are.
    """

    applied: int
    total: int
    missing_heads: frozenset[str]
    unknown: frozenset[str]  # applied revisions this code does not have (a newer release)

    @property
    def current(self) -> bool:
        return not self.missing_heads and not self.unknown

    def describe(self) -> str:
        if self.unknown:
            return (
                f"the database has revision(s) {', '.join(sorted(self.unknown))} that this "
                "version of mdmserver does not know: run the newer release"
            )
        if self.applied == 0:
            return f"the database is empty (0 of {self.total} revisions applied)"
        if self.missing_heads:
            return (
                f"the database schema is behind ({self.applied} of {self.total} revisions applied)"
            )
        return f"up to date ({self.applied} of {self.total} revisions applied)"


def schema_status(engine: Engine) -> SchemaStatus:
    script = ScriptDirectory.from_config(_alembic_config())
    known = {rev.revision for rev in script.walk_revisions()}
    current = current_revisions(engine)
    unknown = frozenset(current - known)
    applied = {
        rev.revision
        for rev in script.iterate_revisions(tuple(current & known), "base")
        if rev is not None
    }
    missing = frozenset(set(script.get_heads()) - applied)
    return SchemaStatus(len(applied), len(known), missing, unknown)


def require_current(engine: Engine) -> None:
    """Refuse to serve on a schema this code does not match, naming the command that fixes it."""
    status = schema_status(engine)
    if status.unknown:
        raise SchemaNotCurrent(status.describe())
    if status.missing_heads:
        raise SchemaNotCurrent(f"{status.describe()}: run `mdmserver db upgrade`")
