"""GET /api/v1/devices (filters, pages) and GET /api/v1/devices/<id>."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import insert, update

from mdmserver.storage.sql.schema import cert_bindings, device_tags, devices
from mdmserver.web.runtime import runtime


def _ids(reply) -> set[str]:
    assert reply.status_code == 200, reply.get_json()
    return {d["id"] for d in reply.get_json()["devices"]}


def test_list_filters(app, api):
    phone = api.enroll("iOS", os_version="17.4")
    old_phone = api.enroll("iOS", os_version="16.7.2")
    ipad = api.enroll("iPadOS", os_version="17.1")
    mac = api.enroll("macOS", os_version="14.4.1")
    pending = api.enroll("tvOS", os_version="16.0", active=False)
    engine = runtime(app).engine
    now = datetime.now(UTC)
    with engine.begin() as conn:
        conn.execute(
            insert(device_tags),
            [{"device_id": d, "tag": "sales", "created_at": now} for d in (phone, mac)],
        )
        conn.execute(
            update(devices).where(devices.c.id == mac).values(last_seen_at=now - timedelta(days=9))
        )
        conn.execute(update(devices).where(devices.c.id == phone).values(last_seen_at=now))

    assert _ids(api.get("/api/v1/devices")) == {phone, old_phone, ipad, mac, pending}
    assert _ids(api.get("/api/v1/devices?platform=ios")) == {phone, old_phone, ipad}
    assert _ids(api.get("/api/v1/devices?platform=macOS")) == {mac}
    assert _ids(api.get("/api/v1/devices?os_version=17.4")) == {phone}
    assert _ids(api.get("/api/v1/devices?min_os_version=17")) == {phone, ipad}
    assert _ids(api.get("/api/v1/devices?enrolled=false")) == {pending}
    assert _ids(api.get("/api/v1/devices?tag=sales")) == {phone, mac}
    assert _ids(api.get("/api/v1/devices?tag=sales&platform=iOS")) == {phone}
    week_ago = (now - timedelta(days=7)).isoformat().replace("+00:00", "Z")
    assert _ids(api.get(f"/api/v1/devices?last_seen_before={week_ago}")) == {mac}
    assert _ids(api.get(f"/api/v1/devices?last_seen_after={week_ago}")) == {phone}


def test_pages_with_a_cursor(app, api):
    made = {api.enroll("iOS", os_version=f"17.{i}") for i in range(5)}
    seen: list[str] = []
    cursor = None
    for _ in range(5):
        url = "/api/v1/devices?limit=2&min_os_version=17.1" + (
            f"&cursor={cursor}" if cursor else ""
        )
        body = api.get(url).get_json()
        seen += [d["id"] for d in body["devices"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 4 and len(set(seen)) == 4 and set(seen) < made
    assert seen == sorted(seen)


def test_bad_filters_are_400_naming_the_field(api):
    for query, named in [
        ("platform=android", "platform"),
        ("os_version=latest", "os_version"),
        ("enrolled=maybe", "enrolled"),
        ("last_seen_before=yesterday", "last_seen_before"),
        ("limit=0", "limit"),
        ("limit=abc", "limit"),
        ("cursor=%25%25%25", "cursor"),
        ("colour=red", "colour"),
    ]:
        reply = api.get(f"/api/v1/devices?{query}")
        assert reply.status_code == 400, query
        assert reply.get_json()["error"].startswith(named), reply.get_json()


def test_show_by_udid_or_serial(app, api):
    udid = api.enroll("macOS", os_version="14.4", serial="C02SERIAL01")
    not_after = datetime(2030, 1, 2, tzinfo=UTC)
    with runtime(app).engine.begin() as conn:
        conn.execute(
            insert(cert_bindings).values(
                device_id=udid, fingerprint="ab" * 32, not_after=not_after, bound_at=not_after
            )
        )
    for ident in (udid, "C02SERIAL01"):
        body = api.get(f"/api/v1/devices/{ident}").get_json()
        assert body["id"] == udid and body["platform"] == "macOS"
        assert body["identity_expires_at"] == "2030-01-02T00:00:00Z"
        assert body["inventory"]["product_name"] == "Mac14,2"
        assert body["inventory"]["os_version"] == "14.4"
        [channel] = body["enrollments"]
        assert channel["channel"] == "device" and channel["status"] == "active"
        assert channel["push_token_present"] is True and channel["token_stale"] is False


def test_unknown_device_is_404_naming_it(api):
    reply = api.get("/api/v1/devices/NOPE-123")
    assert reply.status_code == 404 and "NOPE-123" in reply.get_json()["error"]
