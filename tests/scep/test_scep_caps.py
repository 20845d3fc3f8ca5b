"""GetCACaps and GetCACert answers."""

from __future__ import annotations

from cryptography import x509
from cryptography.hazmat.primitives.serialization import pkcs7

from mdmserver.scep.caps import ca_caps_response, ca_cert_response


def test_caps_advertise_post_aes_sha256_and_renewal() -> None:
    body, content_type = ca_caps_response()
    caps = body.decode("ascii").split("\n")
    assert content_type == "text/plain"
    for cap in ("POSTPKIOperation", "SHA-256", "AES", "SCEPStandard", "Renewal"):
        assert cap in caps
    assert "SHA-1" not in caps
    assert "DES3" not in caps


def test_single_ca_goes_out_as_one_der_certificate(ca) -> None:
    body, content_type = ca_cert_response(ca.cert)
    assert content_type == "application/x-x509-ca-cert"
    assert x509.load_der_x509_certificate(body) == ca.cert


def test_ca_with_extra_certificates_goes_out_as_degenerate_pkcs7(ca, other_ca) -> None:
    body, content_type = ca_cert_response(ca.cert, [other_ca.cert])
    assert content_type == "application/x-x509-ca-ra-cert"
    assert pkcs7.load_der_pkcs7_certificates(body) == [ca.cert, other_ca.cert]
