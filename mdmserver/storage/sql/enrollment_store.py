"""Enrollment state in SQL: tokens, one-time SCEP challenges, issued certificates, device tags.

Kept apart from :mod:`mdmserver.storage.sql` (the device hot path) but on the same engine. The
one operation that must be atomic is spending a challenge: marking it used, counting a use of
its token and recording the certificate happen in one transaction, or not at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import and_, delete, exists, insert, or_, select, update
from sqlalchemy.engine import Connection, Engine, Row
from sqlalchemy.exc import IntegrityError

from mdmserver.enrollment.profile_service import DeviceAttributes
from mdmserver.storage.records import CurrentBinding
from mdmserver.storage.sql.schema import (
    cert_bindings,
    command_queue,
    commands,
    device_tags,
    devices,
    enroll_token_tags,
    enroll_tokens,
    enrollments,
    issued_certs,
    revoked_identities,
    scep_challenges,
)
from mdmserver.storage.sql.types import utcnow

# The challenge purpose (and issued certificate method) of access identities: certificates a
# profile installs for relying services (conditional access), never an MDM identity.
ACCESS = "access"


@dataclass(frozen=True, slots=True)
class TokenInfo:
    id: str
    prefix: str
    max_uses: int | None
    uses: int
    expires_at: datetime | None
    revoked: bool
    created_at: datetime
    tags: tuple[str, ...]
    ota: bool = False  # answers Apple's profile service unless the plain profile is asked for
    require_ota: bool = False  # only over the air: the plain profile is refused

    def problem(self, now: datetime) -> str | None:
        """Why this token cannot enroll a device now, or None."""
        if self.revoked:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        if self.max_uses is not None and self.uses >= self.max_uses:
            return "used up"
        return None


@dataclass(frozen=True, slots=True)
class IssuedCert:
    """One certificate our CA issued, as recorded at issue time."""

    serial: str
    fingerprint: str
    subject: str
    not_after: datetime
    issued_at: datetime
    revoked: bool
    token_id: str | None
    device_id: str | None
    method: str


# Challenge purposes beyond "enroll" and "renew" (over-the-air enrollment).
OTA = "ota"  # a SCEP challenge bound to a UDID Apple attested
PROFILE_SERVICE = "profile_service"  # what a device signs into its attributes; never SCEP's


@dataclass(frozen=True, slots=True)
class RevokedCert:
    serial: str
    revoked_at: datetime


class SpendOutcome(StrEnum):
    ISSUED = "issued"
    UNKNOWN_CHALLENGE = "unknown challenge"
    USED_CHALLENGE = "challenge already used"
    EXPIRED_CHALLENGE = "challenge expired"
    TOKEN_UNUSABLE = "enrollment token revoked, expired or used up"


def _usable_token(now: datetime) -> list[Any]:
    """The conditions under which a token may still enroll a device."""
    return [
        enroll_tokens.c.revoked.is_(False),
        or_(enroll_tokens.c.expires_at.is_(None), enroll_tokens.c.expires_at > now),
        or_(enroll_tokens.c.max_uses.is_(None), enroll_tokens.c.uses < enroll_tokens.c.max_uses),
    ]


class _Abort(Exception):
    """Rolls a transaction back and carries the reason out."""

    def __init__(self, outcome: SpendOutcome) -> None:
        self.outcome = outcome


def _use_challenge(
    conn: Connection, challenge_hash: str, now: datetime, *, profile_service: bool
) -> Any:
    """Mark a one-time challenge used (in the caller's transaction) and return its row, or
    abort: unknown (or of the other kind: a profile-service challenge is never SCEP's, nor the
    reverse), used, expired. The conditional UPDATE makes concurrent spends race safely."""
    row = conn.execute(
        select(scep_challenges).where(scep_challenges.c.id == challenge_hash)
    ).first()
    if row is None or (row.purpose == PROFILE_SERVICE) != profile_service:
        raise _Abort(SpendOutcome.UNKNOWN_CHALLENGE)
    spent = conn.execute(
        update(scep_challenges)
        .where(
            scep_challenges.c.id == challenge_hash,
            scep_challenges.c.used_at.is_(None),
            scep_challenges.c.expires_at > now,
        )
        .values(used_at=now)
    ).rowcount
    if not spent:
        raise _Abort(
            SpendOutcome.USED_CHALLENGE
            if row.used_at is not None
            else SpendOutcome.EXPIRED_CHALLENGE
        )
    return row


class EnrollmentStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # Tokens ---------------------------------------------------------------------------------

    def create_token(
        self,
        token_id: str,
        token_hash: str,
        prefix: str,
        *,
        max_uses: int | None,
        expires_at: datetime | None,
        tags: Sequence[str],
        ota: bool = False,
        require_ota: bool = False,
    ) -> TokenInfo:
        now = utcnow()
        with self.engine.begin() as conn:
            conn.execute(
                insert(enroll_tokens).values(
                    id=token_id,
                    token_hash=token_hash,
                    prefix=prefix,
                    max_uses=max_uses,
                    uses=0,
                    expires_at=expires_at,
                    revoked=False,
                    created_at=now,
                    ota=ota,
                    require_ota=require_ota,
                )
            )
            unique_tags = list(dict.fromkeys(tags))
            if unique_tags:
                conn.execute(
                    insert(enroll_token_tags),
                    [{"token_id": token_id, "tag": t} for t in unique_tags],
                )
            return self._token(conn, enroll_tokens.c.id == token_id)  # type: ignore[return-value]

    def token_by_hash(self, token_hash: str) -> TokenInfo | None:
        with self.engine.begin() as conn:
            return self._token(conn, enroll_tokens.c.token_hash == token_hash)

    def list_tokens(self) -> list[TokenInfo]:
        with self.engine.begin() as conn:
            rows = conn.execute(select(enroll_tokens).order_by(enroll_tokens.c.created_at)).all()
            tags = self._tags(conn, [row.id for row in rows])
        return [self._token_info(row, tags.get(row.id, ())) for row in rows]

    def revoke_token(self, token_id: str) -> bool:
        with self.engine.begin() as conn:
            return bool(
                conn.execute(
                    update(enroll_tokens)
                    .where(enroll_tokens.c.id == token_id, enroll_tokens.c.revoked.is_(False))
                    .values(revoked=True, revoked_at=utcnow())
                ).rowcount
            )

    # Challenges -----------------------------------------------------------------------------

    def create_challenge(
        self,
        challenge_hash: str,
        *,
        purpose: str,
        expires_at: datetime,
        token_id: str | None = None,
        device_id: str | None = None,
    ) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                insert(scep_challenges).values(
                    id=challenge_hash,
                    purpose=purpose,
                    token_id=token_id,
                    device_id=device_id,
                    created_at=utcnow(),
                    expires_at=expires_at,
                )
            )

    def spend_challenge(self, challenge_hash: str, cert: IssuedCert) -> SpendOutcome:
        """Mark the challenge used, count its token's use and record `cert`, all or nothing.

        The certificate's token, device and method (the challenge's purpose) are taken from the
        challenge. Conditional UPDATEs
        make concurrent attempts with one challenge (or the last use of a token) race safely:
        the loser sees zero rows changed and its transaction is rolled back.
        """
        now = utcnow()
        try:
            with self.engine.begin() as conn:
                row = _use_challenge(conn, challenge_hash, now, profile_service=False)
                if row.token_id is not None and not self._use_token(conn, row.token_id, now):
                    raise _Abort(SpendOutcome.TOKEN_UNUSABLE)
                self._insert_cert(
                    conn,
                    replace(cert, method=row.purpose),
                    token_id=row.token_id,
                    device_id=row.device_id,
                )
        except _Abort as abort:
            return abort.outcome
        return SpendOutcome.ISSUED

    def spend_profile_service(
        self,
        challenge_hash: str,
        device: DeviceAttributes,
        scep_challenge_hash: str,
        scep_expires_at: datetime,
    ) -> SpendOutcome:
        """Spend a profile-service challenge for the device Apple attested, all or nothing:
        mark it used, make sure the device row exists (the SCEP challenge and the identity
        name it), and store a SCEP challenge bound to that UDID and the same token.

        The token must still be usable, but no use is counted here: that happens when the
        identity is issued, as for the plain profile. ISSUED means the SCEP challenge is stored.
        """
        try:
            return self._spend_profile_service(
                challenge_hash, device, scep_challenge_hash, scep_expires_at
            )
        except IntegrityError:
            # Another enrollment of this UDID created the device row meanwhile: once more.
            return self._spend_profile_service(
                challenge_hash, device, scep_challenge_hash, scep_expires_at
            )

    def _spend_profile_service(
        self,
        challenge_hash: str,
        device: DeviceAttributes,
        scep_challenge_hash: str,
        scep_expires_at: datetime,
    ) -> SpendOutcome:
        now = utcnow()
        try:
            with self.engine.begin() as conn:
                row = _use_challenge(conn, challenge_hash, now, profile_service=True)
                usable = conn.execute(
                    select(enroll_tokens.c.id).where(
                        enroll_tokens.c.id == row.token_id, *_usable_token(now)
                    )
                ).first()
                if usable is None:
                    raise _Abort(SpendOutcome.TOKEN_UNUSABLE)
                known = conn.execute(select(devices.c.id).where(devices.c.id == device.udid))
                if known.first() is None:
                    conn.execute(
                        insert(devices).values(
                            id=device.udid,
                            serial_number=device.serial_number,
                            product_name=device.product_name,
                            build_version=device.build_version,
                            device_name=device.device_name,
                            imei=device.imei,
                            meid=device.meid,
                            enrolled=False,
                            created_at=now,
                            updated_at=now,
                        )
                    )
                conn.execute(
                    insert(scep_challenges).values(
                        id=scep_challenge_hash,
                        purpose=OTA,
                        token_id=row.token_id,
                        device_id=device.udid,
                        created_at=now,
                        expires_at=scep_expires_at,
                    )
                )
        except _Abort as abort:
            return abort.outcome
        return SpendOutcome.ISSUED

    @staticmethod
    def _use_token(conn: Connection, token_id: str, now: datetime) -> bool:
        return bool(
            conn.execute(
                update(enroll_tokens)
                .where(enroll_tokens.c.id == token_id, *_usable_token(now))
                .values(uses=enroll_tokens.c.uses + 1)
            ).rowcount
        )

    def set_udid_attested(self, device_id: str, attested: bool) -> None:
        """Record whether the device's identity was issued for its Apple-attested UDID."""
        with self.engine.begin() as conn:
            conn.execute(
                update(devices)
                .where(devices.c.id == device_id, devices.c.udid_attested.is_not(attested))
                .values(udid_attested=attested)
            )

    # Issued certificates --------------------------------------------------------------------

    def record_certificate(self, cert: IssuedCert) -> None:
        """Record a certificate issued without a challenge (a RenewalReq)."""
        with self.engine.begin() as conn:
            self._insert_cert(conn, cert, token_id=cert.token_id, device_id=cert.device_id)

    def issued(self, fingerprint: str) -> IssuedCert | None:
        with self.engine.begin() as conn:
            row = conn.execute(
                select(issued_certs).where(issued_certs.c.fingerprint == fingerprint)
            ).first()
        return self._cert(row) if row is not None else None

    def certificates_for_device(self, device_id: str) -> list[IssuedCert]:
        with self.engine.begin() as conn:
            rows = conn.execute(
                select(issued_certs)
                .where(issued_certs.c.device_id == device_id)
                .order_by(issued_certs.c.issued_at)
            ).all()
        return [self._cert(row) for row in rows]

    def is_newest(self, device_id: str, fingerprint: str) -> bool:
        """Whether `fingerprint` is the device's newest issued certificate, unrevoked and
        unexpired: the one identity a renewal may switch the device to."""
        with self.engine.begin() as conn:
            row = conn.execute(
                select(issued_certs.c.fingerprint, issued_certs.c.revoked, issued_certs.c.not_after)
                .where(issued_certs.c.device_id == device_id, issued_certs.c.method != ACCESS)
                .order_by(issued_certs.c.issued_at.desc(), issued_certs.c.serial.desc())
                .limit(1)
            ).first()
        return (
            row is not None
            and row.fingerprint == fingerprint
            and not row.revoked
            and row.not_after > utcnow()
        )

    def revoke_certificate(self, serial_or_fingerprint: str) -> IssuedCert | None:
        """Revoke one certificate and drop its binding, so the device hot path refuses it
        without an extra lookup (an unbound certificate is refused)."""
        key = serial_or_fingerprint.lower()
        with self.engine.begin() as conn:
            row = conn.execute(
                select(issued_certs).where(
                    or_(issued_certs.c.serial == key, issued_certs.c.fingerprint == key)
                )
            ).first()
            if row is None:
                return None
            conn.execute(
                update(issued_certs)
                .where(issued_certs.c.serial == row.serial)
                .values(revoked=True, revoked_at=utcnow())
            )
            conn.execute(
                delete(cert_bindings).where(cert_bindings.c.fingerprint == row.fingerprint)
            )
        return self.issued(row.fingerprint)

    def supersede(self, device_id: str, fingerprint: str) -> list[str]:
        """`fingerprint` is now the device's identity: revoke every MDM identity we issued for
        the device before it, so an old one is refused everywhere
        (Authenticate, renewal, the trust API) and is listed in the CRL. Returns their serials.
        Access identities (what the device shows an access proxy) are not MDM identities and
        stay as they are."""
        now = utcnow()
        with self.engine.begin() as conn:
            current = conn.execute(
                select(issued_certs.c.issued_at).where(issued_certs.c.fingerprint == fingerprint)
            ).scalar()
            older = [
                issued_certs.c.device_id == device_id,
                issued_certs.c.fingerprint != fingerprint,
                issued_certs.c.revoked.is_(False),
                issued_certs.c.method != ACCESS,
            ]
            if current is not None:
                older.append(issued_certs.c.issued_at <= current)
            serials = list(conn.execute(select(issued_certs.c.serial).where(*older)).scalars())
            if serials:
                conn.execute(
                    update(issued_certs)
                    .where(issued_certs.c.serial.in_(serials))
                    .values(revoked=True, revoked_at=now)
                )
                conn.execute(
                    delete(cert_bindings).where(
                        cert_bindings.c.device_id == device_id,
                        cert_bindings.c.fingerprint != fingerprint,
                    )
                )
        return serials

    def revoke_device(self, device_id: str) -> list[str]:
        """An admin's revocation: every identity of the device (issued for it, or bound to it)
        is revoked, its bindings dropped, its enrollments ended, all in one transaction.
        Returns the serials revoked now (identities from other CAs have none here)."""
        now = utcnow()
        with self.engine.begin() as conn:
            bound = select(cert_bindings.c.fingerprint).where(
                cert_bindings.c.device_id == device_id
            )
            mine = or_(issued_certs.c.device_id == device_id, issued_certs.c.fingerprint.in_(bound))
            serials = list(
                conn.execute(
                    select(issued_certs.c.serial).where(mine, issued_certs.c.revoked.is_(False))
                ).scalars()
            )
            if serials:
                conn.execute(
                    update(issued_certs)
                    .where(issued_certs.c.serial.in_(serials))
                    .values(revoked=True, revoked_at=now)
                )
            ours = select(issued_certs.c.fingerprint)
            known = select(revoked_identities.c.fingerprint)
            foreign = conn.execute(
                select(cert_bindings.c.fingerprint).where(
                    cert_bindings.c.device_id == device_id,
                    cert_bindings.c.fingerprint.not_in(ours),
                    cert_bindings.c.fingerprint.not_in(known),
                )
            ).scalars()
            rows = [{"fingerprint": f, "device_id": device_id, "revoked_at": now} for f in foreign]
            if rows:
                conn.execute(insert(revoked_identities), rows)
            conn.execute(delete(cert_bindings).where(cert_bindings.c.device_id == device_id))
            conn.execute(
                update(enrollments)
                .where(enrollments.c.device_id == device_id)
                .values(status="checked_out", updated_at=now)
            )
            conn.execute(
                update(devices)
                .where(devices.c.id == device_id)
                .values(enrolled=False, checked_out_at=now, updated_at=now)
            )
        return serials

    def is_revoked_elsewhere(self, fingerprint: str) -> bool:
        """Whether an admin revoked this identity from another CA (see revoke_device)."""
        with self.engine.begin() as conn:
            return (
                conn.execute(
                    select(revoked_identities.c.fingerprint).where(
                        revoked_identities.c.fingerprint == fingerprint
                    )
                ).first()
                is not None
            )

    def revoked(self) -> list[RevokedCert]:
        """Every revoked identity we issued that has not expired (what the CRL lists)."""
        query = (
            select(
                issued_certs.c.serial,
                issued_certs.c.revoked_at,
                issued_certs.c.issued_at,
            )
            .where(issued_certs.c.revoked.is_(True), issued_certs.c.not_after > utcnow())
            .order_by(issued_certs.c.serial)
        )
        with self.engine.begin() as conn:
            return [
                RevokedCert(row.serial, row.revoked_at or row.issued_at)
                for row in conn.execute(query)
            ]

    # Re-enrollment --------------------------------------------------------------------------

    def current_binding(self, device_id: str) -> CurrentBinding | None:
        """The identity bound to the device now (the newest binding), with the facts the
        re-enrollment rule needs; None when no identity is bound."""
        with self.engine.begin() as conn:
            bound = conn.execute(
                select(cert_bindings)
                .where(cert_bindings.c.device_id == device_id)
                .order_by(cert_bindings.c.bound_at.desc())
                .limit(1)
            ).first()
            if bound is None:
                return None
            bound_at: datetime = bound.bound_at
            channel = conn.execute(
                select(enrollments.c.status, enrollments.c.token_updated_at).where(
                    enrollments.c.id == device_id
                )
            ).first()
            revoked = conn.execute(
                select(issued_certs.c.revoked).where(
                    issued_certs.c.fingerprint == bound.fingerprint
                )
            ).scalar()
            channels = select(enrollments.c.id).where(enrollments.c.device_id == device_id)
            erased = conn.execute(
                select(command_queue.c.id)
                .select_from(command_queue.join(commands))
                .where(
                    command_queue.c.enrollment_id.in_(channels),
                    commands.c.request_type == "EraseDevice",
                    command_queue.c.status == "acknowledged",
                    command_queue.c.answered_at >= bound.bound_at,
                )
                .limit(1)
            ).first()
            device = conn.execute(
                select(devices.c.reenroll_allowed_until, devices.c.authenticated_at).where(
                    devices.c.id == device_id
                )
            ).first()
        return CurrentBinding(
            device_id=device_id,
            fingerprint=bound.fingerprint,
            not_after=bound.not_after,
            bound_at=bound_at,
            status=channel.status if channel else None,
            token_updated_at=channel.token_updated_at if channel else None,
            authenticated_at=device.authenticated_at if device else None,
            revoked=bool(revoked),
            erase_acknowledged=erased is not None,
            allowed_until=device.reenroll_allowed_until if device else None,
        )

    def allow_reenroll(self, device_id: str, until: datetime) -> bool:
        """Let one new identity take over the device's enrollment until `until`."""
        with self.engine.begin() as conn:
            return bool(
                conn.execute(
                    update(devices)
                    .where(devices.c.id == device_id)
                    .values(reenroll_allowed_until=until)
                ).rowcount
            )

    def use_allowance(self, device_id: str) -> datetime | None:
        """Consume the device's unexpired allowance; its end, or None when there was none.
        One conditional UPDATE: of two concurrent re-enrollments only one gets it."""
        now = utcnow()
        with self.engine.begin() as conn:
            until = conn.execute(
                select(devices.c.reenroll_allowed_until).where(devices.c.id == device_id)
            ).scalar()
            if until is None or until <= now:
                return None
            taken = conn.execute(
                update(devices)
                .where(devices.c.id == device_id, devices.c.reenroll_allowed_until > now)
                .values(reenroll_allowed_until=None)
            ).rowcount
        return until if taken else None

    def active_device_for(self, fingerprint: str) -> str | None:
        """The device whose active enrollment this identity is bound to, or None."""
        with self.engine.begin() as conn:
            return conn.execute(
                select(cert_bindings.c.device_id)
                .select_from(
                    cert_bindings.join(enrollments, enrollments.c.id == cert_bindings.c.device_id)
                )
                .where(cert_bindings.c.fingerprint == fingerprint, enrollments.c.status == "active")
            ).scalar()

    def claim(self, device_id: str, fingerprint: str) -> None:
        """A device authenticated with this certificate: note whose it is, apply token tags."""
        now = utcnow()
        with self.engine.begin() as conn:
            row = conn.execute(
                select(issued_certs.c.token_id, issued_certs.c.device_id).where(
                    issued_certs.c.fingerprint == fingerprint
                )
            ).first()
            if row is None:
                return
            if row.device_id is None:
                conn.execute(
                    update(issued_certs)
                    .where(issued_certs.c.fingerprint == fingerprint)
                    .values(device_id=device_id)
                )
            if row.token_id is None:
                return
            wanted = self._tags(conn, [row.token_id]).get(row.token_id, ())
            have = set(
                conn.execute(
                    select(device_tags.c.tag).where(device_tags.c.device_id == device_id)
                ).scalars()
            )
            missing = [t for t in wanted if t not in have]
            if missing:
                conn.execute(
                    insert(device_tags),
                    [
                        {
                            "device_id": device_id,
                            "tag": t,
                            "token_id": row.token_id,
                            "created_at": now,
                        }
                        for t in missing
                    ],
                )

    def device_tags(self, device_id: str) -> list[str]:
        with self.engine.begin() as conn:
            return sorted(
                conn.execute(
                    select(device_tags.c.tag).where(device_tags.c.device_id == device_id)
                ).scalars()
            )

    # Renewal --------------------------------------------------------------------------------

    def renewal_candidates(self, expiring_before: datetime) -> list[tuple[str, datetime]]:
        """Enrolled devices whose bound identity expires before the given time and that have
        no renewal challenge outstanding (so a renewal is queued once, not every run)."""
        now = utcnow()
        pending = exists().where(
            scep_challenges.c.device_id == cert_bindings.c.device_id,
            scep_challenges.c.purpose == "renew",
            scep_challenges.c.used_at.is_(None),
            scep_challenges.c.expires_at > now,
        )
        query = (
            select(cert_bindings.c.device_id, cert_bindings.c.not_after)
            .select_from(
                cert_bindings.join(
                    enrollments,
                    and_(
                        enrollments.c.id == cert_bindings.c.device_id,
                        enrollments.c.status == "active",
                    ),
                )
            )
            .where(cert_bindings.c.not_after < expiring_before, ~pending)
            .order_by(cert_bindings.c.not_after)
        )
        with self.engine.begin() as conn:
            return [(row.device_id, row.not_after) for row in conn.execute(query)]

    # Helpers --------------------------------------------------------------------------------

    @staticmethod
    def _insert_cert(
        conn: Connection, cert: IssuedCert, *, token_id: str | None, device_id: str | None
    ) -> None:
        conn.execute(
            insert(issued_certs).values(
                serial=cert.serial,
                fingerprint=cert.fingerprint,
                subject=cert.subject,
                not_after=cert.not_after,
                issued_at=cert.issued_at,
                revoked=False,
                token_id=token_id,
                device_id=device_id,
                method=cert.method,
            )
        )

    def _token(self, conn: Connection, where: Any) -> TokenInfo | None:
        row = conn.execute(select(enroll_tokens).where(where)).first()
        if row is None:
            return None
        return self._token_info(row, self._tags(conn, [row.id]).get(row.id, ()))

    @staticmethod
    def _tags(conn: Connection, token_ids: Sequence[str]) -> dict[str, tuple[str, ...]]:
        if not token_ids:
            return {}
        found: dict[str, list[str]] = {}
        rows = conn.execute(
            select(enroll_token_tags.c.token_id, enroll_token_tags.c.tag)
            .where(enroll_token_tags.c.token_id.in_(token_ids))
            .order_by(enroll_token_tags.c.tag)
        )
        for row in rows:
            found.setdefault(row.token_id, []).append(row.tag)
        return {key: tuple(value) for key, value in found.items()}

    @staticmethod
    def _token_info(row: Row[Any], tags: Sequence[str]) -> TokenInfo:
        return TokenInfo(
            id=row.id,
            prefix=row.prefix,
            max_uses=row.max_uses,
            uses=row.uses,
            expires_at=row.expires_at,
            revoked=row.revoked,
            created_at=row.created_at,
            tags=tuple(tags),
            ota=bool(row.ota),
            require_ota=bool(row.require_ota),
        )

    @staticmethod
    def _cert(row: Row[Any]) -> IssuedCert:
        return IssuedCert(
            serial=row.serial,
            fingerprint=row.fingerprint,
            subject=row.subject,
            not_after=row.not_after,
            issued_at=row.issued_at,
            revoked=row.revoked,
            token_id=row.token_id,
            device_id=row.device_id,
            method=row.method,
        )
