"""Answers to the two unsigned SCEP operations: GetCACaps and GetCACert."""

from __future__ import annotations

from collections.abc import Sequence

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from mdmserver.scep.signed import degenerate_certs_only

# SHA-1 and DES3 are not advertised: clients pick the strongest listed, and the ones that never
# ask fall back to them anyway (we still read them). SCEPStandard implies AES + SHA-256 + POST.
CA_CAPS: tuple[str, ...] = (
    "POSTPKIOperation",
    "SHA-256",
    "SHA-512",
    "AES",
    "SCEPStandard",
    "Renewal",
)
CA_CAPS_CONTENT_TYPE = "text/plain"


def ca_caps_response() -> tuple[bytes, str]:
    """GetCACaps body (one capability per line) and its content type."""
    return "\n".join(CA_CAPS).encode("ascii") + b"\n", CA_CAPS_CONTENT_TYPE


def ca_cert_response(
    ca_cert: x509.Certificate, extra: Sequence[x509.Certificate] = ()
) -> tuple[bytes, str]:
    """GetCACert body and content type.

    A lone certificate goes out as plain DER: clients encrypt to every certificate they are
    given, so a bundle is only sent when there really is an RA or chain to send.
    """
    if not extra:
        return ca_cert.public_bytes(serialization.Encoding.DER), "application/x-x509-ca-cert"
    return degenerate_certs_only([ca_cert, *extra]), "application/x-x509-ca-ra-cert"
