"""CMS signing, checked by an independent implementation: the openssl command line."""

from __future__ import annotations

import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from mdmserver.crypto.ca import (
    PrivateKey,
    create_ca,
    dump_cert_pem,
    generate_key,
    issue_certificate,
)
from mdmserver.crypto.cms_sign import sign_detached, sign_profile

Identity = tuple[x509.Certificate, PrivateKey]
PROFILE = b'<?xml version="1.0"?>\n<plist version="1.0"><dict><key>PayloadType</key>\n' + (
    b"<string>Configuration</string></dict></plist>\n"
)


def _openssl(*args: str | Path) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["openssl", *map(str, args)], capture_output=True, check=False)


def test_signed_profile_verifies_with_openssl_through_its_chain(tmp_path: Path) -> None:
    root = create_ca("profile root", key_type="ec")
    key = generate_key("rsa")
    intermediate = issue_certificate(
        root[0], root[1], key.public_key(), x509.Name(
            [x509.NameAttribute(NameOID.COMMON_NAME, "profile intermediate")]
        ), lifetime=timedelta(days=30), is_ca=True,
    )  # fmt: skip
    signer_key = generate_key("ec")
    signer = issue_certificate(
        intermediate, key, signer_key.public_key(),
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "profile signer")]),
        lifetime=timedelta(days=30), code_signing=True,
    )  # fmt: skip
    (tmp_path / "ca.pem").write_bytes(dump_cert_pem(root[0]))
    (tmp_path / "signed.mobileconfig").write_bytes(
        sign_profile(PROFILE, signer, signer_key, chain=[intermediate])
    )
    result = _openssl(
        "cms", "-verify", "-inform", "DER", "-in", tmp_path / "signed.mobileconfig",
        "-CAfile", tmp_path / "ca.pem", "-purpose", "any", "-out", tmp_path / "content",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr.decode()
    assert (tmp_path / "content").read_bytes() == PROFILE  # line endings untouched

    (tmp_path / "signed.mobileconfig").write_bytes(sign_profile(PROFILE, signer, signer_key))
    without_chain = _openssl(
        "cms", "-verify", "-inform", "DER", "-in", tmp_path / "signed.mobileconfig",
        "-CAfile", tmp_path / "ca.pem", "-purpose", "any", "-out", tmp_path / "content",
    )  # fmt: skip
    assert without_chain.returncode != 0


@pytest.mark.parametrize("digest", ["sha1", "sha512"])
@pytest.mark.parametrize("attributes", [True, False], ids=["attrs", "no-attrs"])
def test_detached_signature_verifies_with_openssl(
    device: Identity, ca: Identity, tmp_path: Path, digest: str, attributes: bool
) -> None:
    cert, key = device
    body = b"device request body\r\nwith CRLF and \x00 bytes"
    (tmp_path / "body").write_bytes(body)
    (tmp_path / "ca.pem").write_bytes(dump_cert_pem(ca[0]))
    (tmp_path / "sig.der").write_bytes(
        sign_detached(body, cert, key, signed_attributes=attributes, digest=digest)
    )
    args = ["cms", "-verify", "-binary", "-inform", "DER", "-in", tmp_path / "sig.der",
            "-CAfile", tmp_path / "ca.pem", "-purpose", "any", "-out", "/dev/null"]  # fmt: skip
    good = _openssl(*args, "-content", tmp_path / "body")
    assert good.returncode == 0, good.stderr.decode()
    (tmp_path / "other").write_bytes(body + b".")
    assert _openssl(*args, "-content", tmp_path / "other").returncode != 0


def test_unknown_digest_is_refused(device_rsa: Identity) -> None:
    with pytest.raises(ValueError, match="unsupported digest 'md5'"):
        sign_detached(b"x", device_rsa[0], device_rsa[1], digest="md5")
