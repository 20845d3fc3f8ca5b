"""``POST /api/v1/devices/<id>/push`` is in the audit log like every other change made through
the admin API: the key's name, the action, the device, when, and how it went (refusals too)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.api.conftest import last_audit, make_key, state

PUSH = "/api/v1/devices/{}/push"


def _assert_recent(at: datetime) -> None:
    assert abs(datetime.now(UTC) - at) < timedelta(minutes=1), at


def test_a_push_is_audited(app, api):
    device = api.enroll()
    reply = api.post(PUSH.format(device))
    assert reply.status_code == 202, reply.get_json()
    entry = last_audit(app)
    assert (entry.actor, entry.action, entry.targets, entry.outcome) == (
        "key:test-admin",
        "device.push",
        [device],
        "ok",
    )
    assert entry.detail == {"enrollments": [device]}
    _assert_recent(entry.at)


@pytest.mark.parametrize("enrolled", [False, True], ids=["unknown", "no active enrollment"])
def test_a_refused_push_is_audited_and_changes_nothing(app, api, enrolled):
    """Like ``DELETE /devices/<id>/queue``: the refusal is kept, with its status and why."""
    device = api.enroll(active=False) if enrolled else "NOPE"
    before = state(app)
    reply = api.post(PUSH.format(device))
    assert reply.status_code == 404
    entry = last_audit(app)
    assert (entry.actor, entry.action, entry.targets) == ("key:test-admin", "device.push", [device])
    assert entry.outcome == f"refused 404: {reply.get_json()['error']}"
    assert "no active enrollment" in entry.outcome
    _assert_recent(entry.at)
    assert state(app) == before  # no push requested, nothing stored but the audit row


@pytest.mark.parametrize("credentials", ["none", "metrics key"])
def test_an_unauthenticated_push_is_not_audited(app, api, credentials):
    """As on the rest of /api/v1, a call without an admin key is logged, not audited: there is
    no key name to record, and anyone could fill the log with them."""
    key = make_key(app, "scraper", "metrics") if credentials == "metrics key" else None
    expected = last_audit(app)
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    reply = app.test_client().post(PUSH.format(api.enroll()), headers=headers)
    assert reply.status_code == (403 if key else 401)
    assert last_audit(app) == expected
