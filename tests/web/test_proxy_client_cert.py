"""Behind a TLS-terminating proxy the client certificate arrives in a header, when configured."""

from __future__ import annotations

import base64
import dataclasses
import http.client
import json
import plistlib
import urllib.parse

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from mdmserver.app import create_app
from mdmserver.config import ConfigError, load_config
from mdmserver.crypto.ca import create_ca, dump_cert_pem, generate_key, issue_certificate
from mdmserver.protocol.commands import new_command
from mdmserver.testing.http import drain, send, serve, settled_snapshot, snapshot
from mdmserver.web.runtime import runtime

HEADER = "X-Client-Cert"


@pytest.fixture
def proxied_app(app_config):
    application = create_app(dataclasses.replace(app_config, client_cert_header=HEADER))
    yield application
    runtime(application).close()


@pytest.fixture
def proxied_server(proxied_app):
    with serve(proxied_app) as url:
        yield url


def rfc9440(cert) -> str:
    return ":" + base64.b64encode(cert.public_bytes(Encoding.DER)).decode() + ":"


def nginx(cert) -> str:
    return urllib.parse.quote(dump_cert_pem(cert).decode())


@pytest.mark.parametrize("encode", [rfc9440, nginx], ids=["rfc9440", "nginx"])
def test_unsigned_requests_with_forwarded_certificate(proxied_server, pki, encode):
    device = pki.device()
    header = {HEADER: encode(device.certificate)}
    for request in (device.authenticate(), device.token_update(), device.idle()):
        del request.headers["Mdm-Signature"]
        reply = send(proxied_server, request, headers=header)
        assert reply.status_code == 200, reply.text


def test_forwarded_certificate_must_be_trusted_and_bound(proxied_app, proxied_server, pki):
    device = pki.device()
    for request in (device.authenticate(), device.token_update()):
        del request.headers["Mdm-Signature"]
        assert send(proxied_server, request, headers={HEADER: rfc9440(device.certificate)}).ok
    rogue_ca, rogue_key = create_ca("rogue")
    key = generate_key()
    rogue = issue_certificate(
        rogue_ca,
        rogue_key,
        key.public_key(),
        device.certificate.subject,
        lifetime=device.certificate.not_valid_after_utc - device.certificate.not_valid_before_utc,
    )
    other_cert, _ = pki.identity("other")
    idle = device.idle()
    del idle.headers["Mdm-Signature"]
    rt = runtime(proxied_app)
    before = settled_snapshot(rt.engine, rt.seen.flush if rt.seen else None)
    untrusted = send(proxied_server, idle, headers={HEADER: rfc9440(rogue)})
    unbound = send(proxied_server, idle, headers={HEADER: rfc9440(other_cert)})
    junk = send(proxied_server, idle, headers={HEADER: "not a certificate"})
    missing = send(proxied_server, idle)
    assert settled_snapshot(rt.engine, rt.seen.flush if rt.seen else None) == before
    assert (untrusted.status_code, unbound.status_code) == (403, 403)
    assert (junk.status_code, missing.status_code) == (400, 400)
    assert HEADER in junk.text


# Only a trusted proxy may name the client certificate (issue 12 item 3) ----------------------


def _put_from(base_url: str, source: str, request, headers: dict[str, str]) -> tuple[int, str]:
    """PUT `request` from the loopback address `source` (the peer the server sees)."""
    parts = urllib.parse.urlsplit(base_url)
    conn = http.client.HTTPConnection(
        parts.hostname, parts.port, timeout=30, source_address=(source, 0)
    )
    try:
        conn.request("PUT", request.path, body=request.body, headers={**request.headers, **headers})
        reply = conn.getresponse()
        return reply.status, reply.read().decode()
    finally:
        conn.close()


@pytest.fixture
def victim(proxied_app, proxied_server, pki):
    """A device enrolled through the proxy, with a DeviceLock waiting in its queue."""
    device = pki.device()
    for request in (device.authenticate(), device.token_update()):
        assert send(proxied_server, request).status_code == 200
    drain(proxied_server, device)  # what enrollment queued (inventory, DDM) is answered first
    runtime(proxied_app).storage.enqueue(new_command("DeviceLock"), [device.udid])
    return device


