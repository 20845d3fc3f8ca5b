"""Enrollment: tokens an administrator hands out, and the signed profile a token downloads.

Decision: a token's use is counted when a certificate is issued through one of its challenges,
not when the profile is downloaded. Downloads may be retried (a browser, a failed install)
without burning the token, yet a ``--uses 1`` token still enrolls one device only: the
challenge, the use and the certificate are spent in one transaction at SCEP time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from mdmserver.bounds import EXPIRES_IN, TAG, TOKEN_USES
from mdmserver.enrollment.instance import InstanceKeys
from mdmserver.enrollment.onetime import new_secret, new_token_id, secret_hash
from mdmserver.enrollment.profile import (
    EnrollmentSettings,
    ProfileSchemaError,
    build_profile,
    signed_profile,
)
from mdmserver.enrollment.profile_service import DeviceAttributes, build_profile_service
from mdmserver.logs import get_logger
from mdmserver.service.errors import DeviceForbidden, DeviceUnavailable
from mdmserver.storage.ports import EnrollmentPort
from mdmserver.storage.sql.enrollment_store import ACCESS, PROFILE_SERVICE, SpendOutcome, TokenInfo

log = get_logger("enrollment")

MAX_TAG_LENGTH = TAG.max_len
MAX_LIFETIME = timedelta(seconds=EXPIRES_IN.high)
# An InstallProfile with an access identity may wait in the queue while the device is away.
ACCESS_CHALLENGE_LIFETIME = timedelta(days=7)


# One answer for every token that cannot enroll, whatever the reason: telling them apart would
# tell a guesser which tokens exist and what became of them. The reason is logged instead.
UNUSABLE_TOKEN = "this enrollment token cannot be used (ask your administrator for a new link)"


class EnrollmentRefused(DeviceForbidden):
    """A token that cannot enroll: unknown, revoked, expired or used up (403, nothing issued).
    The message is always UNUSABLE_TOKEN."""

    def __init__(self) -> None:
        super().__init__(UNUSABLE_TOKEN)


def refuse_token(reason: str, token_id: str | None = None) -> EnrollmentRefused:
    """Log why a token was refused (server side only) and return the uniform refusal."""
    log.info("enroll_refused", extra={"fields": {"token_id": token_id, "reason": reason}})
    return EnrollmentRefused()


class TokenRequestError(ValueError):
    """An administrator's token request is invalid (bad tag, bad use count)."""


class OverTheAirUnavailable(DeviceUnavailable):
    """Over-the-air enrollment was asked for, but no Apple device CA bundle is configured."""


class ChallengeRefused(DeviceForbidden):
    """A device's profile-service challenge is unknown, spent, expired, or its token can no
    longer enroll (403, nothing stored)."""


@dataclass(frozen=True, slots=True)
class NewToken:
    token: str  # shown once, never stored
    info: TokenInfo


class EnrollmentTokens:
    """Administration of enrollment tokens: only a hash of each token is ever stored."""

    def __init__(self, store: EnrollmentPort) -> None:
        self.store = store

    def create(
        self,
        *,
        uses: int | None = None,
        lifetime: timedelta | None = None,
        tags: Sequence[str] = (),
        ota: bool = False,
        require_ota: bool = False,
    ) -> NewToken:
        """A new token; `ota` makes its URL answer Apple's profile service by default,
        `require_ota` refuses it the plain profile (``&ota=1`` must be asked for, unless
        `ota` is set too)."""
        if uses is not None and not TOKEN_USES.low <= uses <= TOKEN_USES.high:
            raise TokenRequestError(f"uses must be between 1 and {TOKEN_USES.high}")
        if lifetime is not None and not timedelta(0) < lifetime <= MAX_LIFETIME:
            raise TokenRequestError(
                f"the lifetime must be above 0 and at most {MAX_LIFETIME.days}d"
            )
        for tag in tags:
            if not tag.strip() or len(tag) > MAX_TAG_LENGTH or not tag.isprintable():
                raise TokenRequestError(
                    f"tag {tag!r} must be 1 to {MAX_TAG_LENGTH} printable characters"
                )
        token = new_secret()
        expires_at = datetime.now(UTC) + lifetime if lifetime else None
        info = self.store.create_token(
            new_token_id(),
            secret_hash(token),
            token[:6],
            max_uses=uses,
            expires_at=expires_at,
            tags=[t.strip() for t in tags],
            ota=ota,
            require_ota=require_ota,
        )
        log.info(
            "enroll_token_created",
            extra={
                "fields": {
                    "token_id": info.id,
                    "max_uses": uses,
                    "tags": list(info.tags),
                    "ota": ota,
                    "require_ota": require_ota,
                }
            },
        )
        return NewToken(token, info)

    def list(self) -> list[TokenInfo]:
        return self.store.list_tokens()

    def revoke(self, token_id: str) -> bool:
        done = self.store.revoke_token(token_id)
        log.info("enroll_token_revoked", extra={"fields": {"token_id": token_id, "ok": done}})
        return done


