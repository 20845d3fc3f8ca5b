"""What the admin API and CLI do with profiles: one place, so both behave the same.

Nothing is stored unless the profile builds and validates: a refusal names the key path.
After every change that alters who should have what, the affected devices are reconciled, so
commands are queued at once (they go out at the device's next check-in). A change is kept even
when devices cannot be sent profiles yet (no signer): the result's warnings say so, and the
devices are brought in line by a later sync (see ProfileService.reconcile).
"""

from __future__ import annotations

import builtins
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

from mdmserver.bounds import PROFILE_IDENTIFIER, PROFILE_NAME, TAG
from mdmserver.catalog.validate import ValidationError
from mdmserver.errors import NotFound
from mdmserver.profiles import devicevars, validation
from mdmserver.profiles.builder import BuiltProfile, build
from mdmserver.profiles.redact import redact
from mdmserver.profiles.service import ProfileService
from mdmserver.profiles.template import Template, TemplateError, load_templates
from mdmserver.profiles.validation import ProfileRefused
from mdmserver.storage.ports import ProfilePort
from mdmserver.storage.sql.profile_store import ALL, NameTaken, NewProfile, ProfileRow, StateRow

DEFAULT_PREFIX = "com.mdmserver.profile"
UPLOAD = "upload"
T = TypeVar("T")


class ProfileNotFound(NotFound, LookupError):
    pass


@dataclass(frozen=True)
class Saved:
    profile: ProfileRow
    warnings: list[ValidationError]


@dataclass(frozen=True)
class Applied(Generic[T]):
    """What a change returned, and what it could not do for devices yet (``warnings``)."""

    value: T
    warnings: list[ValidationError] = field(default_factory=list)


def parse_target(text: str) -> str:
    """ "all", or "tag:<name>" (a bare name is taken as a tag)."""
    text = text.strip()
    if not text:
        raise ValueError("an assignment target is 'all' or 'tag:<name>'")
    if text == ALL:
        return text
    name = text.removeprefix("tag:")
    if not name:
        raise ValueError("tag: needs a tag name")
    TAG.check(name, "the target's tag")  # a BoundError is a ValueError (400)
    return f"tag:{name}"


