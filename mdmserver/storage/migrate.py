"""Versioned schema migrations (Alembic), run from code so no alembic.ini needs to ship.

Features add their tables in their own migration branching from the one they need, so
upgrades go to all heads; a merge revision can join the branches at any time.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Engine

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
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, revision)


def current_revisions(engine: Engine) -> frozenset[str]:
    with engine.connect() as connection:
        return frozenset(MigrationContext.configure(connection).get_current_heads())


def head_revisions() -> frozenset[str]:
    return frozenset(ScriptDirectory.from_config(_alembic_config()).get_heads())
