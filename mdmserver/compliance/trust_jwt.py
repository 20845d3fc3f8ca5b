"""Signed trust assertions: a short-lived ES256 JWT an access proxy verifies offline against
the JWKS we publish. The key lives in ``<MDM_HOME>/trust_jwt.key`` (created 0600 on first use,
race-safe across workers); its kid is the RFC 7638 thumbprint, so it never needs configuring.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from mdmserver.compliance.trust import TrustAnswer

KEY_FILE = "trust_jwt.key"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class TrustSigner:
    def __init__(self, home: Path, issuer: str, ttl_seconds: int = 300) -> None:
        self.path = home / KEY_FILE
        self.issuer = issuer
        self.ttl = ttl_seconds
        self._key: ec.EllipticCurvePrivateKey | None = None
        self._jwk: dict[str, str] | None = None
        self._lock = threading.Lock()

    def jwks(self) -> dict[str, Any]:
        self._load()
        assert self._jwk is not None
        return {"keys": [self._jwk]}

    def sign(self, answer: TrustAnswer, now: datetime) -> str:
        key = self._load()
        assert self._jwk is not None
        issued = int(now.timestamp())
        claims = {
            "iss": self.issuer,
            "sub": answer.device_id,
            "managed": answer.managed,
            "compliant": answer.compliant,
            "identity": answer.identity,
            "iat": issued,
            "exp": issued + self.ttl,
        }
        headers = {"kid": self._jwk["kid"], "typ": "JWT"}
        return jwt.encode(claims, key, algorithm="ES256", headers=headers)

    def _load(self) -> ec.EllipticCurvePrivateKey:
        if self._key is not None:
            return self._key
        with self._lock:
            if self._key is None:
                key = _load_or_create(self.path)
                self._jwk = _public_jwk(key.public_key())
                self._key = key
        return self._key


def _load_or_create(path: Path) -> ec.EllipticCurvePrivateKey:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read_existing(path)
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    return key


def _read_existing(path: Path) -> ec.EllipticCurvePrivateKey:
    """Another worker may be writing the key this instant: give it a moment."""
    for attempt in range(20):
        try:
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
            break
        except ValueError:
            if attempt == 19:
                raise
            time.sleep(0.05)
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise ValueError(f"{path} must hold a P-256 EC private key")
    return key


def _public_jwk(public: ec.EllipticCurvePublicKey) -> dict[str, str]:
    numbers = public.public_numbers()
    members = {
        "crv": "P-256",
        "kty": "EC",
        "x": _b64(numbers.x.to_bytes(32, "big")),
        "y": _b64(numbers.y.to_bytes(32, "big")),
    }
    thumbprint = hashlib.sha256(
        json.dumps(members, sort_keys=True, separators=(",", ":")).encode()
    ).digest()
    return {**members, "use": "sig", "alg": "ES256", "kid": _b64(thumbprint)}
