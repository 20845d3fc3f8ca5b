"""Exceptions raised by the crypto package.

Each is a ValueError so callers that only care about "bad input" can catch one type, and each
message is safe to log and to return in a 400/403 body: it names what is wrong, never secrets.
"""

from __future__ import annotations


class SignatureError(ValueError):
    """A CMS signature is malformed, does not match its content, or cannot be checked."""


class UntrustedCertificate(ValueError):
    """A certificate does not chain to a configured CA, or is outside its validity period."""


class CertificateFormatError(ValueError):
    """Bytes or a header value that should carry a certificate do not."""
