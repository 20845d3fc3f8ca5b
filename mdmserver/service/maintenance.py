"""Periodic upkeep that keeps devices healthy with no admin involved.

Identity renewal (before a device's certificate expires), inventory refresh (every
``inventory_interval_hours``), stale compliance (devices silent past the limit) and Apps and
Books events still pending. They run with the push scan, wherever that runs: in the web
process when jobs are in-process, in ``mdmserver worker`` with RQ (one worker per period,
under the scan lock).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import timedelta

from flask import Flask

from mdmserver.logs import get_logger
from mdmserver.service.renewal import queue_renewals
from mdmserver.web.apps_runtime import EXTENSION as APPS
from mdmserver.web.enrollment_runtime import EXTENSION as ENROLLMENT
from mdmserver.web.runtime import runtime
from mdmserver.web.trust import EXTENSION as INVENTORY

log = get_logger("maintenance")

Task = Callable[[], int]


def maintenance_tasks(app: Flask) -> dict[str, Task]:
    """The upkeep tasks this app's features provide, by name."""
    rt = runtime(app)
    tasks: dict[str, Task] = {}
    enrollment = app.extensions.get(ENROLLMENT)
    if enrollment is not None and enrollment.profiles is not None:
        window = timedelta(days=rt.config.identity_renewal_days)
        store, profiles = enrollment.store, enrollment.profiles
        tasks["identity_renewal"] = lambda: queue_renewals(
            store, rt.storage, profiles, window=window
        )
    inventory = app.extensions.get(INVENTORY)
    if inventory is not None:
        tasks["inventory_refresh"] = lambda: inventory.inventory.refresh_due_inventory()
        tasks["compliance_stale"] = lambda: inventory.compliance.evaluate_stale()
    apps = app.extensions.get(APPS)
    if apps is not None:
        tasks["vpp_events"] = apps.follow_pending
    return tasks


def upkeep(app: Flask) -> Callable[[], dict[str, int]]:
    """One maintenance run of this app's tasks, its push requests written once at the end."""
    tasks = maintenance_tasks(app)
    batch = getattr(runtime(app).storage, "batch", None)

    def run() -> dict[str, int]:
        if batch is None:
            return run_maintenance(tasks)
        with batch():
            return run_maintenance(tasks)

    return run


def run_maintenance(tasks: Mapping[str, Task]) -> dict[str, int]:
    """Run every task; one that fails is logged and the others still run."""
    done: dict[str, int] = {}
    for name, task in tasks.items():
        try:
            done[name] = task()
        except Exception:
            log.exception("maintenance_failed", extra={"fields": {"task": name}})
    if any(done.values()):
        log.info("maintenance", extra={"fields": done})
    return done
