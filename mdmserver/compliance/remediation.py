"""What the server does about a non-compliant device, per the policy's [remediation] table.

Each action is recorded in ``remediations`` (deduplicated while open, resolved when the device
is compliant again), so an admin sees what was tried and nothing is queued twice:

- a missing required profile: re-queued through the profile service (issue #6) when that
  profile is assigned to the device; otherwise recorded as a request for an admin;
- unknown facts or a silent device: an inventory refresh, from scheduled evaluations only
  (rate-limited by the caller);
- a required app missing or too old (issue #17): installed again through the apps feature's
  reconciler when the app is in the catalog and assigned to the device (its backoff and
  channel, command or DDM, apply); otherwise recorded as a request for an admin;
- a forbidden app MDM manages: a ``RemoveApplication``; one the user installed cannot be
  removed by MDM, so it is recorded as a request (the trust reason says so too);
- optionally a DeviceLock once the device has been non-compliant past the grace period, for
  failures other than silence (a device that is merely offline is not locked when it returns).

Decided while the command loop reads a device's answer, the commands are queued by the
remediation step of service/next_command.py, in the same request (:meth:`Remediator.step`);
decided anywhere else (scheduler, DDM status reports), they are queued at once.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Protocol

from mdmserver.compliance.evaluate import Evaluation, State
from mdmserver.compliance.policy import Policy
from mdmserver.compliance.rules import Outcome
from mdmserver.logs import get_logger
from mdmserver.protocol.commands import new_command
from mdmserver.service.next_command import Session, steps_follow
from mdmserver.storage.ports import CompliancePort, QueuePort
from mdmserver.storage.sql.compliance_store import StoredState

log = get_logger("remediation")

Refresh = Callable[[str, datetime], bool]
UNMANAGED_REMOVAL = "remove_unmanaged_app"  # a request for a person: MDM cannot do it
Push = Callable[[list[str]], object]
Action = Callable[[], object]
STEP = "remediation"


class ProfilesPort(Protocol):
    """The slice of issue #6's profile service remediation needs."""

    def assigned(self, device_id: str) -> set[str]: ...
    def reconcile(self, device_id: str) -> None: ...


class AppsPort(Protocol):
    """The slice of issue #17's app reconciler remediation needs."""

    def reinstall(self, device_id: str, bundle_ids: Sequence[str]) -> set[str]:
        """Queue installs of these apps where they are assigned catalog apps; the bundle ids
        now on their way (queued, or left to the device's DDM)."""
        ...


