"""The Alembic migrations build exactly the schema the code declares, on both backends."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from mdmserver.storage.sql import migrate
from mdmserver.storage.sql.engine import make_engine
from mdmserver.storage.sql.schema import metadata


def test_migrations_match_the_declared_schema(database_url):
    engine = make_engine(database_url)
    migrate.upgrade(engine)
    assert migrate.current_revisions(engine) == migrate.head_revisions()
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    engine.dispose()
    assert diff == [], f"schema.py and the migrations disagree: {diff}"


def test_upgrade_is_idempotent(database_url):
    engine = make_engine(database_url)
    migrate.upgrade(engine)
    migrate.upgrade(engine)
    assert migrate.current_revisions(engine) == migrate.head_revisions()
    engine.dispose()


def test_concurrent_upgrades_do_not_collide(empty_database_url):
    """Several gunicorn workers migrating the same fresh database at start must all succeed."""
    import threading

    errors: list[BaseException] = []
    start = threading.Barrier(4, timeout=30)

    def run() -> None:
        engine = make_engine(empty_database_url)
        try:
            engine.connect().close()  # connected before the race starts
            start.wait()
            migrate.upgrade(engine)
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)
            start.abort()  # never leave the others waiting for a thread that failed
        finally:
            engine.dispose()

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
