"""App files and manifests are fetched only by enrolled devices assigned the app, with the
same identity rules as the check-in: real signed requests over HTTP from virtual devices."""

from __future__ import annotations

import base64
import hashlib
import plistlib
from datetime import UTC, datetime

import pytest
import requests
from sqlalchemy import insert

from mdmserver.storage.sql.schema import device_tags
from mdmserver.testing.app_packages import make_pkg
from mdmserver.testing.http import drain, send
from mdmserver.web.runtime import runtime
from tests.api.conftest import make_key


def _enrolled(live_server, pki, serial: str):
    device = pki.device(serial_number=serial)
    assert send(live_server, device.authenticate()).status_code == 200
    assert send(live_server, device.token_update()).status_code == 200
    drain(live_server, device)
    return device


def _get(live_server, path: str, device=None, headers: dict[str, str] | None = None):
    sent = dict(headers or {})
    if device is not None:
        sent["Mdm-Signature"] = device.sign(b"")  # over the (empty) body of a GET
    return requests.get(live_server + path, headers=sent, timeout=10)


@pytest.fixture
def package(app, live_server):
    return _store_package(app, live_server)


def _store_package(app, live_server) -> tuple[str, bytes]:
    """A stored .pkg assigned to devices tagged "mac"."""
    key = make_key(app, "files-admin")
    data = make_pkg(payload=b"\2" * 20000)
    auth = {"Authorization": f"Bearer {key}"}
    reply = requests.post(
        live_server + "/api/v1/apps/upload?kind=macos_pkg&name=agent&bundle_id=com.example.agent",
        data=data, headers=auth, timeout=10,
    )  # fmt: skip
    assert reply.status_code == 201, reply.text
    app_id = reply.json()["id"]
    assign = {"target": "tag:mac", "behaviour": "required"}
    reply = requests.post(f"{live_server}/api/v1/apps/{app_id}/assignments", json=assign,
                          headers=auth, timeout=10)  # fmt: skip
    assert reply.status_code == 200, reply.text
    return app_id, data


def _tag(app, device, tag: str) -> None:
    """As an enrollment token with this tag would have done (tests/profiles does the same)."""
    with runtime(app).engine.begin() as conn:
        conn.execute(
            insert(device_tags).values(device_id=device.udid, tag=tag, created_at=datetime.now(UTC))
        )


def test_an_assigned_enrolled_device_fetches_the_file_and_manifest(app, live_server, pki, package):
    app_id, data = package
    device = _enrolled(live_server, pki, "C02MAC00001")
    _tag(app, device, "mac")
    reply = _get(live_server, f"/mdm/apps/{app_id}/file", device)
    assert reply.status_code == 200 and reply.content == data
    manifest = _get(live_server, f"/mdm/apps/{app_id}/manifest", device)
    assert manifest.status_code == 200
    asset = plistlib.loads(manifest.content)["items"][0]["assets"][0]
    assert asset["sha256s"] == [hashlib.sha256(data).hexdigest()]


def test_an_unassigned_device_is_refused(app, live_server, pki, package):
    app_id, _ = package
    device = _enrolled(live_server, pki, "C02IOS00001")  # enrolled, not tagged "mac"
    for what in ("file", "manifest"):
        reply = _get(live_server, f"/mdm/apps/{app_id}/{what}", device)
        assert reply.status_code == 403 and "not assigned" in reply.text


def test_an_unenrolled_client_is_refused(app, live_server, pki, package):
    app_id, _ = package
    stranger = pki.device(serial_number="C02NOPE0001")  # a certificate from our CA, never enrolled
    reply = _get(live_server, f"/mdm/apps/{app_id}/file", stranger)
    assert reply.status_code == 403 and "not bound" in reply.text
    unsigned = _get(live_server, f"/mdm/apps/{app_id}/file")
    assert unsigned.status_code == 400 and "Mdm-Signature" in unsigned.text
    forged = _get(live_server, f"/mdm/apps/{app_id}/file",
                  headers={"Mdm-Signature": base64.b64encode(b"junk").decode()})  # fmt: skip
    assert forged.status_code == 403


def test_a_checked_out_device_is_refused(app, live_server, pki, package):
    app_id, _ = package
    device = _enrolled(live_server, pki, "C02MAC00002")
    _tag(app, device, "mac")
    assert send(live_server, device.check_out()).status_code == 200
    reply = _get(live_server, f"/mdm/apps/{app_id}/file", device)
    assert reply.status_code == 403 and "active enrollment" in reply.text


def test_a_signature_over_another_body_is_refused(app, live_server, pki, package):
    """A signature made for a check-in body cannot be replayed as a download credential."""
    app_id, _ = package
    device = _enrolled(live_server, pki, "C02MAC00003")
    _tag(app, device, "mac")
    replayed = device.idle().headers["Mdm-Signature"]
    reply = _get(live_server, f"/mdm/apps/{app_id}/file", headers={"Mdm-Signature": replayed})
    assert reply.status_code == 403


def test_an_enrolled_device_asking_for_an_unknown_app_gets_404(app, live_server, pki, package):
    device = _enrolled(live_server, pki, "C02MAC00004")
    assert _get(live_server, "/mdm/apps/nope/file", device).status_code == 404


def test_behind_the_trusted_proxy_the_forwarded_certificate_counts(app_config, pki):
    """With MDM_CLIENT_CERT_HEADER set, the proxy's client-certificate header identifies the
    device instead of a signature; the same enrollment and assignment rules apply."""
    import dataclasses

    from cryptography.hazmat.primitives.serialization import Encoding

    from mdmserver.app import create_app
    from mdmserver.testing.http import serve

    proxied = create_app(dataclasses.replace(app_config, client_cert_header="X-Client-Cert"))
    try:
        with serve(proxied) as server:
            app_id, data = _store_package(proxied, server)
            device = _enrolled(server, pki, "C02MAC00005")

            def forwarded(cert) -> dict[str, str]:
                der = cert.public_bytes(Encoding.DER)
                return {"X-Client-Cert": ":" + base64.b64encode(der).decode() + ":"}

            path = f"/mdm/apps/{app_id}/file"
            assert _get(server, path, headers=forwarded(device.certificate)).status_code == 403
            _tag(proxied, device, "mac")
            reply = _get(server, path, headers=forwarded(device.certificate))
            assert reply.status_code == 200 and reply.content == data
            stranger = pki.device(serial_number="C02NOPE0002")
            assert _get(server, path, headers=forwarded(stranger.certificate)).status_code == 403
            assert _get(server, path).status_code == 400  # neither header nor signature
    finally:
        runtime(proxied).close()
