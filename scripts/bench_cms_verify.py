"""How many Mdm-Signature verifications per second one core manages (RSA-2048).

Three cases per form: a repeated signature (an Idle poll, byte for byte: parse cache hit),
distinct signatures from a known device (certificate cache hit only) and a cold start (nothing
cached). Run: python scripts/bench_cms_verify.py [--seconds N]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from datetime import timedelta

from cryptography import x509
from cryptography.x509.oid import NameOID

from mdmserver.crypto.ca import create_ca, generate_key, issue_certificate
from mdmserver.crypto.cms_sign import sign_detached
from mdmserver.crypto.cms_verify import clear_caches, verify_detached

BODY = b'<?xml version="1.0"?><plist version="1.0"><dict><key>Status</key><string>Idle</string>'


def _rate(seconds: float, step: Callable[[int], None]) -> float:
    """Calls per second of step(i), measured for about `seconds`."""
    done = 0
    start = time.perf_counter()
    deadline = start + seconds
    while time.perf_counter() < deadline:
        for _ in range(200):
            step(done)
            done += 1
    return done / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=2.0, help="time per measurement")
    parser.add_argument("--distinct", type=int, default=1000, help="unique signatures to verify")
    args = parser.parse_args()

    ca_cert, ca_key = create_ca("bench CA")
    key = generate_key("rsa", 2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bench device")])
    cert = issue_certificate(ca_cert, ca_key, key.public_key(), name, lifetime=timedelta(days=1))

    for attributes in (False, True):
        label = "with signed attributes" if attributes else "without signed attributes"
        bodies = [BODY + b"<!-- %d -->" % i for i in range(args.distinct)]
        signatures = [sign_detached(b, cert, key, signed_attributes=attributes) for b in bodies]
        one = signatures[0]
        clear_caches()

        def repeated(_: int, sig: bytes = one, body: bytes = bodies[0]) -> None:
            verify_detached(sig, body)

        def cold(_: int, sig: bytes = one, body: bytes = bodies[0]) -> None:
            clear_caches()
            verify_detached(sig, body)

        print(f"RSA-2048, SHA-256, {label}:")
        print(f"  repeated signature (poll): {_rate(args.seconds, repeated):9,.0f} verifies/s")
        clear_caches()
        verify_detached(one, bodies[0])  # warms the certificate cache; the rest are unseen
        start = time.perf_counter()
        for sig, body in zip(signatures[1:], bodies[1:], strict=True):
            verify_detached(sig, body)
        fresh = (len(signatures) - 1) / (time.perf_counter() - start)
        print(f"  new signature, known cert: {fresh:9,.0f} verifies/s")
        print(f"  cold (no cache at all):    {_rate(args.seconds, cold):9,.0f} verifies/s")


if __name__ == "__main__":
    main()
