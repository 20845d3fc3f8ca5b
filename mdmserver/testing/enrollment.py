"""Enrolling as a device would: unwrap the signed profile, run SCEP over HTTP.

Shared by the enrollment tests and scripts/bench_scep.py (``requests`` is a dev dependency).
"""

from __future__ import annotations

import base64
import plistlib
from dataclasses import dataclass
from typing import Any

import requests
from asn1crypto import cms
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from mdmserver.crypto.ca import generate_key
from mdmserver.scep.message import MessageType
from mdmserver.testing.scep_client import (
    CertRepResult,
    build_pkcs_req,
    make_csr,
    parse_cert_rep,
    self_signed_for_scep,
)


def unwrap_profile(signed: bytes) -> dict[str, Any]:
    """The plist inside an attached CMS signature (the signature is checked elsewhere)."""
    info = cms.ContentInfo.load(signed)
    assert info["content_type"].native == "signed_data", info["content_type"].native
    content = info["content"]["encap_content_info"]["content"].native
    return plistlib.loads(content)


def payload(profile: dict[str, Any], payload_type: str) -> dict[str, Any]:
    found = [p for p in profile["PayloadContent"] if p["PayloadType"] == payload_type]
    assert len(found) == 1, f"expected one {payload_type} payload, found {len(found)}"
    return found[0]


def scep_challenge(profile: dict[str, Any]) -> str:
    return payload(profile, "com.apple.security.scep")["PayloadContent"]["Challenge"]


def profile_service(signed: bytes) -> dict[str, Any]:
    """The PayloadContent of a signed phase-1 profile (Apple's profile service)."""
    profile = unwrap_profile(signed)
    assert profile["PayloadType"] == "Profile Service", profile["PayloadType"]
    return profile["PayloadContent"]


def device_attributes(
    udid: str, challenge: str, *, serial: str = "C02TEST00001", **extra: str
) -> dict[str, str]:
    """The attributes plist a device posts to a profile service (before it is signed)."""
    return {
        "UDID": udid,
        "SERIAL": serial,
        "PRODUCT": "iPhone15,2",
        "VERSION": "21E219",
        "DEVICE_NAME": "iPhone " + serial[-4:],
        "IMEI": "35 123456 789012 3",
        "CHALLENGE": challenge,
        **extra,
    }


def post_attributes(base_url: str, body: bytes) -> requests.Response:
    return requests.post(
        f"{base_url}/mdm/enroll/ota",
        data=body,
        headers={"Content-Type": "application/pkcs7-signature"},
        timeout=30,
    )


def post_pki(base_url: str, body: bytes) -> requests.Response:
    return requests.post(
        f"{base_url}/scep",
        params={"operation": "PKIOperation"},
        data=body,
        headers={"Content-Type": "application/x-pki-message"},
        timeout=30,
    )


def get_pki(base_url: str, body: bytes, **kwargs: Any) -> requests.Response:
    """PKIOperation by GET (RFC 8894 §4.1): the message base64 in the query, ~6 KB of URL."""
    return requests.get(
        f"{base_url}/scep",
        params={"operation": "PKIOperation", "message": base64.b64encode(body).decode()},
        timeout=30,
        **kwargs,
    )


@dataclass
class ScepAttempt:
    """One request and what came back, so tests can assert on either side."""

    key: rsa.RSAPrivateKey
    response: requests.Response
    result: CertRepResult | None  # None when the server answered with an HTTP error

    @property
    def certificate(self) -> x509.Certificate:
        assert self.result is not None and self.result.certificate is not None, self.result
        return self.result.certificate


def scep_request(
    base_url: str,
    ca_cert: x509.Certificate,
    challenge: str | None,
    *,
    key: rsa.RSAPrivateKey | None = None,
    common_name: str = "MDM identity",
    signer: tuple[x509.Certificate, rsa.RSAPrivateKey] | None = None,
    message_type: MessageType = MessageType.PKCSReq,
    via_get: bool = False,
    verify: bool = True,
) -> ScepAttempt:
    """A PKCSReq (or RenewalReq signed by `signer`) over HTTP, as a device's SCEP payload runs."""
    key = key or generate_key("rsa")  # type: ignore[assignment]
    assert isinstance(key, rsa.RSAPrivateKey)
    csr = make_csr(key, common_name, challenge)
    signer_cert, signer_key = signer or (self_signed_for_scep(key, common_name), key)
    body, transaction_id, nonce = build_pkcs_req(
        csr, signer_cert, signer_key, ca_cert, message_type=message_type
    )
    response = get_pki(base_url, body, verify=verify) if via_get else post_pki(base_url, body)
    result = None
    if response.status_code == 200:
        result = parse_cert_rep(
            response.content, ca_cert, signer_key, transaction_id=transaction_id, sender_nonce=nonce
        )
    return ScepAttempt(key, response, result)


def scep_identity(
    base_url: str, ca_cert: x509.Certificate, token: str
) -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
    """A device identity obtained as a token holder would: download the enrollment profile
    with `token`, then run its one-time SCEP challenge. Fails the test if either is refused."""
    reply = requests.get(f"{base_url}/mdm/enroll", params={"token": token}, timeout=30)
    assert reply.status_code == 200, reply.text
    attempt = scep_request(base_url, ca_cert, scep_challenge(unwrap_profile(reply.content)))
    return attempt.certificate, attempt.key
