"""``mdmserver push-cert`` and what an installed certificate changes: accepted topics, expiry
warnings, private files, refused topic changes; and the push endpoints of the admin API."""

from __future__ import annotations

import base64
import datetime as dt
import os
import plistlib
import stat
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from mdmserver.cli import main
from mdmserver.push.cert import verify_vendor_request
from mdmserver.testing.apns_pki import Identity, issue_push_cert, make_ca, new_mdm_topic
from mdmserver.testing.http import send, serve
from mdmserver.web.runtime import runtime


def _run(home: Path, *args: str, **env: str) -> Any:
    """Run in the instance HOME (a config file is all the push commands need of it)."""
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").touch()
    return CliRunner().invoke(main, list(args), env={"MDM_HOME": str(home), **env})


def _pem(identity: Identity, tmp_path: Path, name: str = "push.pem") -> Path:
    path = tmp_path / name
    path.write_bytes(identity.cert_pem + identity.key_pem)
    return path


def _short_lived(ca: Identity, topic: str, days: int) -> Identity:
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.USER_ID, topic),
            x509.NameAttribute(NameOID.COMMON_NAME, "APSP:short-lived"),
        ]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=days))
        .sign(ca.key, hashes.SHA256())
    )
    return Identity(cert, key)


def test_import_stores_private_files_and_show_reports_topic(tmp_path):
    ca = make_ca()
    topic = new_mdm_topic()
    home = tmp_path / "home"
    result = _run(home, "push-cert", "import", str(_pem(issue_push_cert(ca, topic), tmp_path)))
    assert result.exit_code == 0, result.output
    assert topic in result.output and "days left" in result.output
    for name in ("push.pem", "push.key"):
        assert stat.S_IMODE(os.stat(home / name).st_mode) == 0o600
    assert b"PRIVATE KEY" in (home / "push.key").read_bytes()
    assert b"PRIVATE KEY" not in (home / "push.pem").read_bytes()
    shown = _run(home, "push-cert", "show")
    assert shown.exit_code == 0, shown.output
    assert topic in shown.output


def test_pkcs12_import_with_password(tmp_path):
    ca = make_ca()
    push = issue_push_cert(ca, new_mdm_topic())
    data = pkcs12.serialize_key_and_certificates(
        b"push", push.key, push.cert, None, serialization.BestAvailableEncryption(b"pw")
    )
    p12 = tmp_path / "push.p12"
    p12.write_bytes(data)
    home = tmp_path / "home"
    assert _run(home, "push-cert", "import", str(p12)).exit_code != 0  # no password
    result = _run(home, "push-cert", "import", str(p12), "--password", "pw")
    assert result.exit_code == 0, result.output


def test_renewal_with_another_topic_is_refused_unless_forced(tmp_path):
    ca = make_ca()
    home = tmp_path / "home"
    first, second = issue_push_cert(ca, new_mdm_topic()), issue_push_cert(ca, new_mdm_topic())
    assert _run(home, "push-cert", "import", str(_pem(first, tmp_path, "a.pem"))).exit_code == 0
    refused = _run(home, "push-cert", "import", str(_pem(second, tmp_path, "b.pem")))
    assert refused.exit_code != 0
    assert "topic" in refused.output
    assert (home / "push.pem").read_bytes() == first.cert_pem
    forced = _run(home, "push-cert", "import", str(_pem(second, tmp_path, "b.pem")), "--force")
    assert forced.exit_code == 0, forced.output
    assert (home / "push.pem").read_bytes() == second.cert_pem


def test_expiring_certificate_is_warned_about(tmp_path, caplog):
    ca = make_ca()
    home = tmp_path / "home"
    soon = _short_lived(ca, new_mdm_topic(), days=10)
    result = _run(home, "push-cert", "import", str(_pem(soon, tmp_path)))
    assert result.exit_code == 0, result.output
    assert "warning: the push certificate expires in" in result.output


