"""The enrollment services one server runs with (SCEP, enrollment profiles, over the air),
built by :func:`mdmserver.assembly.build_server`.

Without ``mdmserver init`` (no CA key or signing certificate in MDM_HOME) the device protocol
still runs; only /scep and /mdm/enroll answer 503, saying what to do.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from mdmserver.config import Config
from mdmserver.crypto.apple_chain import AppleDeviceCAs
from mdmserver.enrollment.instance import load_instance_keys
from mdmserver.enrollment.ota import OverTheAir
from mdmserver.enrollment.profile import EnrollmentSettings
from mdmserver.enrollment.scep import ScepService
from mdmserver.enrollment.service import EnrollmentProfiles
from mdmserver.logs import get_logger
from mdmserver.service.errors import DeviceUnavailable
from mdmserver.service.rate_limits import RateLimiter
from mdmserver.storage.sql.enrollment_store import EnrollmentStore

log = get_logger("app")


class EnrollmentUnavailable(DeviceUnavailable):
    pass


@dataclass
class EnrollmentRuntime:
    store: EnrollmentStore
    profiles: EnrollmentProfiles | None
    scep: ScepService | None
    missing: str = ""
    ota: OverTheAir | None = None

    def need_profiles(self) -> EnrollmentProfiles:
        if self.profiles is None:
            raise EnrollmentUnavailable(f"enrollment is not available: {self.missing}")
        return self.profiles

    def need_ota(self) -> OverTheAir:
        if self.ota is None:
            why = self.missing or "no Apple device CA bundle is configured (apple_device_ca_file)"
            raise EnrollmentUnavailable(f"over-the-air enrollment is not available: {why}")
        return self.ota

    def access_challenge(self, device_id: str) -> str | None:
        """A device-bound SCEP challenge (profiles put one in identity payloads); None while
        enrollment is unavailable (no CA)."""
        return self.profiles.access_challenge(device_id) if self.profiles is not None else None

    def need_scep(self) -> ScepService:
        if self.scep is None:
            raise EnrollmentUnavailable(f"SCEP is not available: {self.missing}")
        return self.scep


def build_enrollment(
    config: Config, store: EnrollmentStore, limiter: RateLimiter | None = None
) -> EnrollmentRuntime:
    keys = load_instance_keys(config.home)
    if keys is None:
        return _unavailable(store, f"run `mdmserver init` to create the CA in {config.home}")
    scep = ScepService(
        store,
        keys,
        identity_lifetime=timedelta(days=config.identity_lifetime_days),
        limiter=limiter,
    )
    if not config.server_url or not config.push_topics:
        return _unavailable(store, "server_url and push_topics must be configured", scep)
    settings = EnrollmentSettings(
        server_url=config.server_url.rstrip("/"), topic=config.push_topics[0], ca_cert=keys.ca_cert
    )
    apple_cas = load_apple_device_cas(config)
    profiles = EnrollmentProfiles(
        store,
        keys,
        settings,
        challenge_lifetime=timedelta(minutes=config.challenge_lifetime_minutes),
        over_the_air=apple_cas is not None,
    )
    ota = OverTheAir(profiles, apple_cas) if apple_cas is not None else None
    return EnrollmentRuntime(store, profiles, scep, ota=ota)


def load_apple_device_cas(config: Config) -> AppleDeviceCAs | None:
    """The Apple device CA bundle, when configured; a configured file that is missing or holds
    no certificate stops the start, rather than silently turning OTA enrollment off."""
    if not config.apple_device_ca_file:
        return None
    path = Path(config.apple_device_ca_file)
    if not path.is_file():
        raise FileNotFoundError(f"apple_device_ca_file {path} does not exist")
    return AppleDeviceCAs.from_pem(path.read_bytes())


def _unavailable(
    store: EnrollmentStore, why: str, scep: ScepService | None = None
) -> EnrollmentRuntime:
    log.warning("enrollment_unavailable", extra={"fields": {"detail": why}})
    return EnrollmentRuntime(store, None, scep, why)