class ProfileAdmin:
    def __init__(
        self,
        store: ProfilePort,
        service: ProfileService,
        templates_dir: Path | None = None,
        *,
        presign: Callable[[list[bytes]], None] | None = None,
        push: Callable[[list[str]], Any] | None = None,
    ) -> None:
        self.store = store
        self.service = service
        self.templates_dir = templates_dir
        self.presign = presign  # sign new content in the job backend, ahead of devices
        self.push = push  # wake devices that were just given commands

    def _reconcile(self) -> list[ValidationError]:
        """Bring every device in line after a change, and wake the ones given commands.
        Returns a warning when devices had to be left as they are (no signer yet)."""
        outcomes = self.service.reconcile_all()
        changed = [o.enrollment_id for o in outcomes if o.plan]
        if changed and self.push is not None:
            self.push(changed)
        deferred = [o.deferred for o in outcomes if o.deferred]
        if not deferred:
            return []
        message = (
            f"profiles not sent to {len(deferred)} device(s) yet: {deferred[0]}; the change "
            "is saved, and they get it once the signer exists (retry, or their next report)"
        )
        return [ValidationError("devices", message, "warning")]

    def templates(self) -> dict[str, Template]:
        return load_templates(self.templates_dir)

    # Creating and changing ------------------------------------------------------------------

    def from_template(
        self,
        template_name: str,
        name: str,
        values: Mapping[str, Any],
        *,
        identifier: str | None = None,
        scope: str | None = "System",
        encrypt: bool | None = None,
        replace: bool = False,
    ) -> Saved:
        template = self.templates().get(template_name)
        if template is None:
            raise ProfileRefused([ValidationError("template", f"no template {template_name!r}")])
        try:
            rendered = template.render(values)
            built = build(rendered, identifier or f"{DEFAULT_PREFIX}.{name}", scope=scope)
            secrets = template.secret_values(values)
        except TemplateError as exc:
            raise ProfileRefused([ValidationError("", str(exc))]) from None
        wants_encryption = template.encrypt if encrypt is None else encrypt
        shown = redact(built.content, secrets) if secrets else None
        return self._save(name, built, template.name, wants_encryption, replace, shown)

    def from_upload(
        self,
        name: str,
        data: bytes,
        *,
        identifier: str | None = None,
        encrypt: bool = False,
        replace: bool = False,
    ) -> Saved:
        """A custom .mobileconfig (signed or not), validated exactly like a template."""
        profile = validation.parse(data)
        scope = profile.get("PayloadScope")
        try:
            built = build(profile, identifier, scope=scope if isinstance(scope, str) else None)
        except TemplateError as exc:
            raise ProfileRefused([ValidationError("", str(exc))]) from None
        return self._save(name, built, UPLOAD, encrypt, replace)

    def _save(
        self,
        name: str,
        built: BuiltProfile,
        source: str,
        encrypt: bool,
        replace: bool,
        shown: bytes | None = None,
    ) -> Saved:
        """Store the profile; with `shown` (secrets redacted) the content is sealed at rest."""
        if PROFILE_NAME.problem(name) is not None:
            raise ProfileRefused(
                [ValidationError("name", f"1 to {PROFILE_NAME.max_len} characters, no controls")]
            )
        problem = PROFILE_IDENTIFIER.problem(built.identifier)
        if problem is not None:
            raise ProfileRefused([ValidationError("PayloadIdentifier", problem)])
        warnings = validation.assert_manageable(built.profile, built.content)
        new = NewProfile(
            name=name,
            identifier=built.identifier,
            payload_uuid=built.payload_uuid,
            digest=built.digest,
            content=built.content,
            source=source,
            payload_types=built.payload_types,
            encrypt=encrypt,
            per_device=devicevars.uses_device_values(built.content),
            shown_content=shown,
        )
        existing = self.store.get(name)
        try:
            if existing is not None and existing.deleted_at is None:
                if not replace:
                    raise NameTaken(f"a profile named {name!r} exists (replace it to update)")
                saved = self.store.replace(existing.id, new)
                assert saved is not None
            else:
                saved = self.store.create(new)
        except NameTaken as exc:
            raise ProfileRefused([ValidationError("name", str(exc))]) from None
        if (
            self.presign is not None
            and not saved.per_device
            and not saved.encrypt
            and not saved.has_secrets  # its signature would hold the secrets in the clear
        ):
            self.presign([saved.content])
        if existing is not None and existing.digest != saved.digest:
            warnings = [*warnings, *self._reconcile()]
        return Saved(saved, warnings)

    def delete(self, key: str) -> Applied[ProfileRow]:
        profile = self.get(key)
        self.store.delete(profile.id)
        return Applied(profile, self._reconcile())

    # Assignments ----------------------------------------------------------------------------

    def assign(self, key: str, target: str) -> Applied[bool]:
        """Whether the assignment is new (an existing one changes nothing)."""
        profile = self.get(key)
        added = self.store.assign(profile.id, parse_target(target))
        return Applied(added, self._reconcile() if added else [])

    def unassign(self, key: str, target: str) -> Applied[bool]:
        """Whether there was such an assignment to remove."""
        profile = self.get(key)
        removed = self.store.unassign(profile.id, parse_target(target))
        return Applied(removed, self._reconcile() if removed else [])

    def retry(self, key: str) -> Applied[int]:
        """How many failed devices are tried again. Every device is synced, failed or not:
        this is also how an admin sends what was deferred (no signer) once there is one."""
        profile = self.get(key)
        count = self.service.retry(profile.identifier)
        return Applied(count, self._reconcile())

    # Reading --------------------------------------------------------------------------------

    def get(self, key: str) -> ProfileRow:
        profile = self.store.get(key)
        if profile is None:
            raise ProfileNotFound(f"no profile {key!r}")
        return profile

    def list(self) -> list[ProfileRow]:
        return self.store.list()

    def status(
        self, key: str | None = None, device: str | None = None
    ) -> builtins.list[StateRow]:  # ``list`` here is the method above
        identifier = self.get(key).identifier if key else None
        return self.store.status_rows([device] if device else None, identifier)


def describe(profile: ProfileRow, assignments: list[str]) -> dict[str, Any]:
    """A profile as JSON for the API and CLI (the content is downloadable separately)."""
    return {
        "id": profile.id,
        "name": profile.name,
        "identifier": profile.identifier,
        "payload_uuid": profile.payload_uuid,
        "revision": profile.revision,
        "source": profile.source,
        "payload_types": list(profile.payload_types),
        "encrypt": profile.encrypt,
        "per_device": profile.per_device,
        "assignments": assignments,
        "created_at": profile.created_at.isoformat(),
        "updated_at": profile.updated_at.isoformat(),
        "deleted_at": profile.deleted_at.isoformat() if profile.deleted_at else None,
    }


def describe_state(state: StateRow) -> dict[str, Any]:
    """One device's status for one profile; `failed` carries the device's ErrorChain."""
    if state.status == "pending" and not state.queued and state.command_uuid:
        shown = "stale"  # its command expired or was cleared: the next reconcile resends
    else:
        shown = state.status
    return {
        "enrollment_id": state.enrollment_id,
        "identifier": state.identifier,
        "status": shown,
        "action": state.action,
        "installed_uuid": state.installed_uuid,
        "command_uuid": state.command_uuid,
        "error": json.loads(state.error) if state.error else None,
        "updated_at": state.updated_at.isoformat(),
    }


def refusal(exc: ProfileRefused) -> list[dict[str, str]]:
    return [{"path": e.path, "message": e.message} for e in exc.errors]
