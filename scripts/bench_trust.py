"""Benchmark the device-trust API: 10,000 trust queries in process (Flask test client: the full
WSGI stack, API-key check and SQL, without a socket), printing p50/p99 latency.

    python scripts/bench_trust.py [--queries 10000] [--devices 1000] [--database-url URL]
                                  [--endpoint devices|certificate|assertion]

Without --database-url it uses a fresh SQLite database in a temporary folder.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import random
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from mdmserver.app import create_app
from mdmserver.config import load_config
from mdmserver.protocol.enrollment_id import EnrollmentIdentity, EnrollmentType
from mdmserver.storage.base import DeviceRecord, TokenRecord
from mdmserver.web.runtime import runtime

TOPIC = "com.apple.mgmt.External.bench"


def populate(app, count: int) -> list[tuple[str, str]]:
    """Enrolled devices with a bound certificate and a stored compliance state."""
    rt = runtime(app)
    store = runtime(app).inventory.compliance_store
    now = datetime.now(UTC)
    devices = []
    for index in range(count):
        udid = f"BENCH-{index:06d}"
        identity = EnrollmentIdentity(EnrollmentType.DEVICE, udid)
        rt.storage.authenticate(
            DeviceRecord(udid, False, TOPIC, serial_number=f"S{index:08d}"), identity
        )
        rt.storage.token_update(TokenRecord(identity, TOPIC, "ab" * 32, "magic"))
        fingerprint = hashlib.sha256(udid.encode()).hexdigest()
        rt.storage.bind_certificate(udid, fingerprint, None, replace=False)
        state = "compliant" if index % 4 else "noncompliant"
        reasons = [] if index % 4 else ["no passcode is set"]
        store.save(udid, state, reasons, [], now)
        devices.append((udid, fingerprint))
    return devices


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=10_000)
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--database-url", default="")
    parser.add_argument(
        "--endpoint", choices=("devices", "certificate", "assertion"), default="devices"
    )
    args = parser.parse_args()
    logging.disable(logging.INFO)
    home = Path(tempfile.mkdtemp(prefix="bench-trust-"))
    overrides = {"home": home, "log_level": "WARNING", "auto_migrate": True}
    if args.database_url:
        overrides["database_url"] = args.database_url
    app = create_app(load_config(environ={}, overrides=overrides))
    devices = populate(app, args.devices)
    key = runtime(app).admin.api_keys.create("bench", "trust", actor="bench").key
    client = app.test_client()
    headers = {"Authorization": f"Bearer {key}"}
    paths = {
        "devices": lambda d: f"/api/v1/trust/devices/{d[0]}",
        "certificate": lambda d: f"/api/v1/trust/certificate/{d[1]}",
        "assertion": lambda d: f"/api/v1/trust/devices/{d[0]}/assertion",
    }[args.endpoint]
    rng = random.Random(7)
    for device in devices[:200]:  # warm-up: connections, compiled statements, signing key
        client.get(paths(device), headers=headers)
    timings = []
    for _ in range(args.queries):
        path = paths(rng.choice(devices))
        started = time.perf_counter()
        reply = client.get(path, headers=headers)
        timings.append((time.perf_counter() - started) * 1000)
        assert reply.status_code == 200 and reply.get_json()["managed"] is True
    timings.sort()
    p50 = statistics.median(timings)
    p99 = timings[int(len(timings) * 0.99) - 1]
    backend = "postgresql" if args.database_url.startswith("postgres") else "sqlite"
    print(
        f"trust {args.endpoint}: {args.queries} queries over {args.devices} devices ({backend},"
        f" in-process Flask test client): p50 {p50:.3f} ms, p99 {p99:.3f} ms,"
        f" max {timings[-1]:.3f} ms"
    )
    runtime(app).jobs.close()
    runtime(app).storage.dispose()


if __name__ == "__main__":
    main()
