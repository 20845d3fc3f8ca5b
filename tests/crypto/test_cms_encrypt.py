"""CMS EnvelopedData for encrypted profiles, checked both ways against the openssl command line:
what the server encrypts to a device opens with the device's key, and the reverse."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from mdmserver.crypto.ca import PrivateKey, dump_cert_pem, dump_key_pem
from mdmserver.crypto.cms_encrypt import UnsupportedRecipient, decrypt, encrypt_to

Identity = tuple[x509.Certificate, PrivateKey]
SECRET = b"<plist><array><dict><key>Password</key><string>hunter2</string></dict></array></plist>"


def _files(tmp_path: Path, identity: Identity) -> tuple[Path, Path]:
    cert, key = identity
    (tmp_path / "cert.pem").write_bytes(dump_cert_pem(cert))
    (tmp_path / "key.pem").write_bytes(dump_key_pem(key))
    return tmp_path / "cert.pem", tmp_path / "key.pem"


def test_openssl_decrypts_what_is_encrypted_to_a_device(
    device_rsa: Identity, tmp_path: Path
) -> None:
    cert_pem, key_pem = _files(tmp_path, device_rsa)
    (tmp_path / "env.der").write_bytes(encrypt_to(SECRET, device_rsa[0]))
    result = subprocess.run(
        ["openssl", "cms", "-decrypt", "-binary", "-inform", "DER", "-in", tmp_path / "env.der",
         "-recip", cert_pem, "-inkey", key_pem],
        capture_output=True,
        check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout == SECRET


def test_decrypts_what_openssl_encrypts_and_refuses_another_key(
    device_rsa: Identity, ca: Identity, tmp_path: Path
) -> None:
    cert_pem, _ = _files(tmp_path, device_rsa)
    (tmp_path / "secret").write_bytes(SECRET)
    subprocess.run(
        ["openssl", "cms", "-encrypt", "-binary", "-aes-128-cbc", "-outform", "DER",
         "-in", tmp_path / "secret", "-out", tmp_path / "env.der", cert_pem],
        capture_output=True,
        check=True,
    )  # fmt: skip
    cert, key = device_rsa
    assert isinstance(key, rsa.RSAPrivateKey)
    envelope = (tmp_path / "env.der").read_bytes()
    assert decrypt(envelope, cert, key) == SECRET
    other_key = ca[1]
    assert isinstance(other_key, rsa.RSAPrivateKey)
    with pytest.raises(ValueError, match="not encrypted to this certificate"):
        decrypt(envelope, ca[0], other_key)


def test_an_ec_certificate_cannot_be_encrypted_to(device_ec: Identity) -> None:
    with pytest.raises(UnsupportedRecipient, match="only RSA"):
        encrypt_to(SECRET, device_ec[0])
