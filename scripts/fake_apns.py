#!/usr/bin/env python3
"""Run the APNs stand-in for demos; print every request it answers as a JSON line.

    python scripts/fake_apns.py --ca CA.pem --cert server.pem --key server.key --port 2197
    python scripts/fake_apns.py --generate ./apns-demo --port 2197   # make a throwaway PKI first
    python scripts/fake_apns.py ... --respond 00ff=410:Unregistered --respond ab12=503:Shutdown:2

The first line is {"event": "listening", ...}; point a push client at that host and port, trusting
the CA (see mdmserver.push.apns_target.use_apns_endpoint).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mdmserver.testing.apns_pki import issue_push_cert, issue_server_cert, make_ca
from mdmserver.testing.fake_apns import FakeAPNs, PushRecord


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.generate:
        ca_pem, cert_pem, key_pem = _generate(Path(args.generate))
    elif args.ca and args.cert and args.key:
        ca_pem, cert_pem, key_pem = (Path(p).read_bytes() for p in (args.ca, args.cert, args.key))
    else:
        _parser().error("give --ca, --cert and --key, or --generate DIR")
    server = FakeAPNs(
        ca_pem=ca_pem,
        cert_pem=cert_pem,
        key_pem=key_pem,
        host=args.host,
        port=args.port,
        record=False,
    )
    for spec in args.respond:
        token, status, reason, times = _response_spec(spec)
        server.set_response(token, status, reason, times)
    lock = threading.Lock()
    if not args.quiet:
        server.on_request(lambda record: _print(lock, _as_json(record)))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with server:
        _print(lock, {"event": "listening", "host": server.host, "port": server.port})
        with contextlib.suppress(KeyboardInterrupt):
            stop.wait()
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ca", help="PEM of the CA whose client certificates are accepted")
    parser.add_argument("--cert", help="PEM server certificate")
    parser.add_argument("--key", help="PEM server key")
    parser.add_argument("--generate", metavar="DIR", help="write a fresh PKI to DIR and use it")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=2197, help="0 picks a free port")
    parser.add_argument(
        "--respond",
        action="append",
        default=[],
        metavar="TOKEN=STATUS:REASON[:TIMES]",
        help="scripted answer for one token (repeatable)",
    )
    parser.add_argument("--quiet", action="store_true", help="do not print each request")
    return parser


def _generate(directory: Path) -> tuple[bytes, bytes, bytes]:
    """A CA, the server certificate and a push certificate (cert+key in push.pem)."""
    directory.mkdir(parents=True, exist_ok=True)
    ca = make_ca()
    server = issue_server_cert(ca)
    push = issue_push_cert(ca)
    files = {
        "ca.pem": ca.cert_pem,
        "server.pem": server.cert_pem,
        "server.key": server.key_pem,
        "push.pem": push.cert_pem + push.key_pem,
    }
    for name, data in files.items():
        (directory / name).write_bytes(data)
    (directory / "push.pem").chmod(0o600)
    (directory / "server.key").chmod(0o600)
    print(f"wrote {', '.join(files)} to {directory}", file=sys.stderr)
    return ca.cert_pem, server.cert_pem, server.key_pem


def _response_spec(spec: str) -> tuple[str, int, str, int | None]:
    try:
        token, answer = spec.split("=", 1)
        parts = answer.split(":")
        status, reason = int(parts[0]), parts[1]
        times = int(parts[2]) if len(parts) > 2 else None
    except (ValueError, IndexError):
        raise SystemExit(f"--respond expects TOKEN=STATUS:REASON[:TIMES], got {spec!r}") from None
    return token, status, reason, times


def _as_json(record: PushRecord) -> dict[str, object]:
    return {
        "token": record.token,
        "topic": record.topic,
        "push_type": record.headers.get("apns-push-type"),
        "status": record.status,
        "reason": record.reason,
        "apns_id": record.apns_id,
        "body": record.body,
    }


def _print(lock: threading.Lock, line: dict[str, object]) -> None:
    with lock:
        print(json.dumps(line), flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
