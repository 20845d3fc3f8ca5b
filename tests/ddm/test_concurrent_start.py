"""Worker processes start together and each writes the server's built-in declarations: the
second writer must find the first one's row, not fail to start (seen as a duplicate key on
PostgreSQL when two `mdmserver serve` workers booted at once)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

from sqlalchemy import func, select

from mdmserver.storage.sql import migrate
from mdmserver.storage.sql.ddm_store import DDMStore
from mdmserver.storage.sql.engine import make_engine
from mdmserver.storage.sql.schema import ddm_declarations


def test_the_same_new_declaration_written_at_once_by_many(database_url: str) -> None:
    engine = make_engine(database_url)
    migrate.upgrade(engine)
    store = DDMStore(engine)
    start, failures, results = threading.Barrier(8), [], []

    def write() -> None:
        start.wait()
        try:
            results.append(
                store.put(
                    "com.example.race",
                    "com.apple.activation.simple",
                    "activation",
                    {"StandardConfigurations": []},
                    "token-1",
                    datetime.now(UTC),
                    managed_by="server",
                )
            )
        except Exception as exc:  # the failure this test is about
            failures.append(exc)

    threads = [threading.Thread(target=write) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    try:
        assert failures == []
        assert len(results) == 8
        assert sum(changed for _, changed in results) == 1  # one creator; the rest unchanged
        with engine.connect() as conn:
            count = conn.execute(
                select(func.count()).where(ddm_declarations.c.identifier == "com.example.race")
            ).scalar_one()
        assert count == 1
    finally:
        engine.dispose()
