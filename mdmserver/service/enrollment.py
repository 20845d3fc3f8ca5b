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

from mdmserver.enrollment.instance import InstanceKeys
from mdmserver.enrollment.onetime import new_secret, new_token_id, secret_hash
from mdmserver.enrollment.profile import (
    EnrollmentSettings,
    ProfileSchemaError,
    build_profile,
    signed_profile,
)
from mdmserver.logs import get_logger
from mdmserver.service.errors import DeviceForbidden
from mdmserver.storage.enrollment_store import ACCESS, EnrollmentStore, TokenInfo

log = get_logger("enrollment")

MAX_TAG_LENGTH = 128
# An InstallProfile with an access identity may wait in the queue while the device is away.
ACCESS_CHALLENGE_LIFETIME = timedelta(days=7)


class EnrollmentRefused(DeviceForbidden):
    """A token that cannot enroll: unknown, revoked, expired or used up (403, nothing issued)."""


class TokenRequestError(ValueError):
    """An administrator's token request is invalid (bad tag, bad use count)."""


@dataclass(frozen=True, slots=True)
class NewToken:
    token: str  # shown once, never stored
    info: TokenInfo


class EnrollmentTokens:
    """Administration of enrollment tokens: only a hash of each token is ever stored."""

    def __init__(self, store: EnrollmentStore) -> None:
        self.store = store

    def create(
        self,
        *,
        uses: int | None = None,
        lifetime: timedelta | None = None,
        tags: Sequence[str] = (),
    ) -> NewToken:
        if uses is not None and uses < 1:
            raise TokenRequestError("--uses must be at least 1")
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
        )
        log.info(
            "enroll_token_created",
            extra={"fields": {"token_id": info.id, "max_uses": uses, "tags": list(info.tags)}},
        )
        return NewToken(token, info)

    def list(self) -> list[TokenInfo]:
        return self.store.list_tokens()

    def revoke(self, token_id: str) -> bool:
        done = self.store.revoke_token(token_id)
        log.info("enroll_token_revoked", extra={"fields": {"token_id": token_id, "ok": done}})
        return done


class EnrollmentProfiles:
    """Signed enrollment profiles, each carrying a fresh one-time SCEP challenge."""

    def __init__(
        self,
        store: EnrollmentStore,
        keys: InstanceKeys,
        settings: EnrollmentSettings,
        *,
        challenge_lifetime: timedelta,
    ) -> None:
        self.store = store
        self.keys = keys
        self.settings = settings
        self.challenge_lifetime = challenge_lifetime

    def for_token(self, token: str) -> bytes:
        """The profile for an enrollment token, or EnrollmentRefused with nothing written."""
        info = self.store.token_by_hash(secret_hash(token)) if token else None
        if info is None:
            raise EnrollmentRefused("unknown enrollment token")
        problem = info.problem(datetime.now(UTC))
        if problem is not None:
            log.info("enroll_refused", extra={"fields": {"token_id": info.id, "reason": problem}})
            raise EnrollmentRefused(f"enrollment token is {problem}")
        # Build first, store last: a profile that fails to build leaves no challenge behind.
        challenge = new_secret()
        profile = self._signed(challenge)
        self._remember(challenge, token_id=info.id)
        log.info("enroll_profile", extra={"fields": {"token_id": info.id}})
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
