"""What the HTTP layer knows about a device request before the service looks at its message."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from cryptography import x509

from mdmserver.storage.base import EnrollmentStatus


@dataclass(frozen=True, slots=True)
class DeviceRequest:
    """A device request: its exact body, and the identity certificate that signed (or carried)
    it, already verified against the body and chained to a trusted CA."""

    body: bytes
    certificate: x509.Certificate
    fingerprint: str  # SHA-256 of the certificate DER, lowercase hex
    not_after: datetime
    request_id: str = ""
    # Chains to the CA our SCEP server issues from: then it must be one of the device
    # identities that server recorded (issued_certs), not the TLS or signing certificate.
    from_own_ca: bool = False
    # Filled by the certificate check, which reads it in the same query as the binding.
    enrollment_status: EnrollmentStatus | None = None
    status_known: bool = False
