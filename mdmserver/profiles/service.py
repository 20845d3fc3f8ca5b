"""Profile reconciliation: devices get what they are assigned, and lose what they no longer are.

It queues on enrollment (a hook: everything assigned, then a ProfileList to confirm), after
every ProfileList answer (its step in service/next_command.py: the device's own account is the
truth), and after an admin change, inside the device's request so what it queues goes out in
the same session. The answers it reads are declared by their commands (commands/profile_list,
install_profile, remove_profile, security_info): a ProfileList is stored, InstallProfile /
RemoveProfile answers update each device's status with the ErrorChain of a refusal, escrowed
FileVault recovery keys in SecurityInfo answers are stored as received.

Without the profile signer (``mdmserver init`` not run) a device's sync is deferred whole:
every payload is prepared before anything is queued, so a device is never sent half its plan
(a removal without the install that replaces it); the next sync after the signer appears
(ProfileList report, admin change or retry) brings it in line.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from mdmserver.crypto.ca import fingerprint_sha256
from mdmserver.logs import get_logger
from mdmserver.profiles import devicevars
from mdmserver.profiles.desired import Known, Plan, plan
from mdmserver.profiles.encrypt import encrypt_profile
from mdmserver.profiles.signing import SignerMissing, Signing
from mdmserver.profiles.validation import MDM_PAYLOAD
from mdmserver.protocol.commands import new_command
from mdmserver.protocol.results import Status
from mdmserver.service.hooks import EnrolledEvent, Hooks, ResultEvent
from mdmserver.service.next_command import Session
from mdmserver.storage.ports import ProfilePort, QueuePort
from mdmserver.storage.sql.profile_store import ProfileRow

log = get_logger("profiles")


class PrepareError(RuntimeError):
    """A profile cannot be made ready for this device (no certificate, missing value)."""


@dataclass(frozen=True)
class Outcome:
    enrollment_id: str
    plan: Plan
    refused: Mapping[str, str]  # identifier -> why it could not be prepared
    deferred: str | None = None  # why nothing was queued although the device needs changes


class ProfileService:
    def __init__(
        self,
        store: ProfilePort,
        storage: QueuePort,
        signing: Signing,
        *,
        access_challenge: Callable[[str], str | None] | None = None,
    ) -> None:
        self.store = store
        self.storage = storage
        self.signing = signing
        # Makes ${device.access_challenge}: a one-time SCEP challenge bound to the device.
        self.access_challenge = access_challenge

    def register(self, hooks: Hooks) -> None:
        """Enrollment reconciles at once; the answers this service reads are dispatched to it
        as their commands declare (its step is wired by service.next_command.build_steps)."""
        hooks.on_enrolled(self.on_enrolled)
        hooks.readers.profiles = self

    # Hooks, answers and the step ------------------------------------------------------------

    def on_enrolled(self, event: EnrolledEvent) -> None:
        identity = event.identity
        if identity.is_user_channel:
            return
        self.store.forget_installed(identity.id)
        outcome = self.reconcile(identity.id)
        queued = {q.request_type for q in self.storage.queue(identity.id)}
        if outcome.plan and "ProfileList" not in queued:
            # Confirm with the device's own list once the installs are through (inventory
            # may have asked for one already: its answer reaches this service too).
            self.storage.enqueue(new_command("ProfileList"), [identity.id])

    def on_profile_list(self, event: ResultEvent) -> None:
        if event.identity.is_user_channel or event.result.status != Status.ACKNOWLEDGED:
            return
        items = event.result.raw.get("ProfileList")
        if not isinstance(items, list):
            return
        reported, _protected = read_profile_list(items)
        self.store.record_profile_list(event.identity.id, reported)

    def step(self, session: Session) -> None:
        """After a ProfileList answer (stored by :meth:`on_profile_list`), queue what brings
        the device to its desired state. Otherwise nothing, with no query: the Idle hot path
        pays one attribute check."""
        event = session.answered
        if event is None or event.request_type != "ProfileList":
            return None
        if event.identity.is_user_channel or event.result.status != Status.ACKNOWLEDGED:
            return None
        items = event.result.raw.get("ProfileList")
        if not isinstance(items, list):
            return None
        _reported, protected = read_profile_list(items)
        self.reconcile(event.identity.id, protected=protected)
        return None

    def on_answer(self, event: ResultEvent) -> None:
        result = event.result
        if result.command_uuid is None:
            return
        ok = result.status == Status.ACKNOWLEDGED
        error = None if ok else error_json(result.status.value, result.raw)
        self.store.record_answer(event.identity.id, result.command_uuid, ok=ok, error=error)

    def on_security_info(self, event: ResultEvent) -> None:
        info = event.result.raw.get("SecurityInfo")
        if not isinstance(info, dict):
            return
        envelope = info.get("FDE_PersonalRecoveryKeyCMS")
        if isinstance(envelope, bytes) and envelope:
            key = info.get("FDE_PersonalRecoveryKeyDeviceKey")
            self.store.save_escrow(
                event.identity.device_id, key if isinstance(key, str) else None, envelope
            )
            log.info("fde_key_escrowed", extra={"fields": {"device_id": event.identity.device_id}})

    # Reconciliation ---------------------------------------------------------------------------

    def reconcile(self, enrollment_id: str, *, protected: Iterable[str] = ()) -> Outcome:
        """Queue what brings one device-channel enrollment to its desired state, or nothing
        (``deferred`` says why) while there is no signer for what it must install."""
        outcome = self._sync(enrollment_id, protected)
        if outcome.deferred:
            log.warning(
                "profiles_deferred",
                extra={"fields": {"enrollment_id": enrollment_id, "reason": outcome.deferred}},
            )
        return outcome

    def _sync(self, enrollment_id: str, protected: Iterable[str] = ()) -> Outcome:
        """:meth:`reconcile` without its log line (reconcile_all logs deferrals together)."""
        try:
            return self._reconcile(enrollment_id, protected)
        except SignerMissing as exc:
            return Outcome(enrollment_id, Plan(), {}, deferred=str(exc))

    def _reconcile(self, enrollment_id: str, protected: Iterable[str]) -> Outcome:
        device_id = enrollment_id  # device channels only: their id is the device id
        wanted = {p.identifier: p for p in self.store.desired_for(device_id)}
        states = self.store.states(enrollment_id)
        known = {
            ident: Known(s.installed_uuid, s.action, s.sent_uuid, s.status, s.queued)
            for ident, s in states.items()
        }
        todo = plan(
            {i: p.payload_uuid for i, p in wanted.items()},
            known,
            self.store.managed_identifiers(),
            set(protected),
        )
        # Signed first, queued after: SignerMissing leaves this device untouched.
        payloads, refused = self._prepare_installs(todo.install, wanted, device_id)
        for identifier in todo.remove:
            command = new_command("RemoveProfile", {"Identifier": identifier})
            self.storage.enqueue(command, [enrollment_id], created_by="profiles")
            previous = states.get(identifier)
            self.store.record_sent(
                enrollment_id,
                identifier,
                profile_id=previous.profile_id if previous else None,
                action="remove",
                command_uuid=command.command_uuid,
            )
        for identifier in todo.install:
            profile = wanted[identifier]
            payload = payloads.get(identifier)
            if payload is None:
                self.store.record_sent(
                    enrollment_id,
                    identifier,
                    profile_id=profile.id,
                    action="install",
                    command_uuid=None,
                    sent_uuid=profile.payload_uuid,
                    status="failed",
                    error=json.dumps({"server": refused[identifier]}),
                )
                continue
            command = new_command("InstallProfile", {"Payload": payload})
            self.storage.enqueue(command, [enrollment_id], created_by="profiles")
            self.store.record_sent(
                enrollment_id,
                identifier,
                profile_id=profile.id,
                action="install",
                command_uuid=command.command_uuid,
                sent_uuid=profile.payload_uuid,
            )
        if todo or refused:
            log.info(
                "profiles_reconciled",
                extra={
                    "fields": {
                        "enrollment_id": enrollment_id,
                        "install": todo.install,
                        "remove": todo.remove,
                        "refused": refused,
                    }
                },
            )
        return Outcome(enrollment_id, todo, refused)

    def reconcile_all(self) -> list[Outcome]:
        """After an admin change: every active device channel (the plan is cheap when nothing
        changed, and only changed devices get commands). Deferred devices are logged once,
        counted, not once per device: a fleet would flood the log."""
        outcomes = [self._sync(e) for e in self.store.device_enrollments()]
        deferred = [o for o in outcomes if o.deferred]
        if deferred:
            log.warning(
                "profiles_deferred",
                extra={"fields": {"devices": len(deferred), "reason": deferred[0].deferred}},
            )
        return outcomes

    def _prepare_installs(
        self, identifiers: list[str], wanted: Mapping[str, ProfileRow], device_id: str
    ) -> tuple[dict[str, bytes], dict[str, str]]:
        """The signed payload of each profile to install, and why the others cannot be made
        for this device. Raises SignerMissing, which concerns every profile and device."""
        payloads: dict[str, bytes] = {}
        refused: dict[str, str] = {}
        for identifier in identifiers:
            try:
                payloads[identifier] = self.prepare(wanted[identifier], device_id)
            except PrepareError as exc:
                refused[identifier] = str(exc)
        return payloads, refused

    def prepare(self, profile: ProfileRow, device_id: str) -> bytes:
        """The signed bytes for one device: device values filled, encrypted if asked."""
        content = profile.content
        if profile.per_device:
            values = self.store.device_values(device_id)
            if "access_challenge" in devicevars.names_used(content):
                challenge = self.access_challenge(device_id) if self.access_challenge else None
                if challenge is None:
                    raise PrepareError("an access identity needs the CA: run mdmserver init")
                values["access_challenge"] = challenge
            try:
                content = devicevars.fill(content, values)
            except devicevars.MissingDeviceValue as exc:
                raise PrepareError(str(exc)) from None
        if not profile.encrypt:
            # A signature of content with secrets in it would keep them in the clear.
            return self.signing.signed(content, remember=not profile.has_secrets)
        der = self.store.certificate(device_id)
        if der is None:
            raise PrepareError("no identity certificate recorded for the device")
        cert = x509.load_der_x509_certificate(der)
        if not isinstance(cert.public_key(), rsa.RSAPublicKey):
            raise PrepareError("the device identity is not RSA: cannot encrypt to it")
        return self.signing.signed(
            content, fingerprint_sha256(cert), lambda plain: encrypt_profile(plain, cert)
        )

    def retry(self, identifier: str) -> int:
        """Forget failures for a profile so the next reconciliation tries again."""
        count = 0
        for state in self.store.status_rows(identifier=identifier):
            if state.status == "failed":
                self.store.record_sent(
                    state.enrollment_id,
                    identifier,
                    profile_id=state.profile_id,
                    action=state.action or "install",
                    command_uuid=None,
                    sent_uuid=None,
                    status="pending",
                )
                count += 1
        return count


def read_profile_list(items: list[Any]) -> tuple[dict[str, str], set[str]]:
    """identifier -> PayloadUUID of each reported profile, and the identifiers of the
    enrollment profile (it carries a com.apple.mdm payload), which is never touched."""
    reported: dict[str, str] = {}
    protected: set[str] = set()
    for item in items:
        if not isinstance(item, dict):
            continue
        identifier, payload_uuid = item.get("PayloadIdentifier"), item.get("PayloadUUID")
        if not isinstance(identifier, str):
            continue
        contents = item.get("PayloadContent")
        types = (
            [p.get("PayloadType") for p in contents if isinstance(p, dict)]
            if isinstance(contents, list)
            else []
        )
        if MDM_PAYLOAD in types:
            protected.add(identifier)
            continue
        if isinstance(payload_uuid, str):
            reported[identifier] = payload_uuid
    return reported, protected


def error_json(status: str, raw: Mapping[str, Any]) -> str:
    """The device's refusal as stored and shown: its status and the ErrorChain as sent."""
    chain = raw.get("ErrorChain")
    return json.dumps(
        {"status": status, "ErrorChain": chain if isinstance(chain, list) else []},
        default=str,
    )
