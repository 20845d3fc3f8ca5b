"""The seed's own scenario as a tested recipe: only compliant devices reach the mail server.

deploy/nginx/access-proxy.conf.template runs in Debian's nginx in front of a stand-in mail
app. A virtual device enrolls, gets profiles/access-identity installed by MDM (encrypted to
it), makes its access identity by real SCEP with the profile's device-bound challenge, and
uses that certificate at the proxy, which asks the trust API about it (auth_request, cached).
"""

from __future__ import annotations

import plistlib
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import requests
from cryptography import x509

from mdmserver.config import load_config
from mdmserver.crypto.ca import dump_cert_pem, dump_key_pem, fingerprint_sha256, generate_key
from mdmserver.crypto.cms_encrypt import decrypt
from mdmserver.enrollment.instance import init_instance
from mdmserver.protocol.commands import new_command
from mdmserver.simulator.answers import read_profile
from mdmserver.simulator.harness import free_port
from mdmserver.testing.device import VirtualDevice
from mdmserver.testing.http import send, serve
from mdmserver.testing.nginx import Nginx, render
from mdmserver.testing.pki import TEST_TOPIC
from mdmserver.testing.scep_client import (
    build_pkcs_req,
    make_csr,
    parse_cert_rep,
    self_signed_for_scep,
)
from mdmserver.web.runtime import runtime
from tests.deploy.conftest import DEPLOY
from tests.trust.conftest import CLEAN

HEADER = "X-SSL-Client-Cert"
CACHE_SECONDS = 2
WITHIN = 5.0  # seconds: a change in compliance reaches the door within this
NO_PASSCODE = {**CLEAN, "SecurityInfo": {"SecurityInfo": {"PasscodePresent": False}}}


def mail_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    """The internal web app the proxy guards: it plays the mail server."""
    body = b"Inbox: 3 unread messages\n"
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


def session(base: str, device: VirtualDevice, answers: dict[str, Any]) -> list[dict[str, Any]]:
    """One device session: Idle, then answer every command; the commands received."""
    received = []
    reply = send(base, device.idle())
    while reply.status_code == 200 and reply.content:
        command = plistlib.loads(reply.content)
        received.append(command)
        request_type = command["Command"]["RequestType"]
        reply = send(
            base,
            device.result("Acknowledged", command["CommandUUID"], **answers.get(request_type, {})),
        )
    assert reply.status_code == 200, reply.text
    return received


def access_identity(
    base: str, device: VirtualDevice, install: dict[str, Any]
) -> tuple[x509.Certificate, Any]:
    """What the device does with the InstallProfile: decrypt, then SCEP with its challenge."""
    profile = read_profile(install["Command"]["Payload"])
    assert profile is not None and "EncryptedPayloadContent" in profile
    inner = plistlib.loads(
        decrypt(profile["EncryptedPayloadContent"], device.certificate, device.key)
    )
    [scep] = [p for p in inner if p["PayloadType"] == "com.apple.security.scep"]
    content = scep["PayloadContent"]
    assert content["URL"] == base + "/scep"
    ca = x509.load_der_x509_certificate(
        requests.get(content["URL"], params={"operation": "GetCACert"}, timeout=10).content
    )
    key = generate_key("rsa")
    csr = make_csr(key, "access identity", content["Challenge"])
    body, transaction_id, nonce = build_pkcs_req(
        csr, self_signed_for_scep(key, "access identity"), key, ca
    )
    reply = requests.post(
        content["URL"],
        params={"operation": "PKIOperation"},
        data=body,
        headers={"Content-Type": "application/x-pki-message"},
        timeout=10,
    )
    result = parse_cert_rep(
        reply.content, ca, key, transaction_id=transaction_id, sender_nonce=nonce
    )
    assert result.certificate is not None, result
    return result.certificate, key


@pytest.fixture
def recipe(tmp_path: Path, database_url: str, pki: Any, nginx_available: str) -> Iterator[dict]:
    home = tmp_path / "instance"
    init_instance(home, "https://127.0.0.1", topic=TEST_TOPIC)
    config = load_config(
        environ={},
        overrides={
            "home": home,
            "database_url": database_url,
            "device_ca_files": (str(pki.ca_file),),  # the virtual devices' MDM identities
            "client_cert_header": HEADER,
            "auto_migrate": True,
            "log_level": "WARNING",
        },
    )
    from mdmserver.app import create_app

    app = create_app(config)
    rt = runtime(app)
    keys = {
        s: rt.admin.api_keys.create(f"{s}-key", s, actor="test").key for s in ("trust", "admin")
    }
    port = free_port()
    with serve(app) as base, serve(mail_app) as mail:
        site = render(
            DEPLOY / "nginx" / "access-proxy.conf.template",
            {
                "ACCESS_HOST": "127.0.0.1",
                "ACCESS_LISTEN": f"127.0.0.1:{port}",
                "ACCESS_TLS_CERT": str(home / "tls.pem"),
                "ACCESS_TLS_KEY": str(home / "tls.key"),
                "ACCESS_CA_FILE": str(home / "ca.pem"),
                "ACCESS_APP_UPSTREAM": mail.removeprefix("http://"),
                "ACCESS_MDM_UPSTREAM": base.removeprefix("http://"),
                "ACCESS_TRUST_KEY": keys["trust"],
                "ACCESS_CACHE_DIR": str(tmp_path / "trust-cache"),
                "ACCESS_CACHE_SECONDS": str(CACHE_SECONDS),
                "ACCESS_HELP": "the IT help desk (help@example.com)",
            },
        )
        with Nginx(tmp_path / "nginx", [site], [port]) as proxy:
            yield {
                "app": app,
                "base": base,
                "door": f"https://127.0.0.1:{port}/inbox",
                "ca": str(home / "ca.pem"),
                "keys": keys,
                "nginx": proxy,
                "tmp": tmp_path,
            }
    rt.close()


