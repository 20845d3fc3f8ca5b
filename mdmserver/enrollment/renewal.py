"""Identity renewal: before a device's identity expires, queue a profile that replaces it.

Two ways in: :func:`queue_renewals` for the scheduler (every device whose identity is due,
pushed), and :class:`RenewalStep`, the first step of service/next_command.py, for the device
asking right now. The step reads the expiry of the certificate the request was signed with
(in memory), so the Idle hot path pays no query; only a device inside the window costs one
check, at most once an hour per process. The InstallProfile carries the enrollment profile
with a fresh challenge tied to the device (same payload identifiers, so the device swaps its
identity in place); the new certificate is bound to the device on its first request
(mdmserver.service.certauth).
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from mdmserver.enrollment.service import EnrollmentProfiles
from mdmserver.logs import get_logger
from mdmserver.protocol.commands import new_command
from mdmserver.service.next_command import Session
from mdmserver.storage.base import UnknownEnrollment
from mdmserver.storage.ports import EnrollmentPort, QueuePort

log = get_logger("renewal")

RENEWAL_CREATED_BY = "identity-renewal"


def queue_renewals(
    store: EnrollmentPort,
    storage: QueuePort,
    profiles: EnrollmentProfiles,
    *,
    window: timedelta,
    now: datetime | None = None,
) -> int:
    """Queue one renewal per device whose identity expires within `window`; returns how many.

    A device with a renewal challenge outstanding is skipped, so running this again (or from
    several workers one after another) does not queue duplicates.
    """
    moment = now or datetime.now(UTC)
    queued = 0
    for device_id, not_after in store.renewal_candidates(moment + window):
        queued += _queue_renewal(storage, profiles, device_id, not_after, moment)
    return queued


def _queue_renewal(
    storage: QueuePort,
    profiles: EnrollmentProfiles,
    device_id: str,
    not_after: datetime,
    moment: datetime,
) -> bool:
    # The challenge lives as long as the old identity would have, at least.
    profile = profiles.for_renewal(device_id, valid_until=max(not_after, moment))
    command = new_command("InstallProfile", {"Payload": profile})
    try:
        storage.enqueue(command, [device_id], priority=10, created_by=RENEWAL_CREATED_BY)
    except UnknownEnrollment:
        log.warning("renewal_skipped", extra={"fields": {"device_id": device_id}})
        return False
    log.info(
        "renewal_queued",
        extra={
            "fields": {
                "device_id": device_id,
                "command_uuid": command.command_uuid,
                "not_after": not_after.isoformat(),
            }
        },
    )
    return True


RECHECK = timedelta(hours=1)  # a device inside the window is looked up at most this often


class RenewalStep:
    """The renewal step of the command loop: queue the renewal of the identity the device is
    using, when it expires within ``window`` and none is outstanding."""

    def __init__(
        self,
        store: EnrollmentPort,
        storage: QueuePort,
        profiles: EnrollmentProfiles,
        *,
        window: timedelta,
    ) -> None:
        self.store = store
        self.storage = storage
        self.profiles = profiles
        self.window = window
        self._checked: dict[str, datetime] = {}  # device -> when it was last looked up
        self._lock = threading.Lock()

    def step(self, session: Session) -> None:
        identity = session.identity
        now = datetime.now(UTC)
        if session.not_after is None or identity.is_user_channel:
            return None
        if session.not_after - now > self.window:
            return None  # the common case: far from expiry, no query
        device_id = identity.device_id
        with self._lock:
            last = self._checked.get(device_id)
            if last is not None and now - last < RECHECK:
                return None
            if len(self._checked) > 100_000:  # bounded: a stale entry only costs one lookup
                self._checked.clear()
            self._checked[device_id] = now
        # The bound identity decides (a renewal outstanding, or done, leaves it out).
        for candidate, not_after in self.store.renewal_candidates(now + self.window):
            if candidate == device_id:
                _queue_renewal(self.storage, self.profiles, device_id, not_after, now)
                break
        return None
