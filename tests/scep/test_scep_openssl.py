"""Cross-checks with the openssl CLI, so client and server cannot share one CMS mistake."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from asn1crypto import core
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs7

from mdmserver.scep.errors import FailInfo
from mdmserver.scep.message import (
    build_cert_rep_failure,
    build_cert_rep_success,
    parse_pki_message,
)
from mdmserver.scep.signed import (
    OID_MESSAGE_TYPE,
    OID_SENDER_NONCE,
    OID_TRANSACTION_ID,
    attribute,
    sign,
)
from mdmserver.testing.scep_client import build_pkcs_req, make_csr

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="no openssl CLI")


def _openssl(*args: str | Path) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["openssl", *map(str, args)], capture_output=True, check=False)


def _write_identity(tmp_path: Path, name: str, identity) -> tuple[Path, Path]:
    cert = tmp_path / f"{name}.pem"
    key = tmp_path / f"{name}.key"
    cert.write_bytes(identity.cert.public_bytes(serialization.Encoding.PEM))
    key.write_bytes(
        identity.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert, key


@pytest.mark.parametrize("encryption", ["aes128", "aes256", "des3"])
def test_openssl_verifies_and_decrypts_cert_rep(tmp_path, ca, device, issue, encryption) -> None:
    csr = make_csr(device.key, "device-1", "pw")
    body, _, _ = build_pkcs_req(csr, device.cert, device.key, ca.cert, encryption=encryption)
    req = parse_pki_message(body, ca.cert, ca.key)
    issued = issue(req.csr)
    (tmp_path / "rep.der").write_bytes(build_cert_rep_success(req, issued, ca.cert, ca.key))
    device_pem, device_key = _write_identity(tmp_path, "device", device)

    verified = _openssl(
        "cms", "-verify", "-inform", "DER", "-noverify",
        "-in", tmp_path / "rep.der", "-out", tmp_path / "env.der",
    )  # fmt: skip
    assert verified.returncode == 0, verified.stderr
    decrypted = _openssl(
        "cms", "-decrypt", "-inform", "DER", "-in", tmp_path / "env.der",
        "-recip", device_pem, "-inkey", device_key, "-out", tmp_path / "bundle.der",
    )  # fmt: skip
    assert decrypted.returncode == 0, decrypted.stderr
    certs = pkcs7.load_der_pkcs7_certificates((tmp_path / "bundle.der").read_bytes())
    assert certs == [issued]


def test_openssl_verifies_failure_cert_rep_over_empty_content(tmp_path, ca, device) -> None:
    csr = make_csr(device.key, "device-1", "pw")
    body, _, _ = build_pkcs_req(csr, device.cert, device.key, ca.cert)
    req = parse_pki_message(body, ca.cert, ca.key)
    (tmp_path / "fail.der").write_bytes(
        build_cert_rep_failure(req, FailInfo.badRequest, ca.cert, ca.key)
    )
    (tmp_path / "empty").write_bytes(b"")
    verified = _openssl(
        "cms", "-verify", "-inform", "DER", "-noverify", "-binary",
        "-in", tmp_path / "fail.der", "-content", tmp_path / "empty",
    )  # fmt: skip
    assert verified.returncode == 0, verified.stderr


def test_openssl_verifies_and_decrypts_client_request(tmp_path, ca, device) -> None:
    csr = make_csr(device.key, "device-1", "pw")
    body, _, _ = build_pkcs_req(csr, device.cert, device.key, ca.cert, encryption="aes256")
    (tmp_path / "req.der").write_bytes(body)
    ca_pem, ca_key = _write_identity(tmp_path, "ca", ca)

    verified = _openssl(
        "cms", "-verify", "-inform", "DER", "-noverify",
        "-in", tmp_path / "req.der", "-out", tmp_path / "env.der",
    )  # fmt: skip
    assert verified.returncode == 0, verified.stderr
    decrypted = _openssl(
        "cms", "-decrypt", "-inform", "DER", "-in", tmp_path / "env.der",
        "-recip", ca_pem, "-inkey", ca_key, "-out", tmp_path / "csr.der",
    )  # fmt: skip
    assert decrypted.returncode == 0, decrypted.stderr
    assert x509.load_der_x509_csr((tmp_path / "csr.der").read_bytes()) == csr


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (["-aes128"], "aes128"),
        (["-aes192"], "aes192"),
        (["-aes256"], "aes256"),
        (["-des3"], "des3"),
        (["-provider", "legacy", "-provider", "default", "-des"], "des"),
    ],
)
def test_server_decrypts_openssl_envelopes(tmp_path, ca, device, flags, expected) -> None:
    csr = make_csr(device.key, "device-1", "from-openssl")
    (tmp_path / "csr.der").write_bytes(csr.public_bytes(serialization.Encoding.DER))
    ca_pem, _ = _write_identity(tmp_path, "ca", ca)
    made = _openssl(
        "cms", "-encrypt", "-binary", "-outform", "DER", *flags,
        "-in", tmp_path / "csr.der", "-out", tmp_path / "env.der", ca_pem,
    )  # fmt: skip
    if made.returncode != 0 and expected == "des":
        pytest.skip(f"this openssl cannot make single-DES envelopes: {made.stderr[:200]!r}")
    assert made.returncode == 0, made.stderr

    attrs = [
        attribute(OID_MESSAGE_TYPE, core.PrintableString("19")),
        attribute(OID_TRANSACTION_ID, core.PrintableString("OPENSSL-1")),
        attribute(OID_SENDER_NONCE, core.OctetString(b"n" * 16)),
    ]
    body = sign((tmp_path / "env.der").read_bytes(), device.cert, device.key, attrs)
    req = parse_pki_message(body, ca.cert, ca.key)
    assert req.csr == csr
    assert req.challenge == "from-openssl"
    assert req.content_encryption == expected
