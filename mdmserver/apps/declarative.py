"""App Store apps through Declarative Device Management (issue #17): the ``app.managed``
configuration, and which devices get an app that way rather than by command.

For each App Store app with ``required`` assignments the server keeps one
``com.apple.configuration.app.managed`` declaration (``AppStoreID``, installed ``Required``
with a device license) and a simple activation naming it, assigned to the same targets as the
app; the DDM feature then serves it to every channel whose device has one of those tags and
whose OS takes the type (Apple's schema: iOS 17.2 and later, the system scope; every kind of
enrollment, supervised or not: an unsupervised device asks its user to approve). Its
``IncludeInBackup`` is false when an assignment's ManagementFlags prevent backup (4).

The choice per device is :func:`ddm_channel_reason`: DDM when the app is declared, the device's
DDM is on and its OS takes ``app.managed``; otherwise the command path, with the reason kept
in the device's app state. An app whose required assignments carry a managed app
configuration is not declared at all: ``app.managed`` has no key for one, and Apple's schema
says InstallApplication and the Settings ApplicationConfiguration item fail for apps that DDM
manages, so that app goes by command everywhere.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from mdmserver.apps.options import NO_FLAGS
from mdmserver.ddm import protocol
from mdmserver.ddm.schema import declaration_spec
from mdmserver.ddm.service import SERVER_PREFIX, DDMService
from mdmserver.ddm.validate import check_declaration
from mdmserver.logs import get_logger
from mdmserver.storage.sql.app_store import AppRow, AppStore, Assignment

log = get_logger("apps.ddm")

APP_MANAGED = "com.apple.configuration.app.managed"
ACTIVATION = "com.apple.activation.simple"
PREFIX = SERVER_PREFIX + "app."  # identifiers the admin API refuses to overwrite
MANAGED_BY = "apps"
PREVENT_BACKUP = 4


def configuration_id(app_id: str) -> str:
    return f"{PREFIX}{app_id}"


def activation_id(app_id: str) -> str:
    return f"{PREFIX}{app_id}.activation"


def app_id_of(declaration_identifier: Any) -> str | None:
    """The catalog app an app.managed.list entry's declaration-identifier names."""
    if not isinstance(declaration_identifier, str):
        return None
    if declaration_identifier.startswith(PREFIX) and not declaration_identifier.endswith(
        ".activation"
    ):
        return declaration_identifier[len(PREFIX) :]
    return None


def declarable(app: AppRow, assignments: list[Assignment]) -> bool:
    """Whether the app goes through DDM where it can: an App Store app with required
    assignments, none of which carries a managed app configuration."""
    required = [a for a in assignments if a.behaviour == "required"]
    return (
        app.kind == "app_store"
        and app.adam_id is not None
        and bool(required)
        and all(a.configuration is None for a in required)
    )


def declaration_payload(app: AppRow, assignments: list[Assignment]) -> dict[str, Any]:
    prevent_backup = any(
        a.management_flags not in (None, NO_FLAGS) and a.management_flags & PREVENT_BACKUP
        for a in assignments
        if a.behaviour == "required" and a.management_flags is not None
    )
    return {
        "AppStoreID": str(app.adam_id),
        "InstallBehavior": {"Install": "Required", "License": {"Assignment": "Device"}},
        "IncludeInBackup": not prevent_backup,
    }


def ddm_channel_reason(
    declared: bool, ddm_enabled: bool, platform: str | None, os_version: str | None
) -> str | None:
    """None when this device gets the app through DDM, else why it goes by command."""
    if not declared:
        return "not an App Store app declared for DDM (or its assignment has a configuration)"
    if not ddm_enabled:
        return "Declarative Device Management is not on for this device"
    spec = declaration_spec(APP_MANAGED)
    if spec is None:
        return f"{APP_MANAGED} is not in this server's schema"
    if platform is None or os_version is None:
        return "platform or OS version not known yet"
    return spec.unsupported(platform, os_version, user_channel=False)


class AppDeclarations:
    """Keeps each app's app.managed declaration, activation and targets in step with its
    assignments, and lets the DDM feature sync the channels that changed."""

    def __init__(self, store: AppStore, ddm: DDMService) -> None:
        self.store = store
        self.ddm = ddm

    def is_declared(self, app_id: str) -> bool:
        return self.ddm.store.get(configuration_id(app_id)) is not None

    def publish(self, app_id: str) -> int:
        """Bring one app's declarations up to date; the channels sent a sync."""
        app = self.store.get(app_id)
        assignments = self.store.assignment_details(app_id) if app is not None else []
        config_id, act_id = configuration_id(app_id), activation_id(app_id)
        store = self.ddm.store
        if app is None or not declarable(app, assignments):
            if store.get(act_id) is None and store.get(config_id) is None:
                return 0
            store.delete(act_id)
            store.delete(config_id)
            log.info("app_declaration_removed", extra={"fields": {"app": app_id}})
            return self.ddm.sync()
        now = datetime.now(UTC)
        self._put(config_id, APP_MANAGED, declaration_payload(app, assignments), now)
        self._put(act_id, ACTIVATION, {"StandardConfigurations": [config_id]}, now)
        wanted = {a.target for a in assignments if a.behaviour == "required"}
        held = set(store.assignments(act_id))
        for target in sorted(wanted - held):
            store.assign(act_id, target, now)
        for target in sorted(held - wanted):
            store.unassign(act_id, target)
        log.info("app_declared", extra={"fields": {"app": app_id, "targets": sorted(wanted)}})
        return self.ddm.sync()

    def _put(
        self, identifier: str, declaration_type: str, payload: Mapping[str, Any], now: datetime
    ) -> None:
        spec, checked, _ = check_declaration(
            identifier, {"Type": declaration_type, "Payload": dict(payload)}
        )
        token = protocol.server_token(declaration_type, identifier, checked)
        self.ddm.store.put(
            identifier, declaration_type, spec.cls, checked, token, now, managed_by=MANAGED_BY
        )
