"""Mdm-Signature verification with each candidate CMS parser, side by side, in µs per call.

Candidates: `asn1crypto`, the server's verifier (mdmserver.crypto.cms_verify: asn1crypto reads
the structure, cryptography checks the signature), and `der`, the hand-written BER reader the
server used before (loaded from git at --baseline, unchanged, under a private package name), so
the choice between them can be re-measured after the reader is gone from the tree.

Signatures: a device-style Mdm-Signature (RSA-2048 identity issued by a CA, SHA-1 as devices
sign, signed attributes, detached, the identity embedded) and, when ../shared is present, a real
device's CMS (mdmclient's PKIOperation: SHA-512, attached). Cases per signature:
  parse      a signature not seen before, its certificate known (the parse cache misses)
  new sig    parse + digest + public-key check: an Idle poll with a new signingTime
  repeated   the same signature again (the parse cache hits; the public-key check still runs)
  cold       every cache cleared first (a device's first request)

Run: PYTHONPATH=$PWD python scripts/bench_cms.py [--seconds N] [--baseline REV]
"""

from __future__ import annotations

import argparse
import importlib
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from types import ModuleType

from asn1crypto import cms
from cryptography import x509
from cryptography.x509.oid import NameOID

from mdmserver.crypto import cms_verify
from mdmserver.crypto.ca import create_ca, generate_key, issue_certificate
from mdmserver.crypto.cms_sign import sign_detached

REPO = Path(__file__).resolve().parent.parent
CAPTURE = REPO.parent / "shared/fixtures/commandment/testdata/mdmclient-PKIOperation.der"
BODY = b'<?xml version="1.0"?><plist version="1.0"><dict><key>Status</key><string>Idle</string>'
_BASELINE_FILES = ("der.py", "cms_algorithms.py", "cms_verify.py")


def load_baseline(rev: str, into: Path) -> ModuleType | None:
    """The hand-written reader's verifier as it was at `rev`, importable as _cms_der."""
    package = into / "_cms_der"
    package.mkdir()
    (package / "__init__.py").write_text("")
    for name in _BASELINE_FILES:
        shown = subprocess.run(
            ["git", "-C", str(REPO), "show", f"{rev}:mdmserver/crypto/{name}"],
            capture_output=True,
            text=True,
        )
        if shown.returncode:
            return None
        text = shown.stdout.replace("from mdmserver.crypto import der", "from _cms_der import der")
        text = text.replace("mdmserver.crypto.cms_algorithms", "_cms_der.cms_algorithms")
        (package / name).write_text(text)
    sys.path.insert(0, str(into))
    return importlib.import_module("_cms_der.cms_verify")


def per_call(seconds: float, step: Callable[[], object]) -> float:
    """Microseconds of CPU per call of step(), over about `seconds` of CPU: process time, not
    wall time, so other work on a shared machine inflates the figures less."""
    done = 0
    start = time.process_time()
    deadline = start + seconds
    while time.process_time() < deadline:
        for _ in range(20):
            step()
        done += 20
    return (time.process_time() - start) / done * 1e6


def measure(module: ModuleType, signature: bytes, body: bytes, seconds: float) -> list[float]:
    module.clear_caches()
    expected = module.verify_detached(signature, body)  # also warms the certificate cache
    parse = module._parse_checked  # the uncached parse: what a new signature costs

    def new_signature() -> None:
        module._verify(parse(signature), body)

    def cold() -> None:
        module.clear_caches()
        module.verify_detached(signature, body)

    results = [
        per_call(seconds, lambda: parse(signature)),
        per_call(seconds, new_signature),
        per_call(seconds, lambda: module.verify_detached(signature, body)),
        per_call(seconds, cold),
    ]
    assert module.verify_detached(signature, body) == expected
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="time per measurement")
    parser.add_argument("--baseline", default="35c40ae", help="git revision of the DER reader")
    args = parser.parse_args()

    ca_cert, ca_key = create_ca("bench CA")
    key = generate_key("rsa", 2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bench device")])
    cert = issue_certificate(ca_cert, ca_key, key.public_key(), name, lifetime=timedelta(days=1))
    signatures = {
        "device Mdm-Signature (RSA-2048, SHA-1, attrs)": (
            sign_detached(BODY, cert, key, digest="sha1"),
            BODY,
        ),
    }
    if CAPTURE.exists():
        der = CAPTURE.read_bytes()
        content = cms.ContentInfo.load(der)["content"]["encap_content_info"]["content"].native
        signatures["real device CMS (mdmclient PKIOperation)"] = (der, content)

    candidates: dict[str, ModuleType] = {"asn1crypto": cms_verify}
    with tempfile.TemporaryDirectory() as scratch:
        baseline = load_baseline(args.baseline, Path(scratch))
        if baseline is None:
            print(f"(no hand-written reader at {args.baseline}: asn1crypto only)")
        else:
            candidates[f"der@{args.baseline}"] = baseline
        cases = ("parse", "new sig", "repeated", "cold")
        print(f"{'µs per call':<46}{'candidate':<16}" + "".join(f"{c:>10}" for c in cases))
        for label, (signature, body) in signatures.items():
            for candidate, module in candidates.items():
                figures = measure(module, signature, body, args.seconds)
                print(f"{label:<46}{candidate:<16}" + "".join(f"{f:>10.1f}" for f in figures))


if __name__ == "__main__":
    main()
