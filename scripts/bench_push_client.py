#!/usr/bin/env python3
"""Push N notifications from PushClient to the APNs stand-in running in another process.

Prints pushes/s and the client's CPU time per push. Real aioapns, real mutual TLS, loopback.

    python scripts/bench_push_client.py                 # 100,000 tokens
    python scripts/bench_push_client.py -n 20000 --in-flight 1000
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import secrets
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mdmserver.push.apns_target import use_apns_endpoint
from mdmserver.push.client import PushClient, PushTarget
from mdmserver.testing.apns_pki import issue_push_cert, issue_server_cert, make_ca, new_mdm_topic
from mdmserver.testing.cpu import process_cpu

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--tokens", type=int, default=100_000)
    parser.add_argument("--in-flight", type=int, default=None, help="PushClient max_in_flight")
    parser.add_argument("--batch", type=int, default=0, help="tokens per push_many (0: all)")
    args = parser.parse_args()

    ca = make_ca()
    server_identity = issue_server_cert(ca)
    topic = new_mdm_topic()
    push = issue_push_cert(ca, topic)
    with tempfile.TemporaryDirectory() as tmp:
        paths = {
            "ca": ca.cert_pem,
            "cert": server_identity.cert_pem,
            "key": server_identity.key_pem,
        }
        for name, data in paths.items():
            Path(tmp, name).write_bytes(data)
        server = subprocess.Popen(
            [sys.executable, str(ROOT / "scripts" / "fake_apns.py"), "--quiet", "--port", "0"]
            + [f"--{name}={Path(tmp, name)}" for name in paths],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert server.stdout is not None
            port = json.loads(server.stdout.readline())["port"]
            options = {} if args.in_flight is None else {"max_in_flight": args.in_flight}
            with use_apns_endpoint("127.0.0.1", port, ca.cert_pem):
                client = PushClient(push.cert_pem, push.key_pem, topic, **options)
            run(client, topic, args.tokens, args.batch or args.tokens, server.pid)
            client.close()
        finally:
            server.terminate()
            server.wait(10)
    return 0


def run(client: PushClient, topic: str, count: int, batch: int, server_pid: int) -> None:
    targets = [PushTarget(secrets.token_hex(32), f"magic-{i}", topic) for i in range(count)]
    client.push_many(targets[:100])  # connect and warm up
    kinds: Counter[str] = Counter()
    load = os.getloadavg()[0]
    server_before = process_cpu(server_pid)
    cpu_before, started = _cpu(), time.perf_counter()
    for start in range(0, count, batch):
        kinds.update(o.kind.value for o in client.push_many(targets[start : start + batch]))
    elapsed, cpu = time.perf_counter() - started, _cpu() - cpu_before
    server_cpu = process_cpu(server_pid) - server_before
    print(
        f"{count} pushes in {elapsed:.1f}s: {count / elapsed:,.0f} pushes/s, "
        f"client CPU {cpu / count * 1e6:.0f} us/push, stand-in CPU "
        f"{server_cpu / count * 1e6:.0f} us/push, in flight {client.max_in_flight}, "
        f"outcomes {dict(kinds)}, cores {os.cpu_count()}, load {load:.2f} before the run"
    )


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


if __name__ == "__main__":
    raise SystemExit(main())
