"""Only device identities are device identities (issue 12 item 4): a certificate that chains to
a trusted CA is refused for a device when it is a CA, is not for client authentication, or
cannot even be decoded; each refusal is a 403 that changes nothing, never a 500."""

from __future__ import annotations

import base64
import dataclasses
from datetime import timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from mdmserver.app import create_app
from mdmserver.crypto.ca import create_ca, dump_cert_pem, generate_key, issue_certificate
from mdmserver.testing.device import VirtualDevice
from mdmserver.testing.http import send, serve, snapshot
from mdmserver.testing.pki import TEST_TOPIC
from mdmserver.web.runtime import runtime

HEADER = "X-Client-Cert"


def _device(ca_cert, ca_key, **usages) -> VirtualDevice:
    key = generate_key()
    cert = issue_certificate(
        ca_cert,
        ca_key,
        key.public_key(),
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "not quite a device")]),
        lifetime=timedelta(days=30),
        **usages,
    )
    return VirtualDevice(certificate=cert, key=key, topic=TEST_TOPIC)


def _refused(live_server, engine, device: VirtualDevice, why: str) -> None:
    before = snapshot(engine)
    for request in (device.authenticate(), device.token_update(), device.idle()):
        reply = send(live_server, request)
        assert reply.status_code == 403, reply.text
        assert why in reply.text
    assert snapshot(engine) == before


def test_the_ca_certificate_itself_is_not_a_device(app, live_server, pki):
    ca = VirtualDevice(certificate=pki.ca_cert, key=pki.ca_key, topic=TEST_TOPIC)
    _refused(live_server, runtime(app).engine, ca, "CA certificate")


def test_a_server_certificate_of_the_ca_is_not_a_device(app, live_server, pki):
    server = _device(pki.ca_cert, pki.ca_key, server_auth=True)
    _refused(live_server, runtime(app).engine, server, "does not include clientAuth")


def test_a_certificate_without_eku_from_the_server_ca_is_not_a_device(app, live_server, pki):
    bare = _device(pki.ca_cert, pki.ca_key)
    _refused(live_server, runtime(app).engine, bare, "no extendedKeyUsage clientAuth")


@pytest.mark.parametrize("kind", ["subject", "extension"])
def test_undecodable_certificate_is_a_403_not_a_500(app, live_server, pki, kind):
    """A subject that is not UTF-8, or an extension that does not parse, used to answer an
    unauthenticated 500 with a traceback."""
    make = pki.undecodable_identity if kind == "subject" else pki.bad_extension_identity
    cert, key = make()
    with pytest.raises(ValueError):
        _ = cert.subject if kind == "subject" else cert.extensions
    odd = VirtualDevice(certificate=cert, key=key, topic=TEST_TOPIC)
    _refused(live_server, runtime(app).engine, odd, "cannot be decoded")


def test_undecodable_subject_in_the_client_cert_header_is_a_403(app_config, pki):
    application = create_app(dataclasses.replace(app_config, client_cert_header=HEADER))
    cert, _ = pki.undecodable_identity()
    header = ":" + base64.b64encode(cert.public_bytes(Encoding.DER)).decode() + ":"
    try:
        with serve(application) as url:
            device = pki.device()
            before = snapshot(runtime(application).engine)
            request = device.authenticate()
            del request.headers["Mdm-Signature"]
            reply = send(url, request, headers={HEADER: header})
            assert reply.status_code == 403, reply.text
            assert snapshot(runtime(application).engine) == before
    finally:
        runtime(application).close()


@pytest.fixture
def org_ca(tmp_path):
    """An organisation's own device CA, configured through MDM_DEVICE_CA_FILES."""
    cert, key = create_ca("organisation device CA")
    path = tmp_path / "org-ca.pem"
    path.write_bytes(dump_cert_pem(cert))
    return cert, key, path


@pytest.fixture
def org_app(app_config, org_ca):
    application = create_app(dataclasses.replace(app_config, device_ca_files=(str(org_ca[2]),)))
    yield application
    runtime(application).close()


def test_an_organisation_ca_may_issue_identities_without_eku(org_app, org_ca):
    with serve(org_app) as url:
        device = _device(org_ca[0], org_ca[1])
        for request in (device.authenticate(), device.token_update(), device.idle()):
            assert send(url, request).status_code == 200


def test_an_organisation_ca_server_certificate_is_not_a_device(org_app, org_ca):
    with serve(org_app) as url:
        server = _device(org_ca[0], org_ca[1], server_auth=True)
        _refused(url, runtime(org_app).engine, server, "does not include clientAuth")
