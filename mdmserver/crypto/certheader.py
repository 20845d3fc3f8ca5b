"""Client certificates forwarded by a TLS-terminating reverse proxy in a request header.

Two encodings exist in the wild: RFC 9440's `Client-Cert` (a structured-field byte sequence,
`:<base64 DER>:`) and nginx's `$ssl_client_escaped_cert` (URL-escaped PEM). Anything else is
refused rather than guessed at, since this header decides who a request comes from.
"""

from __future__ import annotations

import base64
import binascii
import urllib.parse

from cryptography import x509

from mdmserver.crypto.errors import CertificateFormatError

MAX_HEADER_CHARS = 32 * 1024
_PEM_BEGIN = "-----BEGIN CERTIFICATE-----"


def parse_client_cert_header(value: str) -> x509.Certificate:
    """The certificate in a proxy's client-certificate header value."""
    value = value.strip()
    if not value:
        raise CertificateFormatError("the client certificate header is empty")
    if len(value) > MAX_HEADER_CHARS:
        raise CertificateFormatError(
            f"the client certificate header is {len(value)} characters; "
            f"at most {MAX_HEADER_CHARS} are accepted"
        )
    if len(value) > 2 and value[0] == ":" and value[-1] == ":":
        return _from_byte_sequence(value[1:-1])
    if urllib.parse.unquote(value[:40]).startswith("-----BEGIN"):
        return _from_escaped_pem(value)
    raise CertificateFormatError(
        "the client certificate header is neither an RFC 9440 byte sequence (:base64:) "
        "nor a URL-escaped PEM certificate"
    )


def _from_byte_sequence(encoded: str) -> x509.Certificate:
    try:
        raw = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise CertificateFormatError("the Client-Cert byte sequence is not valid base64") from None
    try:
        return x509.load_der_x509_certificate(raw)
    except (ValueError, x509.InvalidVersion):  # InvalidVersion is no ValueError
        raise CertificateFormatError(
            "the Client-Cert byte sequence does not hold a DER certificate"
        ) from None


def _from_escaped_pem(escaped: str) -> x509.Certificate:
    # unquote, not unquote_plus: '+' is a base64 character, never an escaped space here.
    try:
        pem = urllib.parse.unquote(escaped, errors="strict")
    except UnicodeDecodeError:
        raise CertificateFormatError("the escaped PEM is not valid percent-encoding") from None
    if not pem.startswith(_PEM_BEGIN):
        raise CertificateFormatError("the escaped PEM does not start with a CERTIFICATE block")
    try:
        return x509.load_pem_x509_certificate(pem.encode("ascii"))
    except (ValueError, UnicodeEncodeError, x509.InvalidVersion):
        raise CertificateFormatError("the escaped PEM does not hold a valid certificate") from None