def test_csr_and_vendor_signed_request(tmp_path):
    vendor_ca = make_ca("Fake Apple WWDR")
    vendor = issue_push_cert(vendor_ca, new_mdm_topic())  # any RSA/EC pair; RSA needed below
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "MDM Vendor")]))
        .issuer_name(vendor.cert.issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=30))
        .sign(vendor_ca.key, hashes.SHA256())
    )
    (tmp_path / "vendor.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "vendor.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    (tmp_path / "chain.pem").write_bytes(vendor_ca.cert_pem)
    out = tmp_path / "out"
    result = _run(
        tmp_path / "home",
        "push-cert",
        "csr",
        "--out",
        str(out),
        "--vendor-cert",
        str(tmp_path / "vendor.pem"),
        "--vendor-key",
        str(tmp_path / "vendor.key"),
        "--vendor-chain",
        str(tmp_path / "chain.pem"),
    )
    assert result.exit_code == 0, result.output
    assert stat.S_IMODE(os.stat(tmp_path / "home" / "push-request.key").st_mode) == 0o600
    assert not (out / "push-request.key").exists()
    csr = verify_vendor_request((out / "push-request.b64").read_bytes())
    assert csr.public_bytes(serialization.Encoding.PEM) == (out / "push-request.csr").read_bytes()
    plist = plistlib.loads(base64.b64decode((out / "push-request.b64").read_bytes()))
    assert set(plist) == {"PushCertRequestCSR", "PushCertCertificateChain", "PushCertSignature"}


def test_worker_needs_redis(tmp_path):
    result = _run(tmp_path, "worker")
    assert result.exit_code != 0
    assert "MDM_REDIS_URL" in result.output


@pytest.fixture
def app_with_cert(tmp_path: Path, database_url: str, pki: Any) -> Any:
    """An app with NO configured push topics: only the installed certificate's topic."""
    from mdmserver.app import create_app
    from mdmserver.config import load_config
    from mdmserver.testing.pki import TEST_TOPIC

    home = tmp_path / "instance"
    ca = make_ca()
    assert _run(home, "push-cert", "import", str(_pem(issue_push_cert(ca, TEST_TOPIC), tmp_path)))
    config = load_config(
        environ={},
        overrides={
            "home": home,
            "database_url": database_url,
            "ca_cert_file": str(pki.ca_file),
            "auto_migrate": True,
            "log_level": "WARNING",
        },
    )
    app = create_app(config)
    yield app
    runtime(app).close()


def test_installed_topic_is_accepted_and_push_api_works(app_with_cert, pki):
    import requests

    rt = runtime(app_with_cert)
    assert rt.config.push_topics == (pki.device().topic,)
    key = rt.admin.api_keys.create("push-test", actor="test").key
    device = pki.device()
    with serve(app_with_cert) as base:
        assert send(base, device.authenticate()).status_code == 200
        assert send(base, device.token_update()).status_code == 200
        url = f"{base}/api/v1/devices/{device.udid}/push"
        assert requests.post(url, timeout=10).status_code == 401
        assert (
            requests.post(url, headers={"Authorization": "Bearer nope"}, timeout=10).status_code
            == 401
        )
        auth = {"Authorization": f"Bearer {key}"}
        reply = requests.post(url, headers=auth, timeout=10)
        assert reply.status_code == 202, reply.text
        assert reply.json() == {"device_id": device.udid, "enrollments": [device.udid]}
        missing = requests.post(f"{base}/api/v1/devices/NOPE/push", headers=auth, timeout=10)
        assert missing.status_code == 404
        status = requests.get(f"{base}/api/v1/push/status", headers=auth, timeout=10)
        assert status.status_code == 200
        assert status.json()["backend"] == "inprocess"


def test_metrics_show_the_push_certificate_days_left(app_with_cert):
    """An admin's alert rule watches this: an expired push certificate strands every device."""
    text = app_with_cert.test_client().get("/metrics").get_data(as_text=True)
    [line] = [row for row in text.splitlines() if row.startswith("mdm_push_certificate_days_left")]
    days = float(line.split()[-1])
    cert = x509.load_pem_x509_certificate(
        (runtime(app_with_cert).config.home / "push.pem").read_bytes()
    )
    expected = (cert.not_valid_after_utc - dt.datetime.now(dt.UTC)).total_seconds() / 86400
    assert abs(days - expected) < 0.1
