"""Push certificate onboarding as a new user does it: ``push-cert csr`` keeps the key in the
instance and says what comes next; Apple's certificate-only PEM is paired with that key; a
renewal keeps the topic and says so; expiry is warned about at 30 and at 7 days (CLI,
/metrics, log)."""

from __future__ import annotations

import datetime as dt
import logging
import os
import stat
import uuid
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID

from mdmserver.cli import main
from mdmserver.testing.apns_pki import Identity, issue_push_cert, make_ca, new_mdm_topic
from mdmserver.web.runtime import runtime


def _run(home: Path, *args: str) -> Any:
    return CliRunner().invoke(main, list(args), env={"MDM_HOME": str(home)})


def _instance(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    home.mkdir(parents=True)
    (home / "config.toml").write_text("")
    return home


def _apple_signs(csr_path: Path, ca: Identity, topic: str, days: int = 365) -> bytes:
    """What Apple's portal hands back for the CSR: the certificate alone, as PEM."""
    csr = x509.load_pem_x509_csr(csr_path.read_bytes())
    now = dt.datetime.now(dt.UTC)
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.USER_ID, topic),
            x509.NameAttribute(NameOID.COMMON_NAME, f"APSP:{uuid.uuid4()}"),
        ]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(ca.cert.subject)
        .public_key(csr.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .sign(ca.key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM)


def test_csr_then_apples_certificate_only_pem_then_renewal(tmp_path):
    home, ca, topic = _instance(tmp_path), make_ca(), new_mdm_topic()
    out = tmp_path / "out"
    made = _run(home, "push-cert", "csr", "--out", str(out))
    assert made.exit_code == 0, made.output
    key = home / "push-request.key"
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600 and not (out / "push-request.key").exists()
    for step in ("MDM vendor", "Push Certificates Portal", "Renew", "push-cert import"):
        assert step in made.output
    issued = tmp_path / "MDM_ Push.pem"
    issued.write_bytes(_apple_signs(out / "push-request.csr", ca, topic))
    assert b"PRIVATE KEY" not in issued.read_bytes()
    request_key = key.read_bytes()
    imported = _run(home, "push-cert", "import", str(issued))
    assert imported.exit_code == 0, imported.output
    assert topic in imported.output
    assert (home / "push.key").read_bytes() == request_key
    assert not key.exists(), "the request key became push.key"
    shown = _run(home, "push-cert", "show")
    assert shown.exit_code == 0 and topic in shown.output

    # A year later: a new CSR, renewed in the portal for the same topic.
    assert _run(home, "push-cert", "csr", "--out", str(out)).exit_code == 0
    renewed_key = key.read_bytes()
    renewal = tmp_path / "renewed.pem"
    renewal.write_bytes(_apple_signs(out / "push-request.csr", ca, topic, days=730))
    renewed = _run(home, "push-cert", "import", str(renewal))
    assert renewed.exit_code == 0, renewed.output
    assert f"renewal: the topic {topic} is unchanged" in renewed.output
    assert (home / "push.key").read_bytes() == renewed_key


def test_a_certificate_only_pem_without_its_key_says_what_to_do(tmp_path):
    home = _instance(tmp_path)
    alone = tmp_path / "alone.pem"
    alone.write_bytes(issue_push_cert(make_ca()).cert_pem)
    refused = _run(home, "push-cert", "import", str(alone))
    assert refused.exit_code == 1
    assert "push-cert csr" in refused.output and not (home / "push.pem").exists()
    # A key made for another request is not taken for it either.
    assert _run(home, "push-cert", "csr", "--out", str(tmp_path)).exit_code == 0
    other = _run(home, "push-cert", "import", str(alone))
    assert other.exit_code == 1 and "belongs to none of the keys" in other.output


def _install_expiring(tmp_path: Path, days: int) -> Path:
    home = _instance(tmp_path)
    soon = issue_push_cert(
        make_ca(),
        not_before=dt.datetime.now(dt.UTC) - dt.timedelta(days=365 - days, hours=-1),
        days=365,
    )
    pem = tmp_path / "soon.pem"
    pem.write_bytes(soon.cert_pem + soon.key_pem)
    assert _run(home, "push-cert", "import", str(pem)).exit_code == 0
    return home


def test_show_warns_30_days_before_expiry_and_urgently_at_7(tmp_path):
    month = _run(_install_expiring(tmp_path / "a", 20), "push-cert", "show")
    assert "warning: the push certificate expires in 20 days" in month.output
    week = _run(_install_expiring(tmp_path / "b", 5), "push-cert", "show")
    assert "URGENT: the push certificate expires in 5 days" in week.output
    fine = _run(_install_expiring(tmp_path / "c", 100), "push-cert", "show")
    assert "expires in" not in fine.output and "100 days left" in fine.output


def test_metrics_and_log_warn_before_expiry(tmp_path, database_url, caplog):
    from mdmserver.app import create_app
    from mdmserver.config import load_config

    home = _install_expiring(tmp_path, 5)
    config = load_config(
        environ={},
        overrides={"home": home, "database_url": database_url, "auto_migrate": True},
    )
    with caplog.at_level(logging.WARNING, logger="mdmserver"):
        app = create_app(config)
    try:
        [record] = [r for r in caplog.records if r.getMessage() == "push_certificate_expiring"]
        assert record.levelno == logging.ERROR
        text = app.test_client().get("/metrics").get_data(as_text=True)
        assert 'mdm_push_certificate_expiring{within_days="30"} 1' in text
        assert 'mdm_push_certificate_expiring{within_days="7"} 1' in text
    finally:
        runtime(app).close()
