"""Last seen moves with every check-in and command-loop request, within the documented delay
(service.last_seen.LAST_SEEN_DELAY), and never for a refused request."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from sqlalchemy import select

from mdmserver.service.last_seen import LAST_SEEN_DELAY
from mdmserver.storage.sql.schema import devices
from mdmserver.testing.http import send
from mdmserver.web.runtime import runtime

WITHIN = LAST_SEEN_DELAY + 1.0  # the delay, plus the write itself on a busy machine


def _seen(app, udid: str) -> tuple[datetime | None, datetime | None]:
    rt = runtime(app)
    info = rt.storage.enrollment(udid)
    with rt.engine.connect() as conn:
        device = conn.execute(select(devices.c.last_seen_at).where(devices.c.id == udid)).scalar()
    channel = info.last_seen_at if info is not None else None
    return channel, device if device is None or device.tzinfo else device.replace(tzinfo=UTC)


def _moves_past(app, udid: str, since: datetime) -> float:
    """Seconds until both the enrollment's and the device's last seen are at or after ``since``."""
    started = time.monotonic()
    while time.monotonic() - started < WITHIN:
        channel, device = _seen(app, udid)
        if channel is not None and device is not None and min(channel, device) >= since:
            return time.monotonic() - started
        time.sleep(0.05)
    raise AssertionError(f"last seen {_seen(app, udid)} did not reach {since} within {WITHIN} s")


def test_last_seen_follows_authenticate_token_update_and_idle(app, live_server, pki):
    device = pki.device()
    for request in (device.authenticate(), device.token_update(), device.idle()):
        before = datetime.now(UTC)
        time.sleep(0.01)  # timestamps of consecutive steps differ even on a coarse clock
        assert send(live_server, request).status_code == 200
        _moves_past(app, device.udid, before)


def test_a_refused_request_does_not_move_last_seen(app, live_server, pki):
    device = pki.device()
    assert send(live_server, device.authenticate()).status_code == 200
    assert send(live_server, device.token_update()).status_code == 200
    runtime(app).seen.flush()
    seen = _seen(app, device.udid)
    idle = device.idle()
    del idle.headers["Mdm-Signature"]
    assert send(live_server, idle).status_code == 400
    time.sleep(WITHIN)
    assert _seen(app, device.udid) == seen
