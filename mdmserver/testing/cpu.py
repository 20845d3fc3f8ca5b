"""CPU time of the processes a benchmark drives, for figures per request or per push.

CPU per unit of work barely moves when other work shares the machine; requests/s does. Read
from /proc (Linux), so a benchmark can meter processes it did not start (PostgreSQL backends).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from sqlalchemy.engine import Engine


def process_cpu(pid: int) -> float:
    """User + system CPU seconds of a process and its threads; raises OSError once it is gone."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_by_pid(pids: Iterable[int]) -> dict[int, float]:
    """CPU seconds of each process still there (one gone meanwhile counts nothing)."""
    usage = {}
    for pid in pids:
        try:
            usage[pid] = process_cpu(pid)
        except OSError:
            continue
    return usage


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (a server's supervisor and its workers)."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        for task in Path(f"/proc/{current}/task").glob("*/children"):
            todo += [int(child) for child in task.read_text().split()]
    return found


def postgres_backends(engine: Engine) -> list[int]:
    """The backends connected to ``engine``'s database (the asking one too: it idles)."""
    with engine.connect() as conn:
        rows = conn.exec_driver_sql(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
        )
        return [int(pid) for pid in rows.scalars()]
