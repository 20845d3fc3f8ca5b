"""Fixtures for profiles: a real signer in the instance folder, values for every template, and
custom .mobileconfig files (valid, and INVALID ones) that the profile and OpenAPI tests upload."""

from __future__ import annotations

import base64
import plistlib
import subprocess
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import BestAvailableEncryption, pkcs12
from cryptography.x509.oid import NameOID

from mdmserver.crypto.ca import dump_cert_pem, dump_key_pem, generate_key, issue_certificate
from mdmserver.testing.pki import Pki

PASSCODE = "com.apple.mobiledevice.passwordpolicy"
# (payload, the key path the refusal names, a word of its message): uploads refused with 422.
INVALID: list[tuple[dict[str, Any], str, str]] = [
    ({"PayloadType": "com.example.nothing"}, "PayloadContent[0].PayloadType", "unknown"),
    ({"PayloadType": PASSCODE, "minLength": "8"}, "PayloadContent[0].minLength", "expected"),
    ({"PayloadType": PASSCODE, "minLength": 99}, "PayloadContent[0].minLength", "maximum"),
    (
        {"PayloadType": "com.apple.webClip.managed", "Label": "x"},
        "PayloadContent[0].URL",
        "missing",
    ),
    ({"PayloadType": "com.apple.mdm"}, "PayloadContent[0].PayloadType", "enrollment"),
]


def mobileconfig(*payloads: dict[str, Any]) -> bytes:
    """An unsigned custom profile (identifier com.example.custom) carrying these payloads."""
    return plistlib.dumps(
        {
            "PayloadIdentifier": "com.example.custom",
            "PayloadUUID": "11111111-2222-3333-4444-555555555555",
            "PayloadType": "Configuration",
            "PayloadVersion": 1,
            "PayloadDisplayName": "Custom",
            "PayloadContent": [
                {
                    "PayloadIdentifier": f"com.example.custom.{i}",
                    "PayloadUUID": f"00000000-0000-0000-0000-00000000000{i}",
                    "PayloadVersion": 1,
                    **p,
                }
                for i, p in enumerate(payloads)
            ],
        }
    )


def write_signer(home: Path, pki: Pki) -> Path:
    """signing.pem (leaf, then the CA) and signing.key, as `mdmserver init` writes them."""
    key = generate_key("rsa")
    cert = issue_certificate(
        pki.ca_cert,
        pki.ca_key,
        key.public_key(),
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "profile signing (test)")]),
        lifetime=timedelta(days=30),
    )
    home.mkdir(parents=True, exist_ok=True)
    (home / "signing.pem").write_bytes(dump_cert_pem(cert) + dump_cert_pem(pki.ca_cert))
    (home / "signing.key").write_bytes(dump_key_pem(key))
    return home


def openssl(*args: str, data: bytes | None = None) -> bytes:
    """Run the openssl CLI; fail the test with its stderr when it refuses."""
    done = subprocess.run(["openssl", *args], input=data, capture_output=True, check=False)
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout


def openssl_verify(signed: bytes, ca_file: Path) -> bytes:
    """The content of a DER SignedData, after openssl verified it against the CA."""
    return openssl("cms", "-verify", "-inform", "DER", "-CAfile", str(ca_file), data=signed)


@pytest.fixture
def signer_home(tmp_path: Path, pki: Pki) -> Path:
    return write_signer(tmp_path / "signer", pki)


@pytest.fixture(scope="session")
def template_values(pki: Pki) -> dict[str, dict[str, Any]]:
    """Values that fill every required variable of every shipped template."""
    cert, key = pki.identity("wifi client")
    p12 = pkcs12.serialize_key_and_certificates(
        b"wifi", key, cert, [pki.ca_cert], BestAvailableEncryption(b"p12-secret")
    )
    ca_pem = dump_cert_pem(pki.ca_cert).decode()
    return {
        "filevault": {"escrow_certificate": ca_pem},
        "wifi-eap-tls": {
            "ssid": "Corp",
            "radius_ca_certificate": ca_pem,
            "radius_server_names": ["radius.example.com"],
            "identity_p12": base64.b64encode(p12).decode(),
            "identity_password": "p12-secret",
        },
        "root-cert": {"certificate": ca_pem},
        "access-identity": {"scep_url": "https://mdm.example.test/scep"},
    }
