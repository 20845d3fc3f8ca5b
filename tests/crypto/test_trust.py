"""TrustStore: device certificates must chain to a configured CA and be in their validity period."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import NameOID

from mdmserver.crypto.ca import PrivateKey, create_ca, generate_key, issue_certificate
from mdmserver.crypto.errors import UntrustedCertificate
from mdmserver.crypto.trust import TrustStore

Identity = tuple[x509.Certificate, PrivateKey]


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _issue(issuer: Identity, common_name: str, *, is_ca: bool = False, days: int = 30) -> Identity:
    key = generate_key("ec")
    cert = issue_certificate(
        issuer[0],
        issuer[1],
        key.public_key(),
        _name(common_name),
        lifetime=timedelta(days=days),
        is_ca=is_ca,
    )
    return cert, key


def _self_signed(common_name: str) -> x509.Certificate:
    key = generate_key("ec")
    now = datetime.now(UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(_name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )


def test_accepts_device_issued_by_the_ca(ca: Identity, device: Identity) -> None:
    store = TrustStore([ca[0]])
    store.verify(device[0])
    store.verify(device[0])  # the cached path answers the same


def test_accepts_device_through_an_intermediate(ca: Identity) -> None:
    intermediate = _issue(ca, "intermediate CA", is_ca=True)
    device = _issue(intermediate, "device behind intermediate")
    store = TrustStore([ca[0]])
    with pytest.raises(UntrustedCertificate, match="not issued by a trusted CA"):
        store.verify(device[0])
    store.verify(device[0], [intermediate[0]])


def test_accepts_device_of_any_configured_ca(ca: Identity, other_ca: Identity) -> None:
    device = _issue(other_ca, "device of the organisation CA")
    TrustStore([ca[0], other_ca[0]]).verify(device[0])


def test_refuses_device_from_another_ca(ca: Identity, other_ca: Identity) -> None:
    device = _issue(other_ca, "foreign device")
    with pytest.raises(UntrustedCertificate, match="CN=foreign device was not issued"):
        TrustStore([ca[0]]).verify(device[0])


def test_refuses_forgery_naming_the_ca_as_issuer(ca: Identity) -> None:
    """Same issuer name as the real CA, different key: the signature check must catch it."""
    fake_ca = create_ca("mdmserver test CA")
    assert fake_ca[0].subject == ca[0].subject
    forged = _issue(fake_ca, "forged device")
    with pytest.raises(UntrustedCertificate, match="not issued by a trusted CA"):
        TrustStore([ca[0]]).verify(forged[0])


def test_refuses_self_signed_unless_configured_as_a_ca(ca: Identity) -> None:
    cert = _self_signed("self-made device")
    with pytest.raises(UntrustedCertificate, match="self-signed and is not a configured CA"):
        TrustStore([ca[0]]).verify(cert)
    TrustStore([ca[0], cert]).verify(cert)


def test_refuses_expired_and_not_yet_valid(ca: Identity) -> None:
    device = _issue(ca, "short-lived device", days=1)
    store = TrustStore([ca[0]])
    store.verify(device[0])  # caches a positive result, which must not outlive the cert
    with pytest.raises(UntrustedCertificate, match="CN=short-lived device expired on"):
        store.verify(device[0], at=datetime.now(UTC) + timedelta(days=2))
    with pytest.raises(UntrustedCertificate, match="is not valid before"):
        store.verify(device[0], at=datetime.now(UTC) - timedelta(days=1))


def test_refuses_chain_through_expired_intermediate(ca: Identity) -> None:
    intermediate = _issue(ca, "brief intermediate", is_ca=True, days=1)
    device = _issue(intermediate, "device under brief intermediate", days=1)
    later = device[0].not_valid_after_utc - timedelta(minutes=1)
    assert later < intermediate[0].not_valid_after_utc  # the device clips to its issuer
    store = TrustStore([ca[0]])
    store.verify(device[0], [intermediate[0]], at=later)
    with pytest.raises(UntrustedCertificate, match="expired"):
        store.verify(device[0], [intermediate[0]], at=later + timedelta(minutes=2))


def test_refuses_leaf_used_as_an_intermediate(ca: Identity) -> None:
    leaf = _issue(ca, "ordinary leaf")
    child = _issue(leaf, "issued by a leaf")
    with pytest.raises(UntrustedCertificate, match="CN=ordinary leaf is not a CA certificate"):
        TrustStore([ca[0]]).verify(child[0], [leaf[0]])


def test_refuses_chains_longer_than_the_limit(ca: Identity) -> None:
    chain = [ca]
    for level in range(5):
        chain.append(_issue(chain[-1], f"intermediate {level}", is_ca=True))
    device = _issue(chain[-1], "deep device")
    intermediates = [cert for cert, _ in chain[1:]]
    TrustStore([ca[0]], max_chain_length=6).verify(device[0], intermediates)
    with pytest.raises(UntrustedCertificate, match="longer than 4"):
        TrustStore([ca[0]], max_chain_length=4).verify(device[0], intermediates)


def test_needs_at_least_one_ca() -> None:
    with pytest.raises(ValueError, match="at least one CA"):
        TrustStore([])


# Device identities (issue 12 item 4) ------------------------------------------------------------


def _leaf(issuer: Identity, **usages: bool) -> x509.Certificate:
    key = generate_key("ec")
    return issue_certificate(
        issuer[0], issuer[1], key.public_key(), _name("leaf"), lifetime=timedelta(days=1), **usages
    )


def test_verify_device_wants_a_client_auth_leaf(ca: Identity) -> None:
    store = TrustStore([ca[0]])
    assert store.verify_device(_leaf(ca, client_auth=True)) == ca[0]  # answers its anchor
    for cert, why in (
        (ca[0], "CA certificate"),
        (_issue(ca, "sub CA", is_ca=True)[0], "CA certificate"),
        (_leaf(ca, server_auth=True), "does not include clientAuth"),
        (_leaf(ca), "no extendedKeyUsage clientAuth"),
    ):
        store.verify(cert)  # a chain to the CA: trusted as a certificate...
        with pytest.raises(UntrustedCertificate, match=why):
            store.verify_device(cert)  # ...but not as a device identity
        with pytest.raises(UntrustedCertificate, match=why):
            store.verify_device(cert)  # and the refusal is not cached as a success


def test_eku_optional_only_for_the_cas_named(ca: Identity, other_ca: Identity) -> None:
    store = TrustStore([ca[0], other_ca[0]], eku_optional=[other_ca[0]])
    assert store.verify_device(_leaf(other_ca)) == other_ca[0]
    with pytest.raises(UntrustedCertificate, match="no extendedKeyUsage"):
        store.verify_device(_leaf(ca))
    with pytest.raises(UntrustedCertificate, match="clientAuth"):
        store.verify_device(_leaf(other_ca, server_auth=True))


def test_undecodable_subject_is_untrusted_not_an_error(tmp_path) -> None:
    from mdmserver.testing.pki import Pki

    pki = Pki(tmp_path)
    cert, _ = pki.undecodable_identity()
    with pytest.raises(ValueError):
        _ = cert.subject  # what made the device endpoint answer 500
    for check in (TrustStore([pki.ca_cert]).verify, TrustStore([pki.ca_cert]).verify_device):
        with pytest.raises(UntrustedCertificate, match="cannot be decoded"):
            check(cert)
