"""Decide whether a device certificate was issued by a CA this server trusts.

Device identities repeat on every request, so a successful chain check is remembered for a
short while (by fingerprint, together with the validity window of the whole chain) instead of
re-checking signatures each time.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes

from mdmserver.crypto.errors import UntrustedCertificate


@dataclass(frozen=True, slots=True)
class _Verdict:
    """A positive result, valid until `expires` (monotonic) and only for times in the window."""

    expires: float
    not_before: datetime
    not_after: datetime


def _describe(cert: x509.Certificate) -> str:
    return cert.subject.rfc4514_string() or f"serial {cert.serial_number:x}"


def _check_period(cert: x509.Certificate, when: datetime, role: str) -> None:
    if when < cert.not_valid_before_utc:
        raise UntrustedCertificate(
            f"{role} {_describe(cert)} is not valid before {cert.not_valid_before_utc.isoformat()}"
        )
    if when > cert.not_valid_after_utc:
        raise UntrustedCertificate(
            f"{role} {_describe(cert)} expired on {cert.not_valid_after_utc.isoformat()}"
        )


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        return False


class TrustStore:
    """The configured CAs (the server's own plus any an organisation adds), as trust anchors."""

    def __init__(
        self,
        cas: Sequence[x509.Certificate],
        *,
        max_chain_length: int = 4,
        cache_seconds: float = 300.0,
        cache_size: int = 10_000,
    ) -> None:
        if not cas:
            raise ValueError("a TrustStore needs at least one CA certificate")
        self._by_subject: dict[x509.Name, list[x509.Certificate]] = {}
        self._anchor_fingerprints: set[bytes] = set()
        for ca in cas:
            self._by_subject.setdefault(ca.subject, []).append(ca)
            self._anchor_fingerprints.add(ca.fingerprint(hashes.SHA256()))
        self._max_chain_length = max_chain_length
        self._cache_seconds = cache_seconds
        self._cache_size = cache_size
        self._cache: OrderedDict[bytes, _Verdict] = OrderedDict()
        self._lock = threading.Lock()

    def verify(
        self,
        cert: x509.Certificate,
        intermediates: Sequence[x509.Certificate] = (),
        *,
        at: datetime | None = None,
    ) -> None:
        """Raise UntrustedCertificate unless `cert` chains, through at most a few of
        `intermediates`, to a configured CA, with every certificate valid at `at` (default: now;
        a naive datetime is read as UTC)."""
        when = at or datetime.now(UTC)
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)  # naive times are taken as UTC, like certificates
        key = cert.fingerprint(hashes.SHA256())
        if self._cached(key, when):
            return
        _check_period(cert, when, "certificate")
        if key in self._anchor_fingerprints:
            self._remember(key, [cert])
            return
        if cert.issuer == cert.subject and _issued_by(cert, cert):
            raise UntrustedCertificate(
                f"certificate {_describe(cert)} is self-signed and is not a configured CA"
            )
        self._remember(key, self._build_chain(cert, intermediates, when))

    def _build_chain(
        self, cert: x509.Certificate, intermediates: Sequence[x509.Certificate], when: datetime
    ) -> list[x509.Certificate]:
        """Walk issuer links from `cert` up to an anchor; first matching issuer wins."""
        chain = [cert]
        current = cert
        for _ in range(self._max_chain_length):
            for anchor in self._by_subject.get(current.issuer, ()):
                if _issued_by(current, anchor):
                    _check_period(anchor, when, "CA certificate")
                    chain.append(anchor)
                    return chain
            step = next(
                (
                    candidate
                    for candidate in intermediates
                    if candidate.subject == current.issuer
                    and candidate not in chain
                    and _issued_by(current, candidate)
                ),
                None,
            )
            if step is None:
                raise UntrustedCertificate(
                    f"certificate {_describe(cert)} was not issued by a trusted CA "
                    f"(no trusted issuer found for {current.issuer.rfc4514_string()})"
                )
            if not _is_ca(step):
                raise UntrustedCertificate(
                    f"intermediate {_describe(step)} is not a CA certificate"
                )
            _check_period(step, when, "intermediate certificate")
            chain.append(step)
            current = step
        raise UntrustedCertificate(
            f"certificate {_describe(cert)} needs a chain longer than "
            f"{self._max_chain_length} to reach a trusted CA"
        )

    def _cached(self, key: bytes, when: datetime) -> bool:
        with self._lock:
            verdict = self._cache.get(key)
            if verdict is None:
                return False
            if verdict.expires < time.monotonic():
                del self._cache[key]
                return False
            self._cache.move_to_end(key)
        return verdict.not_before <= when <= verdict.not_after

    def _remember(self, key: bytes, chain: list[x509.Certificate]) -> None:
        verdict = _Verdict(
            expires=time.monotonic() + self._cache_seconds,
            not_before=max(c.not_valid_before_utc for c in chain),
            not_after=min(c.not_valid_after_utc for c in chain),
        )
        with self._lock:
            self._cache[key] = verdict
            self._cache.move_to_end(key)
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
