"""Push certificate lifecycle: loading, topic, expiry, renewal refusal, CSR, vendor request."""

from __future__ import annotations

import base64
import datetime as dt
import plistlib

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from mdmserver.push.cert import (
    PushCertificateError,
    TopicChangeError,
    check_renewal,
    create_push_csr,
    load_push_certificate,
    vendor_sign_request,
    verify_vendor_request,
)
from mdmserver.testing.apns_pki import Identity, issue_push_cert, new_mdm_topic

UTC = dt.UTC


def self_signed(
    subject: x509.Name, key: rsa.RSAPrivateKey, *, ca: bool = False
) -> x509.Certificate:
    now = dt.datetime.now(UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )


def pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def test_loads_pem_and_reads_topic_and_expiry(push_identity: Identity, topic: str) -> None:
    loaded = load_push_certificate(push_identity.cert_pem + push_identity.key_pem)
    assert loaded.topic == topic
    assert loaded.not_after == push_identity.cert.not_valid_after_utc
    now = loaded.not_after - dt.timedelta(days=10, hours=1)
    assert loaded.days_left(now) == 10
    assert loaded.days_left(loaded.not_after + dt.timedelta(days=2)) == -2
    assert load_push_certificate(loaded.cert_pem + loaded.key_pem).topic == topic


def test_loads_pem_with_chain_and_encrypted_key(
    apple_ca: Identity, push_identity: Identity
) -> None:
    encrypted = push_identity.key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret"),
    )
    blob = apple_ca.cert_pem + push_identity.cert_pem + encrypted
    assert load_push_certificate(blob, b"secret").cert == push_identity.cert
    with pytest.raises(PushCertificateError, match="password"):
        load_push_certificate(blob, b"wrong")


def test_loads_pkcs12(push_identity: Identity, topic: str) -> None:
    p12 = pkcs12.serialize_key_and_certificates(
        b"push",
        push_identity.key,  # type: ignore[arg-type]
        push_identity.cert,
        None,
        serialization.BestAvailableEncryption(b"pw"),
    )
    assert load_push_certificate(p12, b"pw").topic == topic
    with pytest.raises(PushCertificateError, match="PKCS#12"):
        load_push_certificate(p12, b"nope")


def test_rejects_unusable_input(apple_ca: Identity, push_identity: Identity) -> None:
    other_key = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    not_mdm = issue_push_cert(apple_ca, "com.example.app", key=push_identity.key)  # type: ignore[arg-type]
    no_uid_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    no_uid = self_signed(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "x")]), no_uid_key)
    no_uid_key_pem = no_uid_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    cases = [
        (b"", "non-empty"),
        ("text", "non-empty"),
        (b"garbage", "PKCS#12"),
        (push_identity.cert_pem, "no push certificate key"),
        (push_identity.cert_pem + other_key, "does not belong"),
        (not_mdm.cert_pem + not_mdm.key_pem, "not an MDM push topic"),
        (pem(no_uid) + no_uid_key_pem, "no UID"),
    ]
    for data, message in cases:
        with pytest.raises(PushCertificateError, match=message):
            load_push_certificate(data)  # type: ignore[arg-type]


def test_renewal_refuses_topic_change_unless_forced(
    apple_ca: Identity, push_identity: Identity, topic: str
) -> None:
    current = load_push_certificate(push_identity.cert_pem + push_identity.key_pem)
    same = issue_push_cert(apple_ca, topic)
    other = issue_push_cert(apple_ca, new_mdm_topic())
    renewed = load_push_certificate(same.cert_pem + same.key_pem)
    foreign = load_push_certificate(other.cert_pem + other.key_pem)
    check_renewal(current, renewed, force=False)
    with pytest.raises(TopicChangeError, match="re-enroll"):
        check_renewal(current, foreign, force=False)
    check_renewal(current, foreign, force=True)
    expired = issue_push_cert(
        apple_ca, topic, not_before=dt.datetime.now(UTC) - dt.timedelta(days=400), days=365
    )
    with pytest.raises(PushCertificateError, match="expired"):
        check_renewal(
            current, load_push_certificate(expired.cert_pem + expired.key_pem), force=True
        )


