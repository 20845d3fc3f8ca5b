"""Opening the embedded SQLite database: several processes may open a brand-new file at once."""

from __future__ import annotations

import threading
from pathlib import Path

from mdmserver.storage.sql.engine import make_engine


def test_first_connections_to_a_new_file_at_once(tmp_path: Path) -> None:
    """Each worker's first connection switches the file to WAL; none may fail with "locked"
    (SQLite does not wait on its busy timeout for that switch)."""
    errors: list[BaseException] = []
    for attempt in range(20):
        url = f"sqlite:///{tmp_path / f'fresh-{attempt}.db'}"
        start = threading.Barrier(4, timeout=30)

        def connect(url: str = url, start: threading.Barrier = start) -> None:
            engine = make_engine(url)
            try:
                start.wait()
                with engine.connect() as conn:
                    mode = conn.exec_driver_sql("PRAGMA journal_mode").scalar()
                    assert mode == "wal"
            except BaseException as exc:  # collected and asserted below
                errors.append(exc)
            finally:
                engine.dispose()

        threads = [threading.Thread(target=connect) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert errors == []
