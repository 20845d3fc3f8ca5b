"""Keeping devices' apps in their desired state (issue #17, item 3): on enrollment the server
asks for the ``ManagedApplicationList``; each answer is compared with the apps assigned to the
device, and the missing ``required`` apps get an install command, the catalog apps no longer
assigned a ``RemoveApplication``. Every command is checked against Apple's schema for the
device's platform before it is queued; one the schema refuses is not sent, and the app's state
says why. Answers to the install commands record ``installing`` or ``failed`` with the
ErrorChain, visible per device in ``GET /api/v1/apps/<app>/devices``; a failed install is
sent again only after a backoff that grows with each attempt (:func:`retry_at`). On a
schedule (:meth:`AppReconciler.queue_due_lists`, the ``apps_reconcile`` upkeep task) devices
whose last list is older than the interval, or whose failed install's backoff has passed, are
asked for the list again, so their answers reconcile them without waiting for an admin.

Each device's state also says how the app reaches it (``channel``): ``command`` as above, or
``ddm`` for an App Store app the device gets through its ``app.managed`` declaration
(:mod:`mdmserver.apps.declarative`), whose state comes from the ``app.managed.list`` status
item instead. ``InstalledApplicationList`` answers reconcile too (a required app they lack is
installed; nothing is removed on their word, as they do not say what is managed), and a
changed managed app configuration reaches an installed app as a Settings
``ApplicationConfiguration`` item, whose answer is tracked (:meth:`AppReconciler.on_settings`):
refused, it is sent again after the same backoff, its ErrorChain kept in the state.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from mdmserver.apps.declarative import AppDeclarations, app_id_of, ddm_channel_reason
from mdmserver.apps.desired import (
    WantedApp,
    ddm_app_state,
    install_command,
    plan,
    read_installed_list,
    read_managed_list,
)
from mdmserver.apps.options import configuration_digest, device_keys, settings_command
from mdmserver.catalog.platforms import platform_of
from mdmserver.catalog.validate import validate_command
from mdmserver.logs import get_logger
from mdmserver.protocol.commands import new_command
from mdmserver.protocol.results import Status
from mdmserver.service.hooks import EnrolledEvent, Hooks, ResultEvent
from mdmserver.service.next_command import Session
from mdmserver.storage.ports import AppPort, QueuePort
from mdmserver.storage.sql.app_store import WantedApp as StoredWanted

log = get_logger("apps.reconcile")

LIST = "ManagedApplicationList"
INSTALLS = ("InstallApplication", "InstallEnterpriseApplication")
REMOVE = "RemoveApplication"
INSTALLED_LIST = "InstalledApplicationList"
SETTINGS = "Settings"
_UNANSWERED = ("queued", "sent", "notnow")
RETRY_BASE = timedelta(minutes=5)  # after the first failure; each further one waits 4x more
RETRY_MAX = timedelta(hours=24)


StatusListener = Callable[[str, bool, Mapping[str, Any], Mapping[str, Any]], None]


def chain_status(first: StatusListener | None, then: StatusListener) -> StatusListener:
    """One DDM status listener calling two (inventory's, then the apps'): each one's failure
    is logged, never the other's loss."""

    def both(
        device_id: str, user_channel: bool, items: Mapping[str, Any], changed: Mapping[str, Any]
    ) -> None:
        for listener in (first, then):
            if listener is None:
                continue
            try:
                listener(device_id, user_channel, items, changed)
            except Exception:
                log.exception("ddm_status_listener_failed", extra={"fields": {"d": device_id}})

    return both


def retry_wait(attempts: int) -> timedelta:
    """How long after a failure with this many sent the command may be sent again."""
    return min(RETRY_BASE * 4 ** max(attempts - 1, 0), RETRY_MAX)


def retry_at(state: Mapping[str, Any]) -> datetime:
    """When a failed install (or Settings command: its ``configuration`` part) may be sent
    again: the backoff grows with the commands already sent."""
    updated: datetime = state["updated_at"]
    return updated + retry_wait(int(state["attempts"]))


