"""Identity renewal: before a device's identity expires, queue a profile that replaces it.

A function for the scheduler, not a step of the command loop: checking expiry on every Idle
poll would cost the hot path a query, while once an hour is plenty for a window of days.
The InstallProfile carries the enrollment profile with a fresh challenge tied to the device
(same payload identifiers, so the device swaps its identity in place); the new certificate is
bound to the device on its first request (mdmserver.service.certauth).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from mdmserver.logs import get_logger
from mdmserver.protocol.commands import new_command
from mdmserver.service.enrollment import EnrollmentProfiles
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
        # The challenge lives as long as the old identity would have, at least.
        profile = profiles.for_renewal(device_id, valid_until=max(not_after, moment))
        command = new_command("InstallProfile", {"Payload": profile})
        try:
            storage.enqueue(command, [device_id], priority=10, created_by=RENEWAL_CREATED_BY)
        except UnknownEnrollment:
            log.warning("renewal_skipped", extra={"fields": {"device_id": device_id}})
            continue
        queued += 1
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
    return queued