def test_create_push_csr() -> None:
    key_pem, csr_pem = create_push_csr("Example Corp MDM")
    csr = x509.load_pem_x509_csr(csr_pem)
    key = serialization.load_pem_private_key(key_pem, None)
    assert csr.is_signature_valid
    assert csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "Example Corp MDM"
    assert isinstance(key, rsa.RSAPrivateKey) and key.key_size == 2048
    assert csr.public_key().public_numbers() == key.public_key().public_numbers()
    with pytest.raises(PushCertificateError):
        create_push_csr("  ")


@pytest.fixture(scope="module")
def vendor() -> tuple[bytes, bytes, bytes, rsa.RSAPrivateKey]:
    """A fake Apple WWDR intermediate + root chain and an MDM vendor certificate and key."""
    root_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    root = self_signed(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Fake Root")]), root_key, ca=True
    )
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "MDM Vendor: Example")])
    cert = self_signed(name, key)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    return pem(cert), key_pem, pem(root), key


def test_vendor_request_is_a_base64_plist_apple_can_verify(
    vendor: tuple[bytes, bytes, bytes, rsa.RSAPrivateKey],
) -> None:
    vendor_cert, vendor_key, chain, key = vendor
    _, csr_pem = create_push_csr("Example Corp MDM")
    encoded = vendor_sign_request(csr_pem, vendor_cert, vendor_key, chain)
    request = plistlib.loads(base64.b64decode(encoded, validate=True))
    assert set(request) == {"PushCertRequestCSR", "PushCertCertificateChain", "PushCertSignature"}
    csr_der = x509.load_pem_x509_csr(csr_pem).public_bytes(serialization.Encoding.DER)
    assert base64.b64decode(request["PushCertRequestCSR"]) == csr_der
    assert request["PushCertCertificateChain"].encode() == vendor_cert + chain
    key.public_key().verify(
        base64.b64decode(request["PushCertSignature"]),
        csr_der,
        padding.PKCS1v15(),
        hashes.SHA256(),
    )
    assert verify_vendor_request(encoded).public_bytes(serialization.Encoding.DER) == csr_der


def test_vendor_request_rejects_bad_input(
    vendor: tuple[bytes, bytes, bytes, rsa.RSAPrivateKey], push_identity: Identity
) -> None:
    vendor_cert, vendor_key, chain, _ = vendor
    _, csr_pem = create_push_csr("Example Corp MDM")
    ec_key = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    cases = [
        ((b"not a csr", vendor_cert, vendor_key, chain), "CSR"),
        ((csr_pem, b"nope", vendor_key, chain), "vendor certificate"),
        ((csr_pem, vendor_cert, b"nope", chain), "vendor key"),
        ((csr_pem, vendor_cert, ec_key, chain), "RSA"),
        ((csr_pem, vendor_cert, push_identity.key_pem, chain), "does not belong"),
        ((csr_pem, vendor_cert, vendor_key, b""), "chain"),
    ]
    for args, message in cases:
        with pytest.raises(PushCertificateError, match=message):
            vendor_sign_request(*args)
    with pytest.raises(PushCertificateError):
        verify_vendor_request(b"!!!")


def test_vendor_request_tampering_is_detected(
    vendor: tuple[bytes, bytes, bytes, rsa.RSAPrivateKey],
) -> None:
    vendor_cert, vendor_key, chain, _ = vendor
    _, csr_pem = create_push_csr("Example Corp MDM")
    _, other_csr_pem = create_push_csr("Someone Else")
    request = plistlib.loads(
        base64.b64decode(vendor_sign_request(csr_pem, vendor_cert, vendor_key, chain))
    )
    other_der = x509.load_pem_x509_csr(other_csr_pem).public_bytes(serialization.Encoding.DER)
    request["PushCertRequestCSR"] = base64.b64encode(other_der).decode()
    with pytest.raises(PushCertificateError, match="does not verify"):
        verify_vendor_request(base64.b64encode(plistlib.dumps(request)))
