"""What an RQ worker runs: one entry point that finds the task by name and this process's
job context (built once per worker process from the MDM_* settings)."""

from __future__ import annotations

from typing import Any

from mdmserver.jobs.context import process_context
from mdmserver.jobs.tasks import TASKS


def run_task(name: str, args: tuple[Any, ...]) -> Any:
    task = TASKS.get(name)
    if task is None:
        raise LookupError(f"unknown job task {name!r}")
    return task(process_context(), *args)
