"""The real Apps and Books client against the local stand-in: paging, token errors worded,
events completing asynchronously, 429 Retry-After honoured, network errors backed off."""

from __future__ import annotations

import socket

import pytest

from mdmserver.apps.vpp import RateLimited, VppClient, VppError, VppUnavailable, parse_token
from mdmserver.testing.fake_vpp import make_token
from tests.apps.conftest import ADAM_ID


def _client(stoken: str, url: str, waits: list[float] | None = None, **kwargs) -> VppClient:
    record = waits.append if waits is not None else (lambda _seconds: None)
    return VppClient(parse_token(stoken), url, sleep=record, **kwargs)


def test_assets_cross_pages_with_their_counts(stoken, fake_vpp, vpp_url):
    assets = _client(stoken, vpp_url).assets()
    assert [a["adamId"] for a in assets] == [ADAM_ID, "361309726", "377298193"]  # 2 pages
    assert assets[0]["totalCount"] == 3 and assets[0]["availableCount"] == 3
    assert all(auth == f"Bearer {stoken}" for _, _, auth in fake_vpp.requests)


def test_license_assignment_by_serial_completes_asynchronously(stoken, fake_vpp, vpp_url):
    client = _client(stoken, vpp_url)
    event_id = client.associate([(ADAM_ID, "STDQ")], ["C02AAA", "C02BBB"])
    first = client.event_status(event_id)
    assert first.status == "PENDING" and not first.done
    assert fake_vpp.assets[ADAM_ID].assigned == set()  # not done yet
    final = client.wait_event(event_id, timeout=10, poll_seconds=0.01)
    assert (final.status, final.num_requested, final.num_completed) == ("COMPLETE", 2, 2)
    assert {a["serialNumber"] for a in client.assignments(adam_id=ADAM_ID)} == {
        "C02AAA",
        "C02BBB",
    }
    revoke = client.wait_event(
        client.disassociate([(ADAM_ID, "STDQ")], ["C02AAA"]), timeout=10, poll_seconds=0.01
    )
    assert revoke.status == "COMPLETE"
    assert client.assets(ADAM_ID)[0]["assignedCount"] == 1


def test_a_failed_event_names_each_serial(stoken, fake_vpp, vpp_url):
    client = _client(stoken, vpp_url)
    event_id = client.associate([("361309726", "STDQ")], ["C02AAA"])  # not device-assignable
    final = client.wait_event(event_id, timeout=10, poll_seconds=0.01)
    assert final.status == "FAILED"
    assert [(f["serialNumber"], f["errorNumber"]) for f in final.failures] == [("C02AAA", 9628)]


def test_429_retry_after_is_honoured(stoken, fake_vpp, vpp_url):
    waits: list[float] = []
    fake_vpp.rate_limit(times=2, retry_after="7")
    assets = _client(stoken, vpp_url, waits).assets()
    assert len(assets) == 3
    assert waits[:2] == [7.0, 7.0]  # waited what Apple asked, twice, then succeeded
    assert len(fake_vpp.requests) == 4  # two 429s, then the two pages


def test_a_retry_after_too_long_is_raised_not_slept(stoken, fake_vpp, vpp_url):
    waits: list[float] = []
    fake_vpp.rate_limit(times=1, retry_after="3600")
    with pytest.raises(RateLimited) as caught:
        _client(stoken, vpp_url, waits, max_retry_after=60).assets()
    assert caught.value.retry_after == 3600 and waits == []


@pytest.mark.parametrize(
    ("which", "number", "words"),
    [("expired", 9621, "expired"), ("revoked", 9625, "revoked"), ("unknown", 9622, "Invalid")],
)
def test_token_errors_are_worded(stoken, fake_vpp, vpp_url, which, number, words):
    token = make_token("Other Org")
    if which == "expired":
        fake_vpp.expired.add(token)
    elif which == "revoked":
        fake_vpp.revoked.add(token)
    with pytest.raises(VppError) as caught:
        _client(token, vpp_url).client_config()
    assert caught.value.number == number and caught.value.token_problem
    assert words in str(caught.value) and str(number) in str(caught.value)


def test_network_errors_back_off_exponentially(stoken):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again below: nothing listens there
    waits: list[float] = []
    client = _client(stoken, f"http://127.0.0.1:{port}/mdm/v2", waits, max_attempts=4,
                     backoff_seconds=0.5, timeout=2)  # fmt: skip
    with pytest.raises(VppUnavailable):
        client.client_config()
    assert waits == [0.5, 1.0, 2.0]


def test_a_content_token_never_shows_its_secret(stoken):
    token = parse_token(stoken)
    assert token.org_name == "Example Org" and 198 <= token.days_left() <= 200
    assert stoken not in repr(token)
