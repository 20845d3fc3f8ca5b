"""Periodic upkeep that keeps devices healthy with no admin involved.

Identity renewal (before a device's certificate expires), inventory refresh (every
``inventory_interval_hours``), stale compliance (devices silent past the limit), Apps and
Books events still pending, and the app reconcile (a ManagedApplicationList for devices whose
last one is older than ``apps_reconcile_interval_hours``, or whose failed install's backoff
has passed). They run with the push scan, wherever that runs: in the web
process when jobs are in-process, in ``mdmserver worker`` with RQ (one worker per period,
under the scan lock).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from datetime import timedelta

from mdmserver.apps.reconcile import AppReconciler
from mdmserver.apps.service import AppsService
from mdmserver.enrollment.renewal import queue_renewals
from mdmserver.enrollment.setup import EnrollmentRuntime
from mdmserver.inventory.setup import InventoryRuntime
from mdmserver.logs import get_logger
from mdmserver.storage.base import Storage

log = get_logger("maintenance")

Task = Callable[[], int]


def maintenance_tasks(
    storage: Storage,
    *,
    enrollment: EnrollmentRuntime | None = None,
    inventory: InventoryRuntime | None = None,
    apps: AppsService | None = None,
    app_reconciler: AppReconciler | None = None,
    renewal_days: int = 0,
    apps_reconcile_interval: timedelta = timedelta(hours=24),
) -> dict[str, Task]:
    """The upkeep tasks the server's features provide, by name (built by the assembly)."""
    tasks: dict[str, Task] = {}
    if enrollment is not None and enrollment.profiles is not None:
        window = timedelta(days=renewal_days)
        store, profiles = enrollment.store, enrollment.profiles
        tasks["identity_renewal"] = lambda: queue_renewals(store, storage, profiles, window=window)
    if inventory is not None:
        tasks["inventory_refresh"] = lambda: inventory.inventory.refresh_due_inventory()
        tasks["compliance_stale"] = lambda: inventory.compliance.evaluate_stale()
    if apps is not None:
        tasks["vpp_events"] = apps.follow_pending
    if app_reconciler is not None:
        reconciler, interval = app_reconciler, apps_reconcile_interval
        tasks["apps_reconcile"] = lambda: reconciler.queue_due_lists(interval)
    return tasks


def upkeep(
    tasks: Mapping[str, Task], batch: Callable[[], AbstractContextManager[object]] | None = None
) -> Callable[[], dict[str, int]]:
    """One maintenance run of these tasks; with ``batch`` (the waking storage's), the push
    requests they cause are written once at the end."""

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