def retry_cutoffs(now: datetime) -> list[tuple[int, datetime]]:
    """:func:`retry_at` for a query: (attempts, last try no later than) for each step of
    the backoff until its cap (the last entry is for that many attempts and more)."""
    out: list[tuple[int, datetime]] = []
    attempts = 1
    while True:
        wait = retry_wait(attempts)
        out.append((attempts, now - wait))
        if wait >= RETRY_MAX:
            return out
        attempts += 1


def _error_json(status: str, chain: Any, **more: Any) -> str:
    return json.dumps(
        {"status": status, "ErrorChain": chain if isinstance(chain, list) else [], **more},
        default=str,
    )


class AppReconciler:
    def __init__(
        self,
        store: AppPort,
        storage: QueuePort,
        server_url: str,
        declarations: AppDeclarations | None = None,
    ) -> None:
        self.store = store
        self.storage = storage
        self.server_url = server_url.rstrip("/")
        # App Store apps go through DDM's app.managed where the device takes it (None: never).
        self.declarations = declarations

    def register(self, hooks: Hooks) -> None:
        """Enrollment asks for the list at once; the install and remove answers come to
        :meth:`on_answer` as their commands declare (commands/install_application.py,
        remove_application.py); :meth:`step` is wired by service.next_command.build_steps."""
        hooks.on_enrolled(self.on_enrolled)
        hooks.readers.apps = self

    def on_app_list(self, event: ResultEvent) -> None:
        """Remember when the device last answered its ManagedApplicationList: the scheduled
        reconcile (:meth:`queue_due_lists`) asks again once that is older than the interval."""
        identity = event.identity
        if identity.is_user_channel or event.result.status != Status.ACKNOWLEDGED:
            return
        self.store.record_list(identity.device_id)

    def queue_due_lists(
        self, interval: timedelta, now: datetime | None = None, limit: int = 1000
    ) -> int:
        """The scheduled reconcile (issue #17: "on a schedule"): ask for the
        ManagedApplicationList of devices with app assignments whose last one is older than
        ``interval``, and of those whose failed install or refused configuration has passed
        its backoff, at most ``limit`` of each per run, never while one is already queued or
        unanswered for the device. Their answers reconcile as any (:meth:`step`). One command
        for the batch; the storage given is the waking one, so they are pushed."""
        now = now or datetime.now(UTC)
        stale = self.store.lists_due(now - interval, limit)
        retries = self.store.retries_due(retry_cutoffs(now), limit)
        due = list(dict.fromkeys([*stale, *retries]))
        if due:
            self.storage.enqueue(new_command(LIST), due)
            fields = {"stale": len(stale), "retries": len(retries), "queued": len(due)}
            log.info("apps_lists_queued", extra={"fields": fields})
        return len(due)

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
            error = _error_json(result.status.value, result.raw.get("ErrorChain"))
            self.store.set_state(
                identity.device_id, app_id, "failed", error=error, keep_command=True
            )

    def on_settings(self, event: ResultEvent) -> None:
        """The answer to a Settings ApplicationConfiguration command (commands/settings.py):
        an Error, or an item of its ``Settings`` results with Status Error, keeps the
        ErrorChain in the app's state and clears the recorded configuration digest, so the
        next reconcile sends it again after the backoff (:func:`retry_at`); Acknowledged
        keeps it. Settings commands not sent for an app's configuration are not ours."""
        result, identity = event.result, event.identity
        if result.command_uuid is None or result.status == Status.NOT_NOW:
            return
        app_id = self.store.configuration_for_command(identity.device_id, result.command_uuid)
        if app_id is None:
            return
        items = result.raw.get("Settings")
        listed = items if isinstance(items, list) else [items] if isinstance(items, Mapping) else []
        failed = [
            item for item in listed if isinstance(item, Mapping) and item.get("Status") == "Error"
        ]
        error = None
        if result.status != Status.ACKNOWLEDGED:
            error = _error_json(
                result.status.value,
                result.raw.get("ErrorChain"),
                items=[dict(item) for item in failed],
            )
        elif failed:
            first = failed[0]
            error = _error_json(
                "Error",
                first.get("ErrorChain"),
                identifier=first.get("Identifier"),
            )
        self.store.configuration_answered(identity.device_id, app_id, error)
        if error is not None:
            fields = {"device_id": identity.device_id, "app": app_id}
            log.warning("app_configuration_failed", extra={"fields": fields})

    # App state from more answers (issue #17): registered next to register() by the wiring.

    def register_app_state(self, hooks: Hooks) -> None:
        """InstalledApplicationList answers reconcile too; the DDM status feed is
        :meth:`on_ddm_status`; Settings answers come to :meth:`on_settings` as
        commands/settings.py declares."""
        hooks.on_result(INSTALLED_LIST, self.on_installed_list)

    def on_installed_list(self, event: ResultEvent) -> None:
        """Every app on the device, managed or not: a required app missing from it is
        installed again, one present is installed (with its version); nothing is removed from
        this list alone (it does not say which apps are managed)."""
        identity = event.identity
        if identity.is_user_channel or event.result.status != Status.ACKNOWLEDGED:
            return
        listed = read_installed_list(event.result.raw)
        if listed is None:
            log.warning("app_list_unreadable", extra={"fields": {"enrollment_id": identity.id}})
            return
        if not self.store.wanted_by(identity.device_id):
            return
        reported = dict.fromkeys(listed, "Managed")
        self.reconcile(identity.id, reported, versions=listed, removals=False)

    def on_ddm_status(
        self,
        device_id: str,
        user_channel: bool,
        items: Mapping[str, Any],
        changed: Mapping[str, Any],
    ) -> None:
        """The app.managed.list status item into the per-device state (channel ``ddm``)."""
        if user_channel or "app.managed.list" not in changed:
            return
        entries = changed["app.managed.list"]
        if not isinstance(entries, list):
            return
        by_bundle = {app.bundle_id: app.id for app in self.store.all()}
        known = set(by_bundle.values())
        seen: set[str] = set()
        for entry in entries:
            if not isinstance(entry, Mapping):
                continue
            app_id = app_id_of(entry.get("declaration-identifier")) or by_bundle.get(
                str(entry.get("identifier"))
            )
            if app_id is None or app_id not in known:
                continue
            seen.add(app_id)
            status, reasons = ddm_app_state(entry)
            version = entry.get("short-version") or entry.get("version")
            self.store.set_state(
                device_id,
                app_id,
                status,
                error=json.dumps({"reasons": reasons}, default=str) if reasons else None,
                keep_command=True,
                channel="ddm",
                installed_version=str(version) if isinstance(version, str | int) else None,
                attempts=0 if status == "installed" else None,
            )
        wanted = self.store.wanted_by(device_id)
        for app_id, state in self.store.device_states(device_id).items():
            if state["channel"] == "ddm" and app_id not in seen and app_id not in wanted:
                self.store.forget_state(device_id, app_id)  # removed with its declaration
        fields = {"device_id": device_id, "apps": sorted(seen)}
        log.info("apps_ddm_status", extra={"fields": fields})

    def reconcile(
        self,
        enrollment_id: str,
        reported: dict[str, str],
        *,
        versions: Mapping[str, str | None] | None = None,
        removals: bool = True,
    ) -> list[str]:
        """Queue what brings one device channel to its desired apps; the commands queued.

        ``reported``: bundle id -> ManagedApplicationList Status; ``versions``: what an
        InstalledApplicationList said (its apps' versions); ``removals``: whether the answer
        can tell which apps are managed (an InstalledApplicationList cannot)."""
        device_id = enrollment_id  # device channels only: their id is the device id
        facts = self.store.device_facts(device_id)
        platform = platform_of(facts.get("product_name"), facts.get("model"))
        os_version = facts.get("os_version")
        user_enrollment = bool(facts.get("user_enrollment"))
        wanted = self.store.wanted_by(device_id)
        assigned = {app_id: (w.app, w.assignment.behaviour) for app_id, w in wanted.items()}
        states = self.store.device_states(device_id)
        required: dict[str, WantedApp] = {}
        by_ddm: dict[str, WantedApp] = {}
        offered: dict[str, WantedApp] = {}  # available apps its Optional declaration offers
        for app_id, w in wanted.items():
            app = w.app
            if w.assignment.behaviour != "required":  # available: never sent by command
                if self._offered(app_id, facts, platform, os_version):
                    offered[app_id] = WantedApp(app.id, app.bundle_id, app.kind, licensed=True)
                continue
            entry = WantedApp(
                app.id,
                app.bundle_id,
                app.kind,
                licensed=app.adam_id is not None
                and self.store.has_license(app.adam_id, facts.get("serial_number")),
            )
            declared = self.declarations is not None and self.declarations.is_declared(app_id)
            reason = ddm_channel_reason(
                declared, bool(facts.get("ddm_enabled")), platform, os_version
            )
            (by_ddm if reason is None else required)[app_id] = entry
        self._follow_ddm(device_id, by_ddm, states)
        self._follow_ddm(device_id, offered, states, status="pending")
        pending = {
            q.command_uuid for q in self.storage.queue(enrollment_id) if q.status in _UNANSWERED
        }
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
        versions = versions or {}
        queued: list[str] = []
        for app_id, status in decided.state.items():
            previous = states.get(app_id, {})
            version = versions.get(wanted[app_id].app.bundle_id)
            if app_id not in decided.install and (
                previous.get("status") != status
                or previous.get("channel") != "command"
                or (version is not None and previous.get("installed_version") != version)
            ):
                attempts = 0 if status == "installed" else None
                self.store.set_state(
                    device_id, app_id, status, keep_command=True, attempts=attempts,
                    channel="command", installed_version=version,
                )  # fmt: skip
        installs = self._install(
            enrollment_id, decided.install, wanted, states, platform, os_version, user_enrollment
        )
        queued += [request_type for _, request_type in installs]
        queued += self._configure(enrollment_id, decided.state, wanted, states, platform)
        by_bundle = {app.bundle_id: app for app in self.store.all()}
        for bundle_id in decided.remove if removals else ():
            app_id = by_bundle[bundle_id].id
            if app_id in in_flight or states.get(app_id, {}).get("channel") == "ddm":
                continue  # a RemoveApplication is on its way, or DDM removes it
            command = new_command(REMOVE, {"Identifier": bundle_id})
            self.storage.enqueue(command, [enrollment_id])
            self.store.set_state(device_id, app_id, "removing", command_uuid=command.command_uuid)
            queued.append(REMOVE)
        if queued:
            fields = {"enrollment_id": enrollment_id, "commands": queued}
            log.info("apps_reconciled", extra={"fields": fields})
        return queued

    def _install(
        self,
        enrollment_id: str,
        app_ids: list[str],
        wanted: Mapping[str, StoredWanted],
        states: Mapping[str, Mapping[str, Any]],
        platform: str | None,
        os_version: str | None,
        user_enrollment: bool,
    ) -> list[tuple[str, str]]:
        """Queue one install command per app (unless it is backing off after a failure), each
        checked against Apple's schema for the device first; (app id, request type) queued."""
        device_id = enrollment_id
        queued: list[tuple[str, str]] = []
        now = datetime.now(UTC)
        for app_id in app_ids:
            app = wanted[app_id].app
            assignment = wanted[app_id].assignment
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
                management_flags=assignment.management_flags,
                configuration=assignment.configuration,
            )
            notes = device_keys(
                request_type, payload, platform, os_version, user_enrollment=user_enrollment
            )
            findings = validate_command(request_type, payload, platform=platform)
            problems = [p for p in findings if p.severity == "error"]
            if problems:
                error = json.dumps({"refused_by_schema": [str(p) for p in problems]})
                self.store.set_state(device_id, app_id, "failed", error=error, channel="command")
                fields = {"device_id": device_id, "app": app_id, "problems": len(problems)}
                log.warning("app_install_refused", extra={"fields": fields})
                continue
            if notes:
                fields = {"device_id": device_id, "app": app_id, "notes": notes}
                log.info("app_install_keys_left_out", extra={"fields": fields})
            command = new_command(request_type, payload)
            self.storage.enqueue(command, [enrollment_id])
            self.store.set_state(
                device_id, app_id, "pending", command_uuid=command.command_uuid,
                attempts=attempts, channel="command",
                configuration_sha256=configuration_digest(payload.get("Configuration")),
            )  # fmt: skip
            queued.append((app_id, request_type))
        return queued

    def reinstall(self, device_id: str, bundle_ids: Sequence[str]) -> set[str]:
        """Compliance remediation: install these apps again now where they are catalog apps
        assigned to the device (required or available); the bundle ids on their way. An app
        the device gets through DDM is left to it (a required app.managed app is reinstalled
        by the device itself); one already being installed is not sent twice."""
        wanted = self.store.wanted_by(device_id)
        by_bundle = {w.app.bundle_id.lower(): app_id for app_id, w in wanted.items()}
        states = self.store.device_states(device_id)
        pending = {q.command_uuid for q in self.storage.queue(device_id) if q.status in _UNANSWERED}
        facts = self.store.device_facts(device_id)
        platform = platform_of(facts.get("product_name"), facts.get("model"))
        on_way: set[str] = set()
        install: dict[str, str] = {}  # app id -> the bundle id as the policy spells it
        for bundle_id in bundle_ids:
            app_id = by_bundle.get(bundle_id.lower())
            if app_id is None:
                continue
            state = states.get(app_id, {})
            if state.get("channel") == "ddm" or state.get("command_uuid") in pending:
                on_way.add(bundle_id)
            else:
                install[app_id] = bundle_id
        sent = self._install(
            device_id, list(install), wanted, states, platform, facts.get("os_version"),
            bool(facts.get("user_enrollment")),
        )  # fmt: skip
        return on_way | {install[app_id] for app_id, _ in sent}

    def _offered(
        self, app_id: str, facts: Mapping[str, Any], platform: str | None, os_version: str | None
    ) -> bool:
        """Whether an available app reaches this device as an Optional app.managed."""
        declared = self.declarations is not None and self.declarations.is_declared(
            app_id, "available"
        )
        reason = ddm_channel_reason(declared, bool(facts.get("ddm_enabled")), platform, os_version)
        return reason is None

    def _follow_ddm(
        self,
        device_id: str,
        by_ddm: Mapping[str, WantedApp],
        states: Mapping[str, Mapping[str, Any]],
        status: str | None = None,
    ) -> None:
        """Apps this device gets through its app.managed declarations: no command; their
        state comes from app.managed.list, until then "installing" (or "needs_license"), or
        ``status`` ("pending" for an Optional app: offered, the user decides)."""
        for app_id, app in by_ddm.items():
            previous = states.get(app_id, {})
            if previous.get("channel") == "ddm" and previous.get("status") != "removing":
                continue  # the device's own status decides
            first = status or ("installing" if app.licensed else "needs_license")
            self.store.set_state(device_id, app_id, first, channel="ddm", attempts=0)

    def _configure(
        self,
        enrollment_id: str,
        decided: Mapping[str, str],
        wanted: Mapping[str, StoredWanted],
        states: Mapping[str, Mapping[str, Any]],
        platform: str | None,
    ) -> list[str]:
        """A managed app configuration changed for an installed app: Apple's Settings
        ApplicationConfiguration item sets it (or removes it) without reinstalling."""
        queued = []
        now = datetime.now(UTC)
        for app_id, status in decided.items():
            if status != "installed":
                continue
            configuration = wanted[app_id].assignment.configuration
            digest = configuration_digest(configuration)
            previous = states.get(app_id, {})
            sent = previous.get("configuration") or {}
            failed = sent.get("status") == "failed"
            if not failed and (previous.get("configuration_sha256") or "") == digest:
                continue
            if sent.get("status") == "sent":
                continue  # the last one is unanswered yet
            if failed and now < retry_at(sent):
                continue  # refused by the device: backing off, the state says when
            payload = settings_command(wanted[app_id].app.bundle_id, configuration)
            findings = validate_command(SETTINGS, payload, platform=platform)
            if any(p.severity == "error" for p in findings):
                fields = {"enrollment_id": enrollment_id, "app": app_id}
                log.warning("app_configuration_refused", extra={"fields": fields})
                continue
            command = new_command(SETTINGS, payload)
            self.storage.enqueue(command, [enrollment_id])
            self.store.configuration_sent(enrollment_id, app_id, command.command_uuid, digest)
            queued.append(SETTINGS)
        return queued