def test_client_cert_header_from_an_untrusted_peer_is_ignored(proxied_app, proxied_server, victim):
    """Anyone who reaches the app port with the victim's public certificate in the header is
    refused: the default MDM_TRUSTED_PROXIES is loopback 127.0.0.1 and ::1 only, and this
    peer is 127.0.0.2 (the victim's certificate is public: every TLS handshake shows it)."""
    rt = runtime(proxied_app)
    flush = rt.seen.flush if rt.seen else None
    header = {HEADER: rfc9440(victim.certificate)}
    before = settled_snapshot(rt.engine, flush)  # the victim's own requests have landed
    for request in (victim.authenticate(), victim.token_update(), victim.idle()):
        del request.headers["Mdm-Signature"]
        status, text = _put_from(proxied_server, "127.0.0.2", request, header)
        assert status == 403, text
        assert "trusted proxy" in text
    # Device row, binding, queued DeviceLock: all unchanged.
    assert settled_snapshot(rt.engine, flush) == before
    # A signed request from that peer still works: the header is ignored, not the request.
    status, text = _put_from(proxied_server, "127.0.0.2", victim.idle(), header)
    assert status == 200 and plistlib.loads(text.encode())["Command"]["RequestType"] == (
        "DeviceLock"
    )


def test_client_cert_header_from_a_trusted_proxy_is_honoured(proxied_server, victim):
    idle = victim.idle()
    del idle.headers["Mdm-Signature"]
    status, text = _put_from(proxied_server, "127.0.0.1", idle, {HEADER: nginx(victim.certificate)})
    assert status == 200, text
    assert plistlib.loads(text.encode())["Command"]["RequestType"] == "DeviceLock"


def test_trusted_proxies_setting_replaces_the_default(app_config, pki):
    """With MDM_TRUSTED_PROXIES naming another network, loopback itself is not believed."""
    parsed = load_config(environ={"MDM_TRUSTED_PROXIES": "10.0.0.0/8, 192.0.2.7"})
    assert parsed.trusted_proxies == ("10.0.0.0/8", "192.0.2.7")
    application = create_app(
        dataclasses.replace(
            app_config, client_cert_header=HEADER, trusted_proxies=parsed.trusted_proxies
        )
    )
    try:
        with serve(application) as url:
            device = pki.device()
            before = snapshot(runtime(application).engine)
            request = device.authenticate()
            del request.headers["Mdm-Signature"]
            status, _ = _put_from(url, "127.0.0.1", request, {HEADER: rfc9440(device.certificate)})
            assert status == 403
            assert snapshot(runtime(application).engine) == before
    finally:
        runtime(application).close()


def test_trusted_proxies_must_be_networks():
    with pytest.raises(ConfigError, match="MDM_TRUSTED_PROXIES"):
        load_config(environ={"MDM_TRUSTED_PROXIES": "proxy.example.com"})


def test_trust_api_ignores_the_header_from_an_untrusted_peer(proxied_app, proxied_server, victim):
    key = runtime(proxied_app).admin.api_keys.create("relying", scope="trust", actor="test").key
    parts = urllib.parse.urlsplit(proxied_server)
    answers = {}
    for source in ("127.0.0.1", "127.0.0.2"):
        conn = http.client.HTTPConnection(parts.hostname, parts.port, source_address=(source, 0))
        conn.request(
            "GET",
            "/api/v1/trust/certificate",
            headers={"Authorization": f"Bearer {key}", HEADER: rfc9440(victim.certificate)},
        )
        reply = conn.getresponse()
        answers[source] = (reply.status, json.loads(reply.read()))
        conn.close()
    assert answers["127.0.0.1"][0] == 200 and answers["127.0.0.1"][1]["managed"] is True
    assert answers["127.0.0.2"][0] == 403
    assert "trusted proxy" in answers["127.0.0.2"][1]["error"]