def _admin(r: dict, method: str, path: str, body: Any) -> requests.Response:
    headers = {"Authorization": f"Bearer {r['keys']['admin']}"}
    return requests.request(method, r["base"] + path, json=body, headers=headers, timeout=10)


def _until(check: Callable[[], requests.Response], status: int) -> tuple[requests.Response, float]:
    started = time.monotonic()
    while True:
        reply = check()
        elapsed = time.monotonic() - started
        if reply.status_code == status or elapsed > WITHIN + 1:
            return reply, elapsed
        time.sleep(0.1)


def test_only_a_managed_compliant_device_reaches_the_mail_server(recipe, pki):
    r = recipe
    rt = runtime(r["app"])
    assert _admin(r, "PUT", "/api/v1/compliance/policy", {"passcode_present": True}).ok
    device = pki.device("mail-user")
    assert send(r["base"], device.authenticate()).status_code == 200
    assert send(r["base"], device.token_update()).status_code == 200
    session(r["base"], device, CLEAN)

    # The admin installs the access identity on every device.
    made = _admin(r, "POST", "/api/v1/profiles", {
        "name": "mail-access", "template": "access-identity",
        "variables": {"scep_url": r["base"] + "/scep"},
    })  # fmt: skip
    assert made.status_code == 201, made.text
    assert _admin(r, "POST", "/api/v1/profiles/mail-access/assignments", {"target": "all"}).ok
    [install] = [c for c in session(r["base"], device, CLEAN)
                 if c["Command"]["RequestType"] == "InstallProfile"]  # fmt: skip
    cert, key = access_identity(r["base"], device, install)
    issued = runtime(r["app"]).enrollment.store.issued(fingerprint_sha256(cert))
    assert (issued.device_id, issued.method) == (device.udid, "access")
    assert cert.serial_number != device.certificate.serial_number

    cert_file, key_file = r["tmp"] / "access.pem", r["tmp"] / "access.key"
    cert_file.write_bytes(dump_cert_pem(cert))
    key_file.write_bytes(dump_key_pem(key))

    def door(**kw: Any) -> requests.Response:
        return requests.get(r["door"], cert=(str(cert_file), str(key_file)), verify=r["ca"],
                            timeout=10, **kw)  # fmt: skip

    # Compliant: in, and the trust answer is reused for the next request.
    allowed = door()
    assert allowed.status_code == 200 and "Inbox" in allowed.text
    again = door()
    assert again.status_code == 200 and again.headers["X-MDM-Trust-Cache"] == "HIT"

    # The device reports no passcode: refused within seconds, with why and how to fix it.
    rt.storage.enqueue(new_command("SecurityInfo"), [device.udid])
    session(r["base"], device, NO_PASSCODE)
    refused, took = _until(door, 403)
    assert refused.status_code == 403, refused.text
    assert took <= WITHIN
    assert took <= CACHE_SECONDS + 1.5  # the proxy reuses an answer for at most that long
    assert "passcode" in refused.text.lower() and "How to fix it" in refused.text
    assert "Inbox" not in refused.text
    # Whatever the client sends, the proxy's key and certificate header are the ones used.
    forged = door(headers={
        "Authorization": f"Bearer {r['keys']['admin']}",
        HEADER: quote(dump_cert_pem(device.certificate).decode()),
    })  # fmt: skip
    assert forged.status_code == 403

    # Back in policy: in again.
    rt.storage.enqueue(new_command("SecurityInfo"), [device.udid])
    session(r["base"], device, CLEAN)
    back, took = _until(door, 200)
    assert back.status_code == 200 and took <= WITHIN

    # The device checks out (unenrolls): its access identity opens nothing.
    assert send(r["base"], device.check_out()).status_code == 200
    gone, took = _until(door, 403)
    assert gone.status_code == 403 and took <= WITHIN
    assert "not the access identity of a managed device" in gone.text

    # Enrolled again, then the access identity is revoked: refused.
    assert send(r["base"], device.authenticate()).status_code == 200
    assert send(r["base"], device.token_update()).status_code == 200
    session(r["base"], device, CLEAN)
    assert _until(door, 200)[0].status_code == 200
    assert runtime(r["app"]).enrollment.store.revoke_certificate(fingerprint_sha256(cert))
    revoked, took = _until(door, 403)
    assert revoked.status_code == 403 and took <= WITHIN
    assert "revoked" in revoked.text

    # The access identity is not an MDM identity.
    impostor = VirtualDevice(certificate=cert, key=key, udid=device.udid, topic=TEST_TOPIC)
    assert send(r["base"], impostor.idle()).status_code == 403


def test_no_certificate_or_another_ca_gets_no_further_than_nginx(recipe, pki):
    r = recipe
    bare = requests.get(r["door"], verify=r["ca"], timeout=10)
    assert bare.status_code == 400 and "Inbox" not in bare.text
    stranger, stranger_key = pki.identity("not from the MDM CA")
    cert_file, key_file = r["tmp"] / "s.pem", r["tmp"] / "s.key"
    cert_file.write_bytes(dump_cert_pem(stranger))
    key_file.write_bytes(dump_key_pem(stranger_key))
    other = requests.get(r["door"], cert=(str(cert_file), str(key_file)), verify=r["ca"],
                         timeout=10)  # fmt: skip
    assert other.status_code == 400 and "Inbox" not in other.text