class Remediator:
    def __init__(
        self,
        store: CompliancePort,
        storage: QueuePort,
        refresh: Refresh,
        profiles: ProfilesPort | None = None,
        push: Push | None = None,
        apps: AppsPort | None = None,
    ) -> None:
        self.store = store
        self.storage = storage
        self.refresh = refresh
        self.profiles = profiles
        self.push = push
        self.apps = apps  # set by the apps feature's wiring, which is built after this
        # device -> what its remediation step queues; filled and emptied in one request.
        self._due: dict[str, list[Action]] = {}
        self._due_lock = threading.Lock()

    def step(self, session: Session) -> None:
        """Queue what was decided while this request's answer was read; usually nothing (a
        dictionary lookup, no query). One action that fails is logged, the others still run."""
        if not self._due:
            return None
        with self._due_lock:
            actions = self._due.pop(session.identity.device_id, [])
        for action in actions:
            try:
                action()
            except Exception:
                log.exception(
                    "remediation_failed", extra={"fields": {"device_id": session.enrollment_id}}
                )
        return None

    def _act(self, device_id: str, action: Action) -> None:
        """Now, or by the remediation step when it follows the answer being read."""
        if not steps_follow(STEP):
            action()
            return
        with self._due_lock:
            self._due.setdefault(device_id, []).append(action)

    def apply(
        self,
        device_id: str,
        platform: str | None,
        policy: Policy,
        evaluation: Evaluation,
        stored: StoredState | None,
        now: datetime,
        *,
        in_request: bool,
    ) -> None:
        if evaluation.state is State.COMPLIANT:
            if self.store.resolve_remediations(device_id, now):
                log.info("remediation_resolved", extra={"fields": {"device_id": device_id}})
            return
        queued = False
        plan = policy.remediation
        if plan.requeue_missing_profiles and evaluation.failed("required_profiles"):
            queued |= self._profiles(device_id, evaluation, now)
        if plan.reinstall_required_apps and evaluation.failed("required_apps"):
            queued |= self._reinstall(device_id, evaluation, now)
        if plan.remove_forbidden_apps and evaluation.failed("forbidden_apps"):
            queued |= self._remove(device_id, evaluation, now)
        needs_data = any(r.outcome is Outcome.UNKNOWN for r in evaluation.results)
        # Inside the device's own request the missing answers are usually still queued, and
        # the device is plainly not silent: refreshing is the scheduler's job.
        stale = evaluation.failed("max_checkin_age")
        if plan.refresh_inventory and not in_request and (needs_data or stale):
            queued |= self.refresh(device_id, now)
        if plan.device_lock_after_hours is not None and stored is not None:
            queued |= self._lock(device_id, platform, policy, evaluation, stored, now)
        if queued and not in_request and self.push is not None:
            self.push([device_id])

    def _profiles(self, device_id: str, evaluation: Evaluation, now: datetime) -> bool:
        missing = next(r.items for r in evaluation.results if r.rule == "required_profiles")
        assigned = self.profiles.assigned(device_id) if self.profiles is not None else set()
        reconcile = False
        for identifier in missing:
            if self.store.open_remediation(device_id, "install_profile", identifier):
                continue
            status = "queued" if identifier in assigned else "requested"
            reconcile |= status == "queued"
            self.store.add_remediation(device_id, "install_profile", identifier, status, now)
            log.info(
                "remediation_profile",
                extra={"fields": {"device_id": device_id, "identifier": identifier, "s": status}},
            )
        if reconcile and self.profiles is not None:
            profiles = self.profiles
            self._act(device_id, lambda: profiles.reconcile(device_id))
        return reconcile

    def _reinstall(self, device_id: str, evaluation: Evaluation, now: datetime) -> bool:
        missing = _items(evaluation, "required_apps")
        fresh = [b for b in missing if not self.store.open_remediation(device_id, "install_app", b)]
        if not fresh:
            return False
        sent = self.apps.reinstall(device_id, fresh) if self.apps is not None else set()
        for bundle_id in fresh:
            status = "queued" if bundle_id in sent else "requested"
            self.store.add_remediation(device_id, "install_app", bundle_id, status, now)
            fields = {"device_id": device_id, "bundle_id": bundle_id, "s": status}
            log.info("remediation_app_install", extra={"fields": fields})
        return bool(sent)

    def _remove(self, device_id: str, evaluation: Evaluation, now: datetime) -> bool:
        found = _items(evaluation, "forbidden_apps")
        managed = {b for r in evaluation.results if r.rule == "forbidden_apps" for b in r.removable}
        queued = False
        for bundle_id in found:
            if bundle_id not in managed:
                # Installed by the user: MDM cannot remove it; an admin (or the user) must.
                if not self.store.open_remediation(device_id, UNMANAGED_REMOVAL, bundle_id):
                    self.store.add_remediation(
                        device_id, UNMANAGED_REMOVAL, bundle_id, "requested", now
                    )
                continue
            if self.store.open_remediation(device_id, "remove_app", bundle_id):
                continue
            command = new_command("RemoveApplication", {"Identifier": bundle_id})
            self.storage.enqueue(command, [device_id], created_by="compliance")
            self.store.add_remediation(
                device_id, "remove_app", bundle_id, "queued", now, command.command_uuid
            )
            log.warning(
                "remediation_app_remove",
                extra={"fields": {"device_id": device_id, "bundle_id": bundle_id}},
            )
            queued = True
        return queued

    def _lock(
        self,
        device_id: str,
        platform: str | None,
        policy: Policy,
        evaluation: Evaluation,
        stored: StoredState,
        now: datetime,
    ) -> bool:
        grace = timedelta(hours=policy.remediation.device_lock_after_hours or 0)
        since = stored.noncompliant_since
        failures = {r.rule for r in evaluation.results if r.outcome is Outcome.FAIL}
        if since is None or now - since < grace or not failures - {"max_checkin_age"}:
            return False
        if self.store.open_remediation(device_id, "device_lock", "DeviceLock"):
            return False
        payload: dict[str, str] = {"Message": policy.remediation.device_lock_message}
        if platform == "macOS":
            payload["PIN"] = f"{secrets.randbelow(1_000_000):06d}"
        command = new_command("DeviceLock", payload)
        self._act(
            device_id, lambda: self.storage.enqueue(command, [device_id], created_by="compliance")
        )
        # A Mac's unlock PIN stays in the stored command (commands.plist) for the admin.
        self.store.add_remediation(
            device_id, "device_lock", "DeviceLock", "queued", now, command.command_uuid
        )
        log.warning(
            "remediation_device_lock",
            extra={"fields": {"device_id": device_id, "command_uuid": command.command_uuid}},
        )
        return True


def _items(evaluation: Evaluation, rule: str) -> tuple[str, ...]:
    return next((r.items for r in evaluation.results if r.rule == rule), ())
