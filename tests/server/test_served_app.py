"""Third-party clients against the served app (issue 13): SCEP PKIOperation by GET, and a
device that sends PUT /mdm/connect without a Content-Type, through ``mdmserver serve`` and the
Procfile's web line."""

from __future__ import annotations

import plistlib

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import rsa

from mdmserver.crypto.ca import load_pem_certificates
from mdmserver.scep.message import PkiStatus
from mdmserver.testing.device import VirtualDevice
from mdmserver.testing.enrollment import scep_challenge, scep_request, unwrap_profile
from mdmserver.testing.pki import TEST_TOPIC
from tests.server.conftest import KINDS, enrollment_token

pytestmark = pytest.mark.filterwarnings("ignore:Unverified HTTPS request")


def put(url: str, path: str, body: bytes, headers: dict[str, str]) -> requests.Response:
    return requests.put(url + path, data=body, headers=headers, verify=False, timeout=30)


@pytest.mark.parametrize("kind", KINDS)
def test_scep_get_and_connect_without_content_type(start_server, database_url, kind):
    served = start_server(kind)
    ca_cert = load_pem_certificates((served.home / "ca.pem").read_bytes())[0]
    token = enrollment_token(database_url)
    profile = requests.get(
        f"{served.url}/mdm/enroll", params={"token": token}, verify=False, timeout=30
    )
    assert profile.status_code == 200, profile.text
    challenge = scep_challenge(unwrap_profile(profile.content))

    # A 4096-bit key makes a query like real clients send (5-6 KB), past gunicorn's 4,094 bytes.
    key = rsa.generate_private_key(public_exponent=65537, key_size=4096)
    attempt = scep_request(served.url, ca_cert, challenge, key=key, via_get=True, verify=False)
    assert len(attempt.response.request.url or "") > 5000
    assert attempt.response.status_code == 200, attempt.response.text
    assert attempt.response.headers["Content-Type"] == "application/x-pki-message"
    assert attempt.result is not None and attempt.result.status == PkiStatus.SUCCESS

    device = VirtualDevice(certificate=attempt.certificate, key=attempt.key, topic=TEST_TOPIC)
    for request in (device.authenticate(), device.token_update()):
        reply = put(served.url, request.path, request.body, request.headers)
        assert reply.status_code == 200, reply.text
    # The command loop without a Content-Type: the signed plist is read as what it is.
    idle = device.idle()
    headers = {k: v for k, v in idle.headers.items() if k.lower() != "content-type"}
    reply = put(served.url, idle.path, idle.body, headers)
    assert reply.status_code == 200, reply.text
    assert reply.request.headers.get("Content-Type") is None
    if reply.content:  # enrollment queued work (inventory): a command plist, as for any device
        assert "CommandUUID" in plistlib.loads(reply.content)
    # A Content-Type that says something else is still refused.
    wrong = put(served.url, idle.path, idle.body, {**headers, "Content-Type": "application/json"})
    assert wrong.status_code == 400 and "Content-Type" in wrong.text
