"""Behind a TLS-terminating proxy the client certificate arrives in a header, when configured."""

from __future__ import annotations

import base64
import dataclasses
import urllib.parse

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from mdmserver.app import create_app
from mdmserver.crypto.ca import create_ca, dump_cert_pem, generate_key, issue_certificate
from mdmserver.testing.http import send, serve, settled_snapshot
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
