"""App Store apps through Declarative Device Management (issue #17): the ``app.managed``
configuration, and which devices get an app that way rather than by command.

For each App Store app with ``required`` assignments the server keeps one
``com.apple.configuration.app.managed`` declaration (``AppStoreID``, installed ``Required``
with a device license) and a simple activation naming it, assigned to the same targets as the
app; the DDM feature then serves it to every channel whose device has one of those tags and
whose OS takes the type (Apple's schema: iOS 17.2 and later, the system scope; every kind of
enrollment, supervised or not: an unsupervised device asks its user to approve). Its
``IncludeInBackup`` is false when an assignment's ManagementFlags prevent backup (4).

An app with ``available`` assignments gets a second declaration and activation,
``<configuration id>.optional`` (``InstallBehavior.Install`` ``Optional``: "the user can
install and remove the app"), assigned to the available targets. The two forms may reach the
same device (it has a required tag and an available one); the device must then get only the
Required one, and that is resolved by the DDM feature per channel
(``mdmserver.ddm.service._one_app_managed_per_app``: an Optional app.managed yields to a
Required one of the same app, with its activation). Targets cannot express "this tag but not
that one" and an activation predicate sees only the device's properties, not the server's
tags, so neither could.

The choice per device is :func:`ddm_channel_reason`: DDM when the app is declared (in the form
of the device's assignment), the device's DDM is on and its OS takes ``app.managed``; otherwise
the command path, with the reason kept in the device's app state. An available app is never
sent by command (neither by the roll-out nor by reconciliation): only a declaration offers it.
An app whose required assignments carry a managed app configuration is not declared at all:
``app.managed`` has no key for one, and Apple's schema says InstallApplication and the Settings
ApplicationConfiguration item fail for apps that DDM manages, so that app goes by command
everywhere.

In-house (enterprise) apps stay on the command path, although ``app.managed`` has a
``ManifestURL``: the schema gives the type for iOS only (macOS, where this server's packages
go, is "n/a"), marks the whole type ``beta``, and for ``ManifestURL`` says only that the
manifest "is downloaded from a web site" and "returned as a property list": nothing about the
managed app configuration or the ManagementFlags that InstallApplication carries for these
apps, so declaring them would drop what their assignments ask for.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from mdmserver.apps.options import NO_FLAGS
from mdmserver.ddm import protocol
from mdmserver.ddm.schema import declaration_spec
from mdmserver.ddm.service import APP_MANAGED, SERVER_PREFIX, DDMService
from mdmserver.ddm.validate import check_declaration
from mdmserver.logs import get_logger
from mdmserver.storage.sql.app_store import AppRow, AppStore, Assignment

log = get_logger("apps.ddm")

ACTIVATION = "com.apple.activation.simple"
PREFIX = SERVER_PREFIX + "app."  # identifiers the admin API refuses to overwrite
MANAGED_BY = "apps"
PREVENT_BACKUP = 4


REQUIRED, AVAILABLE = "required", "available"  # the assignment behaviours
OPTIONAL_SUFFIX = ".optional"
_INSTALL = {REQUIRED: "Required", AVAILABLE: "Optional"}  # app.managed InstallBehavior.Install


def configuration_id(app_id: str, behaviour: str = REQUIRED) -> str:
    """The app's app.managed identifier for one behaviour (Required, or the Optional form)."""
    return f"{PREFIX}{app_id}" + (OPTIONAL_SUFFIX if behaviour == AVAILABLE else "")


def activation_id(app_id: str, behaviour: str = REQUIRED) -> str:
    return configuration_id(app_id, behaviour) + ".activation"


def app_id_of(declaration_identifier: Any) -> str | None:
    """The catalog app an app.managed.list entry's declaration-identifier names (either
    form, Required or Optional); None for an activation or anything else."""
    if not isinstance(declaration_identifier, str):
        return None
    if declaration_identifier.startswith(PREFIX) and not declaration_identifier.endswith(
        ".activation"
    ):
        app_id = declaration_identifier[len(PREFIX) :]
        return app_id.removesuffix(OPTIONAL_SUFFIX) or None
    return None


def declarable(app: AppRow, assignments: list[Assignment], behaviour: str = REQUIRED) -> bool:
    """Whether the app goes through DDM, in the form of ``behaviour``, where it can: an App
    Store app with assignments of that behaviour, none of which carries a managed app
    configuration; and an app whose required assignments carry one is not declared in either
    form (it goes by command everywhere)."""
    chosen = [a for a in assignments if a.behaviour == behaviour]
    required = [a for a in assignments if a.behaviour == REQUIRED]
    return (
        app.kind == "app_store"
        and app.adam_id is not None
        and bool(chosen)
        and all(a.configuration is None for a in (*chosen, *required))
    )


def declaration_payload(
    app: AppRow, assignments: list[Assignment], behaviour: str = REQUIRED
) -> dict[str, Any]:
    prevent_backup = any(
        a.management_flags not in (None, NO_FLAGS) and a.management_flags & PREVENT_BACKUP
        for a in assignments
        if a.behaviour == behaviour and a.management_flags is not None
    )
    return {
        "AppStoreID": str(app.adam_id),
        "InstallBehavior": {
            "Install": _INSTALL[behaviour],
            "License": {"Assignment": "Device"},
        },
        "IncludeInBackup": not prevent_backup,
    }


def ddm_channel_reason(
    declared: bool, ddm_enabled: bool, platform: str | None, os_version: str | None
) -> str | None:
    """None when this device gets the app through DDM, else why it goes by command.
    ``declared``: the app has its app.managed declaration in the form the device's assignment
    asks for (:meth:`AppDeclarations.is_declared` with that behaviour)."""
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

    def is_declared(self, app_id: str, behaviour: str = REQUIRED) -> bool:
        """Whether the app has its app.managed declaration for ``behaviour``."""
        return self.ddm.store.get(configuration_id(app_id, behaviour)) is not None

    def publish(self, app_id: str) -> int:
        """Bring one app's declarations (both forms) up to date; the channels sent a sync."""
        app = self.store.get(app_id)
        assignments = self.store.assignment_details(app_id) if app is not None else []
        changed = [self._publish(app_id, app, assignments, b) for b in (REQUIRED, AVAILABLE)]
        return self.ddm.sync() if any(changed) else 0

    def _publish(
        self, app_id: str, app: AppRow | None, assignments: list[Assignment], behaviour: str
    ) -> bool:
        """One form's declaration, activation and targets; whether anything may have changed."""
        config_id, act_id = configuration_id(app_id, behaviour), activation_id(app_id, behaviour)
        store = self.ddm.store
        fields: dict[str, Any] = {"app": app_id, "behaviour": behaviour}
        if app is None or not declarable(app, assignments, behaviour):
            if store.get(act_id) is None and store.get(config_id) is None:
                return False
            store.delete(act_id)
            store.delete(config_id)
            log.info("app_declaration_removed", extra={"fields": fields})
            return True
        now = datetime.now(UTC)
        payload = declaration_payload(app, assignments, behaviour)
        self._put(config_id, APP_MANAGED, payload, now)
        self._put(act_id, ACTIVATION, {"StandardConfigurations": [config_id]}, now)
        wanted = {a.target for a in assignments if a.behaviour == behaviour}
        held = set(store.assignments(act_id))
        for target in sorted(wanted - held):
            store.assign(act_id, target, now)
        for target in sorted(held - wanted):
            store.unassign(act_id, target)
        log.info("app_declared", extra={"fields": {**fields, "targets": sorted(wanted)}})
        return True

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
