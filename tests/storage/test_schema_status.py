"""How far a database is, with the migrations as independent heads from 0001: "current"
means every head applied, however many heads other features add."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from mdmserver.storage.sql import migrate
from mdmserver.storage.sql.engine import make_engine


def test_schema_status_counts_every_head(empty_database_url):
    engine = make_engine(empty_database_url)
    try:
        heads = migrate.head_revisions()
        total = len(migrate.known_revisions())
        empty = migrate.schema_status(engine)
        assert (empty.applied, empty.total, empty.missing_heads) == (0, total, heads)
        with pytest.raises(migrate.SchemaNotCurrent, match="run `mdmserver db upgrade`"):
            migrate.require_current(engine)

        migrate.upgrade(engine, "0002")  # one branch of several
        partial = migrate.schema_status(engine)
        assert partial.applied == 2 and partial.missing_heads == heads - {"0002"}
        assert (
            partial.describe() == f"the database schema is behind (2 of {total} revisions applied)"
        )
        with pytest.raises(migrate.SchemaNotCurrent):
            migrate.require_current(engine)

        migrate.upgrade(engine)
        done = migrate.schema_status(engine)
        assert done.current and done.applied == total
        migrate.require_current(engine)

        with engine.begin() as connection:  # a newer release migrated this database
            connection.execute(text("INSERT INTO alembic_version VALUES ('9999_newer')"))
        with pytest.raises(migrate.SchemaNotCurrent, match=r"9999_newer.*newer release"):
            migrate.require_current(engine)
    finally:
        engine.dispose()
