"""Decide whether a device certificate was issued by a CA this server trusts.

Device identities repeat on every request, so a successful chain check is remembered for a
short while (by fingerprint, together with the validity window of the whole chain) instead of
re-checking signatures each time.

A chain to a trusted CA is not enough to speak for a device: the same CA signs the server's own
TLS and profile-signing certificates, and is itself a certificate. ``verify_device`` also asks
that the certificate be a leaf meant for client authentication (see ``device_identity_problem``)
and caches that answer together with the chain. A certificate whose names or extensions cannot
be decoded is untrusted, never an error of another kind.
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
from cryptography.x509.oid import ExtendedKeyUsageOID

from mdmserver.crypto.errors import UntrustedCertificate


@dataclass(frozen=True, slots=True)
class _Verdict:
    """A positive result, valid until `expires` (monotonic) and only for times in the window."""

    expires: float
    not_before: datetime
    not_after: datetime
    anchor: x509.Certificate


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


def device_identity_problem(cert: x509.Certificate, *, eku_optional: bool = False) -> str | None:
    """Why `cert` cannot be a device identity, or None.

    A device identity is a leaf (basicConstraints CA:FALSE or absent) whose extendedKeyUsage
    includes clientAuth; with `eku_optional` (an organisation's own device CA, whose identities
    may predate EKUs) a certificate without the extension is accepted too.
    """
    try:
        cert.subject.rfc4514_string()
        cert.issuer.rfc4514_string()
        extensions = cert.extensions
    except ValueError:
        return "its names or extensions cannot be decoded"
    if _is_ca(cert):
        return "it is a CA certificate (basicConstraints CA:TRUE), not a device identity"
    try:
        usages = extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return None if eku_optional else "it has no extendedKeyUsage clientAuth"
    if ExtendedKeyUsageOID.CLIENT_AUTH not in usages:
        return "its extendedKeyUsage does not include clientAuth"
    return None


class TrustStore:
    """The configured CAs (the server's own plus any an organisation adds), as trust anchors."""

    def __init__(
        self,
        cas: Sequence[x509.Certificate],
        *,
        eku_optional: Sequence[x509.Certificate] = (),
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
        # Anchors whose device identities may come without an extendedKeyUsage.
        self._eku_optional = {ca.fingerprint(hashes.SHA256()) for ca in eku_optional}
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
    ) -> x509.Certificate:
        """Raise UntrustedCertificate unless `cert` chains, through at most a few of
        `intermediates`, to a configured CA, with every certificate valid at `at` (default: now;
        a naive datetime is read as UTC). Returns that CA."""
        return self._verify(cert, intermediates, at, device=False)

    def verify_device(
        self,
        cert: x509.Certificate,
        intermediates: Sequence[x509.Certificate] = (),
        *,
        at: datetime | None = None,
    ) -> x509.Certificate:
        """Like `verify`, and `cert` must also be a device identity (`device_identity_problem`).
        Returns the CA it chains to."""
        return self._verify(cert, intermediates, at, device=True)

    def _verify(
        self,
        cert: x509.Certificate,
        intermediates: Sequence[x509.Certificate],
        at: datetime | None,
        *,
        device: bool,
    ) -> x509.Certificate:
        when = at or datetime.now(UTC)
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)  # naive times are taken as UTC, like certificates
        key = cert.fingerprint(hashes.SHA256()) + (b"device" if device else b"")
        cached = self._cached(key, when)
        if cached is not None:
            return cached
        try:
            chain = self._chain(cert, intermediates, when)
        except UntrustedCertificate:
            raise
        except ValueError:  # cryptography decodes names and extensions lazily
            raise UntrustedCertificate(
                "certificate names or extensions cannot be decoded"
            ) from None
        anchor = chain[-1]
        if device:
            problem = device_identity_problem(
                cert, eku_optional=anchor.fingerprint(hashes.SHA256()) in self._eku_optional
            )
            if problem is not None:
                raise UntrustedCertificate(f"certificate is not a device identity: {problem}")
        self._remember(key, chain)
        return anchor

    def _chain(
        self, cert: x509.Certificate, intermediates: Sequence[x509.Certificate], when: datetime
    ) -> list[x509.Certificate]:
        _check_period(cert, when, "certificate")
        if cert.fingerprint(hashes.SHA256()) in self._anchor_fingerprints:
            return [cert]
        if cert.issuer == cert.subject and _issued_by(cert, cert):
            raise UntrustedCertificate(
                f"certificate {_describe(cert)} is self-signed and is not a configured CA"
            )
        return self._build_chain(cert, intermediates, when)

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

    def _cached(self, key: bytes, when: datetime) -> x509.Certificate | None:
        """The anchor of a remembered positive result that covers `when`, or None."""
        with self._lock:
            verdict = self._cache.get(key)
            if verdict is None:
                return None
            if verdict.expires < time.monotonic():
                del self._cache[key]
                return None
            self._cache.move_to_end(key)
        return verdict.anchor if verdict.not_before <= when <= verdict.not_after else None

    def _remember(self, key: bytes, chain: list[x509.Certificate]) -> None:
        verdict = _Verdict(
            expires=time.monotonic() + self._cache_seconds,
            not_before=max(c.not_valid_before_utc for c in chain),
            not_after=min(c.not_valid_after_utc for c in chain),
            anchor=chain[-1],
        )
        with self._lock:
            self._cache[key] = verdict
            self._cache.move_to_end(key)
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
