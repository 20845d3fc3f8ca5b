"""Apple's device identity chain: attached SHA-1 CMS and the chain decision (expired Apple CAs
accepted, the device certificate itself must be a valid leaf), cross-checked with openssl."""

from __future__ import annotations

import plistlib
import subprocess
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from mdmserver.crypto.apple_chain import AppleDeviceCAs
from mdmserver.crypto.cms_sign import sign_attached, sign_detached
from mdmserver.crypto.cms_verify import verify_attached
from mdmserver.crypto.errors import SignatureError, UntrustedCertificate
from mdmserver.testing.apple_device_pki import AppleDevicePki


@pytest.fixture(scope="module")
def apple() -> AppleDevicePki:
    return AppleDevicePki.create()


def test_the_synthetic_chain_is_shaped_like_apples(apple):
    cert, _ = apple.device_identity("UDID-1")
    now = datetime.now(UTC)
    assert isinstance(cert.public_key(), rsa.RSAPublicKey) and cert.public_key().key_size == 1024
    for each in (cert, *apple.intermediates, apple.root):
        assert each.signature_hash_algorithm.name == "sha1"
    assert all(ca.not_valid_after_utc < now for ca in apple.intermediates)


def test_attached_sha1_signature_verifies_and_returns_its_chain(apple):
    identity = apple.device_identity("UDID-2")
    body = apple.sign_attributes({"UDID": "UDID-2", "CHALLENGE": "c"}, identity)
    signed = verify_attached(body)
    assert plistlib.loads(signed.content) == {"UDID": "UDID-2", "CHALLENGE": "c"}
    assert signed.signer == identity[0]
    assert set(signed.certificates) == set(apple.intermediates)
    chain = AppleDeviceCAs([apple.root]).verify(signed.signer, signed.certificates)
    assert chain == [identity[0], apple.device_ca, apple.certification_authority, apple.root]


def test_openssl_reads_the_attached_signature(apple, tmp_path):
    """A second implementation agrees the bytes are a valid CMS SignedData (signature only:
    OpenSSL's default security level refuses the SHA-1 chain itself)."""
    body = apple.sign_attributes({"UDID": "UDID-3"}, apple.device_identity("UDID-3"))
    path = tmp_path / "attributes.p7s"
    path.write_bytes(body)
    out = subprocess.run(
        ["openssl", "cms", "-verify", "-noverify", "-inform", "DER", "-in", str(path)],
        capture_output=True,
        check=False,
    )
    assert out.returncode == 0, out.stderr.decode()
    assert plistlib.loads(out.stdout) == {"UDID": "UDID-3"}


def test_a_detached_or_altered_signature_is_refused(apple):
    cert, key = apple.device_identity("UDID-4")
    with pytest.raises(SignatureError, match="detached"):
        verify_attached(sign_detached(b"content", cert, key, digest="sha1"))
    body = sign_attached(b"content!", cert, key, digest="sha1")
    altered = body.replace(b"content!", b"CONTENT!")
    with pytest.raises(SignatureError, match="messageDigest"):
        verify_attached(altered)


def test_chain_decisions(apple):
    cas = AppleDeviceCAs([apple.root])
    leaf, _ = apple.device_identity("UDID-5")
    with pytest.raises(UntrustedCertificate, match="no issuer found"):
        cas.verify(leaf)  # a Mac's lone certificate needs the intermediates configured
    AppleDeviceCAs([apple.root, *apple.intermediates]).verify(leaf)
    expired, _ = apple.device_identity("UDID-6", not_after=datetime.now(UTC) - timedelta(days=1))
    with pytest.raises(UntrustedCertificate, match="not valid now"):
        cas.verify(expired, apple.intermediates)
    with pytest.raises(UntrustedCertificate, match="is a CA"):
        cas.verify(apple.device_ca, [apple.certification_authority])
    other = AppleDevicePki.create()
    foreign, _ = other.device_identity("UDID-7")
    with pytest.raises(UntrustedCertificate, match="does not chain"):
        cas.verify(foreign, other.intermediates)
    # Another device CA's intermediates sent alongside do not help a foreign leaf either.
    with pytest.raises(UntrustedCertificate):
        cas.verify(foreign, [*apple.intermediates, *other.intermediates])


def test_an_issuer_that_is_not_a_ca_breaks_the_chain(apple):
    """A device certificate cannot act as an intermediate for another one."""
    from mdmserver.testing.apple_device_pki import sha1_certificate

    first, first_key = apple.device_identity("UDID-8")
    now = datetime.now(UTC)
    child_key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    child = sha1_certificate(
        x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "UDID-9")]),
        first.subject,
        child_key.public_key(),
        first_key,
        not_before=now - timedelta(days=1),
        not_after=now + timedelta(days=1),
        is_ca=False,
    )
    with pytest.raises(UntrustedCertificate, match="not a CA"):
        AppleDeviceCAs([apple.root]).verify(child, [first, *apple.intermediates])
