#!/usr/bin/env python3
"""CPU per device request on the check-in hot path, in one process, for checkouts side by side.

scripts/bench_checkin.py measures the served server under wrk; on a 2-core machine shared with
other work its figures move by ±15% from run to run. This one takes the HTTP server and the
load generator out: the Flask app is called through its test client, in one process, and only
that process's CPU time is counted, so two checkouts (this one and, say, a git worktree of an
earlier commit) can be compared on one machine, alternated round by round.

Each device repeats Idle -> DeviceLock -> Acknowledged (a new signature each answer, as
devices sign every request; the Idle repeats byte for byte, as a polling device's does).

    git worktree add /tmp/before <rev>
    python scripts/bench_checkin_cpu.py . /tmp/before --rounds 4
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import plistlib
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def measure(tree: Path, devices: int, commands: int) -> float:
    """CPU µs per request for the checkout at `tree` (run in a fresh interpreter by main)."""
    sys.path.insert(0, str(tree))
    spec = importlib.util.spec_from_file_location("bench", tree / "scripts" / "bench_checkin.py")
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    sys.modules["bench"] = bench
    spec.loader.exec_module(bench)
    from mdmserver.app import create_app

    home = Path(tempfile.mkdtemp(prefix="mdm-bench-cpu-"))
    ca_cert, ca_key = bench.create_ca("bench CA", key_type="ec")
    (home / "ca.pem").write_bytes(bench.dump_cert_pem(ca_cert))
    env = {
        **os.environ,
        "MDM_HOME": str(home),
        "MDM_DATABASE_URL": f"sqlite:///{home / 'mdm.db'}",
        "MDM_PUSH_TOPICS": bench.TOPIC,
        "MDM_LOG_LEVEL": "WARNING",
    }
    os.environ.update(env)
    config = bench.load_config(environ=env)
    engine = bench.make_engine(config.resolved_database_url)
    bench.migrate.upgrade(engine)
    client = create_app(config).test_client()
    fleet = bench.make_devices(devices, ca_cert, ca_key)

    def put(request: object) -> bytes:
        reply = client.put(request.path, data=request.body, headers=request.headers)  # type: ignore[attr-defined]
        assert reply.status_code == 200, (reply.status_code, reply.data[:200])
        return bytes(reply.data)

    for device in fleet:  # enrolled, with what enrollment queued answered
        put(device.authenticate())
        put(device.token_update())
        payload = put(device.idle())
        while payload:
            payload = put(device.result("Acknowledged", plistlib.loads(payload)["CommandUUID"]))
    plans = bench.queue_plans(engine, fleet, commands)
    steps = [
        (device.idle(), plan[i][0], plan[i][1])
        for i in range(commands)
        for device, plan in zip(fleet, plans, strict=True)
    ]
    warm = devices * 10
    for idle, expected, ack in steps[:warm]:
        assert plistlib.loads(put(idle))["CommandUUID"] == expected
        put(ack)
    start = time.process_time()
    for idle, expected, ack in steps[warm:]:
        assert plistlib.loads(put(idle))["CommandUUID"] == expected
        put(ack)
    return (time.process_time() - start) * 1e6 / (2 * len(steps[warm:]))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("trees", nargs="*", type=Path, help="checkouts to compare")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--devices", type=int, default=10)
    parser.add_argument("--commands", type=int, default=80, help="per device")
    parser.add_argument("--one", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one is not None:
        print(f"{measure(args.one.resolve(), args.devices, args.commands):.1f}")
        return
    if not args.trees:
        parser.error("name at least one checkout")
    figures: dict[Path, list[float]] = {tree.resolve(): [] for tree in args.trees}
    for round_ in range(1, args.rounds + 1):
        for tree, seen in figures.items():
            argv = [sys.executable, __file__, "--one", str(tree), "--devices", str(args.devices)]
            argv += ["--commands", str(args.commands)]
            env = {**os.environ, "PYTHONPATH": str(tree)}
            done = subprocess.run(argv, env=env, capture_output=True, text=True, check=True)
            seen.append(float(done.stdout.split()[-1]))
            print(f"round {round_}  {tree}  {seen[-1]:7.0f} µs CPU per request", flush=True)
    print(f"{'checkout':<50}{'median':>10}{'mean':>10}  (µs CPU per request, in one process)")
    for tree, seen in figures.items():
        print(f"{tree!s:<50}{statistics.median(seen):>10.0f}{statistics.mean(seen):>10.0f}")
    print(f"load average {os.getloadavg()[0]:.2f} (other work on the machine)")


if __name__ == "__main__":
    main()