class EnrollmentProfiles:
    """Signed enrollment profiles, each carrying a fresh one-time SCEP challenge; and, with
    `over_the_air`, Apple's profile service in front of them (phase 1, and the profile for a
    device whose attributes were verified: mdmserver.enrollment.ota)."""

    def __init__(
        self,
        store: EnrollmentPort,
        keys: InstanceKeys,
        settings: EnrollmentSettings,
        *,
        challenge_lifetime: timedelta,
        over_the_air: bool = False,
    ) -> None:
        self.store = store
        self.keys = keys
        self.settings = settings
        self.challenge_lifetime = challenge_lifetime
        self.over_the_air = over_the_air

    def for_token(self, token: str, *, ota: bool | None = None) -> bytes:
        """The profile for an enrollment token, or EnrollmentRefused with nothing written.

        `ota` asks for Apple's profile service (True) or the plain profile (False); None
        takes the token's default. A token that requires OTA is refused the plain profile
        exactly as an unknown token is, so the answer tells nothing about the token."""
        info = self.store.token_by_hash(secret_hash(token)) if token else None
        over_the_air = info is not None and (info.ota if ota is None else ota)
        if info is not None and info.require_ota and not over_the_air:
            log.info(
                "enroll_refused",
                extra={"fields": {"token_id": info.id, "reason": "requires over-the-air"}},
            )
            info = None
        if info is None:
            raise refuse_token("unknown")
        problem = info.problem(datetime.now(UTC))
        if problem is not None:
            raise refuse_token(problem, info.id)
        # Build first, store last: a profile that fails to build leaves no challenge behind.
        if over_the_air:
            return self._profile_service(info)
        challenge = new_secret()
        profile = self._signed(challenge)
        self._remember(challenge, token_id=info.id)
        log.info("enroll_profile", extra={"fields": {"token_id": info.id}})
        return profile

    def for_attested_device(
        self, profile_service_challenge: str, device: DeviceAttributes
    ) -> bytes:
        """The enrollment profile for a device whose signed attributes were verified: its
        SCEP challenge is bound to the UDID (and to the token the profile-service challenge
        was issued for), and the profile-service challenge is spent, in one transaction."""
        challenge = new_secret()
        profile = self._signed(challenge)
        outcome = self.store.spend_profile_service(
            secret_hash(profile_service_challenge),
            device,
            secret_hash(challenge),
            datetime.now(UTC) + self.challenge_lifetime,
        )
        if outcome != SpendOutcome.ISSUED:
            log.info(
                "ota_refused", extra={"fields": {"udid": device.udid, "reason": outcome.value}}
            )
            raise ChallengeRefused(f"profile-service challenge refused: {outcome.value}")
        log.info("ota_profile", extra={"fields": {"udid": device.udid}})
        return profile

    def _profile_service(self, info: TokenInfo) -> bytes:
        if not self.over_the_air:
            raise OverTheAirUnavailable(
                "over-the-air enrollment is not available: no Apple device CA bundle is "
                "configured (apple_device_ca_file)"
            )
        challenge = new_secret()
        payload = build_profile_service(self.settings, challenge)
        profile = signed_profile(
            payload, self.keys.signing_cert, self.keys.signing_key, [self.keys.ca_cert]
        )
        self.store.create_challenge(
            secret_hash(challenge),
            purpose=PROFILE_SERVICE,
            expires_at=datetime.now(UTC) + self.challenge_lifetime,
            token_id=info.id,
        )
        log.info("enroll_profile_service", extra={"fields": {"token_id": info.id}})
        return profile

    def for_renewal(self, device_id: str, valid_until: datetime) -> bytes:
        """The same profile with a challenge tied to `device_id`, for an identity renewal.

        The challenge stays valid until `valid_until` (at least the usual lifetime): the
        InstallProfile carrying it may wait in the queue while the device is offline."""
        lifetime = max(valid_until - datetime.now(UTC), self.challenge_lifetime)
        challenge = new_secret()
        profile = self._signed(challenge)
        self._remember(challenge, device_id=device_id, lifetime=lifetime)
        return profile

    def access_challenge(self, device_id: str) -> str:
        """A one-time challenge for an access identity of ``device_id`` (a SCEP payload in a
        profile, e.g. profiles/access-identity.toml): what it issues is recorded as that
        device's access identity, which relying services ask the trust API about."""
        challenge = new_secret()
        lifetime = max(self.challenge_lifetime, ACCESS_CHALLENGE_LIFETIME)
        self._remember(challenge, device_id=device_id, lifetime=lifetime, purpose=ACCESS)
        return challenge

    def new_challenge(
        self,
        *,
        token_id: str | None = None,
        device_id: str | None = None,
        lifetime: timedelta | None = None,
    ) -> str:
        """A stored challenge on its own (benchmarks and tests that skip the profile)."""
        challenge = new_secret()
        self._remember(challenge, token_id=token_id, device_id=device_id, lifetime=lifetime)
        return challenge

    def _remember(
        self,
        challenge: str,
        *,
        token_id: str | None = None,
        device_id: str | None = None,
        lifetime: timedelta | None = None,
        purpose: str | None = None,
    ) -> None:
        self.store.create_challenge(
            secret_hash(challenge),
            purpose=purpose or ("enroll" if device_id is None else "renew"),
            expires_at=datetime.now(UTC) + (lifetime or self.challenge_lifetime),
            token_id=token_id,
            device_id=device_id,
        )

    def _signed(self, challenge: str) -> bytes:
        try:
            profile = build_profile(self.settings, challenge)
        except ProfileSchemaError as exc:
            log.error("enroll_profile_invalid", extra={"fields": {"errors": str(exc)}})
            raise
        return signed_profile(
            profile, self.keys.signing_cert, self.keys.signing_key, [self.keys.ca_cert]
        )
