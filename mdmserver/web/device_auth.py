"""Who is speaking: the identity certificate behind a device request.

Two sources, as NanoMDM and Apple allow: the ``Mdm-Signature`` header (a detached CMS signature
over the exact body, which devices send when the profile says SignMessage), or the TLS client
certificate forwarded by a reverse proxy, only when ``MDM_CLIENT_CERT_HEADER`` names the header
and the request comes from one of ``MDM_TRUSTED_PROXIES`` (anyone else who reaches the app port
could otherwise put a victim's public certificate in the header and speak as that device).
Either way the certificate must chain to a trusted device CA.
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections import OrderedDict
from collections.abc import Iterable
from datetime import datetime
from threading import Lock
from typing import Protocol

from cryptography import x509

from mdmserver.crypto.ca import fingerprint_sha256
from mdmserver.crypto.certheader import parse_client_cert_header
from mdmserver.crypto.cms_verify import verify_mdm_signature
from mdmserver.crypto.errors import CertificateFormatError, SignatureError, UntrustedCertificate
from mdmserver.crypto.trust import TrustStore
from mdmserver.logs import get_logger
from mdmserver.service.context import DeviceRequest
from mdmserver.service.errors import BadDeviceRequest, DeviceForbidden

log = get_logger("device_auth")

SIGNATURE_HEADER = "Mdm-Signature"
MAX_SIGNATURE_HEADER = 96 * 1024  # base64 of the 64 KiB CMS cap, with room for line breaks


class HeaderLookup(Protocol):
    """Request headers by name, case-insensitively (werkzeug's Headers, EnvironHeaders)."""

    def get(self, key: str, /) -> str | None: ...


class _VerifiedCache:
    """Signatures already verified, keyed by a digest of (signature, body).

    Verification is a pure function of those two inputs, and a device's Idle polls repeat byte
    for byte, so a hit is as good as a fresh check; only successes are remembered.
    """

    def __init__(self, size: int = 8192) -> None:
        self.size = size
        self._items: OrderedDict[bytes, x509.Certificate] = OrderedDict()
        self._lock = Lock()

    @staticmethod
    def key(signature: str, body: bytes) -> bytes:
        return hashlib.sha256(signature.encode() + b"\0" + body).digest()

    def get(self, key: bytes) -> x509.Certificate | None:
        with self._lock:
            cert = self._items.get(key)
            if cert is not None:
                self._items.move_to_end(key)
            return cert

    def put(self, key: bytes, cert: x509.Certificate) -> None:
        with self._lock:
            self._items[key] = cert
            if len(self._items) > self.size:
                self._items.popitem(last=False)


Network = ipaddress.IPv4Network | ipaddress.IPv6Network
DEFAULT_TRUSTED_PROXIES = ("127.0.0.1/32", "::1/128")


def parse_networks(values: Iterable[str]) -> tuple[Network, ...]:
    """Addresses or CIDRs (``10.0.0.5``, ``10.0.0.0/8``) as networks."""
    return tuple(ipaddress.ip_network(value, strict=False) for value in values)


def peer_in(peer: str, networks: tuple[Network, ...]) -> bool:
    """Whether the peer address (REMOTE_ADDR) is in one of the networks; junk is not."""
    try:
        address = ipaddress.ip_address(peer.strip())
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # a dual-stack socket reports IPv4 peers this way
    return any(address in network for network in networks)


class DeviceAuthenticator:
    def __init__(
        self,
        trust: TrustStore | None,
        client_cert_header: str = "",
        trusted_proxies: Iterable[str] = DEFAULT_TRUSTED_PROXIES,
        own_ca: x509.Certificate | None = None,
    ) -> None:
        self.trust = trust
        # The CA our SCEP server issues device identities with (None without `mdmserver init`).
        self.own_ca = own_ca
        self.client_cert_header = client_cert_header
        self.trusted_proxies = parse_networks(trusted_proxies)
        self._verified = _VerifiedCache()

    def authenticate(self, headers: HeaderLookup, body: bytes, peer: str) -> DeviceRequest:
        """The verified identity behind a request from `peer` (the socket's REMOTE_ADDR: the
        client-certificate header counts only from a trusted proxy)."""
        if self.trust is None:
            # Secure by default: with no device CA (before `mdmserver init`) nobody is trusted.
            raise DeviceForbidden("no device CA is configured on this server")
        certificate = self._certificate(headers, body, peer)
        try:
            anchor = self.trust.verify_device(certificate)
        except UntrustedCertificate as exc:
            raise DeviceForbidden(f"identity certificate is not trusted: {exc}") from None
        return DeviceRequest(
            body=body,
            certificate=certificate,
            fingerprint=fingerprint_sha256(certificate),
            not_after=_not_after(certificate),
            from_own_ca=self.own_ca is not None and anchor == self.own_ca,
        )

    def trusted_proxy(self, peer: str) -> bool:
        """Whether a client-certificate header from this peer may be believed."""
        return peer_in(peer, self.trusted_proxies)

    def _certificate(self, headers: HeaderLookup, body: bytes, peer: str) -> x509.Certificate:
        signature = headers.get(SIGNATURE_HEADER)
        if signature:
            return self._verify_signature(signature, body)
        if self.client_cert_header:
            forwarded = headers.get(self.client_cert_header)
            if forwarded and not self.trusted_proxy(peer):
                log.warning(
                    "client_cert_header_ignored",
                    extra={"fields": {"peer": peer, "header": self.client_cert_header}},
                )
                raise DeviceForbidden(
                    f"{self.client_cert_header} is only accepted from a trusted proxy "
                    f"(MDM_TRUSTED_PROXIES), not from {peer or 'an unknown peer'}; "
                    f"sign the request ({SIGNATURE_HEADER})"
                )
            if forwarded:
                try:
                    return parse_client_cert_header(forwarded)
                except CertificateFormatError as exc:
                    raise BadDeviceRequest(f"{self.client_cert_header}: {exc}") from None
            raise BadDeviceRequest(
                f"request carries neither an {SIGNATURE_HEADER} header nor a client certificate"
            )
        raise BadDeviceRequest(f"missing {SIGNATURE_HEADER} header (the request must be signed)")

    def _verify_signature(self, signature: str, body: bytes) -> x509.Certificate:
        if len(signature) > MAX_SIGNATURE_HEADER:
            raise BadDeviceRequest(f"{SIGNATURE_HEADER} header is too large")
        key = self._verified.key(signature, body)
        cached = self._verified.get(key)
        if cached is not None:
            return cached
        try:
            certificate = verify_mdm_signature(signature, body)
        except SignatureError as exc:
            raise DeviceForbidden(f"{SIGNATURE_HEADER} does not verify: {exc}") from None
        self._verified.put(key, certificate)
        return certificate


def _not_after(certificate: x509.Certificate) -> datetime:
    return certificate.not_valid_after_utc
