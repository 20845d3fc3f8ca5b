"""Keeping devices' apps in their desired state (issue #17, item 3): on enrollment the server
asks for the ``ManagedApplicationList``; each answer is compared with the apps assigned to the
device, and the missing ``required`` apps get an install command, the catalog apps no longer
assigned a ``RemoveApplication``. Every command is checked against Apple's schema for the
device's platform before it is queued; one the schema refuses is not sent, and the app's state
says why. Answers to the install commands record ``installing`` or ``failed`` with the
ErrorChain, visible per device in ``GET /api/v1/apps/<app>/devices``; a failed install is
sent again only after a backoff that grows with each attempt (:func:`retry_at`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from mdmserver.apps.desired import WantedApp, install_command, plan, read_managed_list
from mdmserver.catalog.platforms import platform_of
from mdmserver.catalog.validate import validate_command
from mdmserver.logs import get_logger
from mdmserver.protocol.commands import new_command
from mdmserver.protocol.results import Status
from mdmserver.service.hooks import EnrolledEvent, Hooks, ResultEvent
from mdmserver.service.next_command import Session
from mdmserver.storage.ports import AppPort, QueuePort

log = get_logger("apps.reconcile")

LIST = "ManagedApplicationList"
INSTALLS = ("InstallApplication", "InstallEnterpriseApplication")
REMOVE = "RemoveApplication"
_UNANSWERED = ("queued", "sent", "notnow")
RETRY_BASE = timedelta(minutes=5)  # after the first failure; each further one waits 4x more
RETRY_MAX = timedelta(hours=24)


def retry_at(state: Mapping[str, Any]) -> datetime:
    """When a failed install may be sent again: backoff grows with the installs already sent."""
    wait = min(RETRY_BASE * 4 ** max(int(state["attempts"]) - 1, 0), RETRY_MAX)
    updated: datetime = state["updated_at"]
    return updated + wait


class AppReconciler:
    def __init__(self, store: AppPort, storage: QueuePort, server_url: str) -> None:
        self.store = store
        self.storage = storage
        self.server_url = server_url.rstrip("/")

    def register(self, hooks: Hooks) -> None:
        """Enrollment asks for the list at once; the install and remove answers come to
        :meth:`on_answer` as their commands declare (commands/install_application.py,
        remove_application.py); :meth:`step` is wired by service.next_command.build_steps."""
        hooks.on_enrolled(self.on_enrolled)
        hooks.readers.apps = self

    def on_enrolled(self, event: EnrolledEvent) -> None:
        identity = event.identity
        if identity.is_user_channel or not self.store.assigned_to(identity.device_id):
            return
        if LIST not in {q.request_type for q in self.storage.queue(identity.id)}:
            self.storage.enqueue(new_command(LIST), [identity.id])

    def step(self, session: Session) -> None:
        """After a ManagedApplicationList answer, queue what brings the device to its desired
        apps. Otherwise nothing, with no query (the Idle hot path)."""
        event = session.answered
        if event is None or event.request_type != LIST:
            return None
        identity = event.identity
        if identity.is_user_channel or event.result.status != Status.ACKNOWLEDGED:
            return None
        reported = read_managed_list(event.result.raw)
        if reported is None:
            log.warning("app_list_unreadable", extra={"fields": {"enrollment_id": identity.id}})
            return None
        self.reconcile(identity.id, reported)
        return None

    def on_answer(self, event: ResultEvent) -> None:
        result, identity = event.result, event.identity
        if result.command_uuid is None:
            return
        app_id = self.store.state_for_command(identity.device_id, result.command_uuid)
        if app_id is None:
            return
        if event.request_type == REMOVE:
            if result.status == Status.ACKNOWLEDGED:
                self.store.forget_state(identity.device_id, app_id)
            return
        if result.status == Status.ACKNOWLEDGED:
            self.store.set_state(identity.device_id, app_id, "installing", keep_command=True)
        elif result.status != Status.NOT_NOW:
            chain = result.raw.get("ErrorChain")
            error = json.dumps(
                {
                    "status": result.status.value,
                    "ErrorChain": chain if isinstance(chain, list) else [],
                },
                default=str,
            )
            self.store.set_state(
                identity.device_id, app_id, "failed", error=error, keep_command=True
            )

    def reconcile(self, enrollment_id: str, reported: dict[str, str]) -> list[str]:
        """Queue what brings one device channel to its desired apps; the commands queued."""
        device_id = enrollment_id  # device channels only: their id is the device id
        facts = self.store.device_facts(device_id)
        platform = platform_of(facts.get("product_name"), facts.get("model"))
        assigned = self.store.assigned_to(device_id)
        required = {
            app.id: WantedApp(
                app.id,
                app.bundle_id,
                app.kind,
                licensed=app.adam_id is not None
                and self.store.has_license(app.adam_id, facts.get("serial_number")),
            )
            for app, behaviour in assigned.values()
            if behaviour == "required"
        }
        pending = {
            q.command_uuid for q in self.storage.queue(enrollment_id) if q.status in _UNANSWERED
        }
        states = self.store.device_states(device_id)
        in_flight = {a for a, s in states.items() if s["command_uuid"] in pending}
        delivered = {
            a
            for a, s in states.items()
            if s["status"] == "installing" and a in assigned and assigned[a][0].kind == "macos_pkg"
        }
        decided = plan(
            required,
            {app.bundle_id for app, _ in assigned.values()},
            self.store.catalog_bundle_ids(),
            reported,
            in_flight,
            delivered,
        )
        queued: list[str] = []
        for app_id, status in decided.state.items():
            if app_id not in decided.install and states.get(app_id, {}).get("status") != status:
                attempts = 0 if status == "installed" else None
                self.store.set_state(
                    device_id, app_id, status, keep_command=True, attempts=attempts
                )
        now = datetime.now(UTC)
        for app_id in decided.install:
            app = assigned[app_id][0]
            previous = states.get(app_id)
            attempts = previous["attempts"] if previous else 0
            if previous and previous["status"] == "failed" and now < retry_at(previous):
                continue  # backing off after a failed install; the state says when
            attempts += 1
            request_type, payload = install_command(
                app.kind,
                adam_id=app.adam_id,
                manifest_url=app.manifest_url
                or (f"{self.server_url}/mdm/apps/{app.id}/manifest" if app.manifest else None),
                manifest=app.manifest if app.kind == "macos_pkg" and not app.manifest_url else None,
                platform=platform,
            )
            findings = validate_command(request_type, payload, platform=platform)
            problems = [p for p in findings if p.severity == "error"]
            if problems:
                error = json.dumps({"refused_by_schema": [str(p) for p in problems]})
                self.store.set_state(device_id, app_id, "failed", error=error)
                fields = {"device_id": device_id, "app": app_id, "problems": len(problems)}
                log.warning("app_install_refused", extra={"fields": fields})
                continue
            command = new_command(request_type, payload)
            self.storage.enqueue(command, [enrollment_id])
            self.store.set_state(
                device_id, app_id, "pending", command_uuid=command.command_uuid, attempts=attempts
            )
            queued.append(request_type)
        by_bundle = {app.bundle_id: app for app in self.store.all()}
        for bundle_id in decided.remove:
            app_id = by_bundle[bundle_id].id
            if app_id in in_flight:
                continue  # a RemoveApplication is already on its way
            command = new_command(REMOVE, {"Identifier": bundle_id})
            self.storage.enqueue(command, [enrollment_id])
            self.store.set_state(device_id, app_id, "removing", command_uuid=command.command_uuid)
            queued.append(REMOVE)
        if queued:
            fields = {"enrollment_id": enrollment_id, "commands": queued}
            log.info("apps_reconciled", extra={"fields": fields})
        return queued
