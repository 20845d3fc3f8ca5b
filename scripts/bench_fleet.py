#!/usr/bin/env python3
"""Fleet benchmark in the production shape: gunicorn web workers, RQ worker(s), Redis and a fresh
PostgreSQL database, with N simulated devices (default 1,000) in this process.

Phases: every device enrolls (token -> profile -> SCEP -> Authenticate -> TokenUpdate); then
rounds of commands are queued through the admin API (10 per device in all), each device is
pushed through the APNs stand-in, wakes and answers. Prints enrollments/s, check-in requests/s,
p50/p99 latency, errors, commands lost (queued but never finally answered) and the server
processes' peak memory.

    PYTHONPATH=. python scripts/bench_fleet.py --devices 1000
"""

from __future__ import annotations

import argparse
import base64
import plistlib
import shutil
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path

import redis

from mdmserver.simulator import harness
from mdmserver.simulator.admin import AdminClient
from mdmserver.simulator.apple import FakeApple
from mdmserver.simulator.fleet import Fleet, FleetOptions
from mdmserver.simulator.instance import prepare_instance
from mdmserver.simulator.keys import generate_keys
from mdmserver.testing.scratch import scratch_database

FINAL = {"acknowledged", "error", "commandformaterror"}
PROFILE_ID = "com.example.bench.restrictions"
PROFILE = plistlib.dumps(
    {
        "PayloadIdentifier": PROFILE_ID,
        "PayloadUUID": str(uuid.uuid4()).upper(),
        "PayloadType": "Configuration",
        "PayloadVersion": 1,
        "PayloadDisplayName": "Bench restrictions",
        "PayloadContent": [],
    }
)
# Two rounds of five commands per device (DeviceLock goes to each platform with its own body).
ROUNDS: list[list[tuple[dict, dict]]] = [
    [
        ({"RequestType": "DeviceInformation", "Queries": ["OSVersion", "SerialNumber"]}, {}),
        ({"RequestType": "SecurityInfo"}, {}),
        ({"RequestType": "InstallProfile", "Payload": base64.b64encode(PROFILE).decode()}, {}),
        ({"RequestType": "ProfileList"}, {}),
        ({"RequestType": "InstalledApplicationList"}, {}),
    ],
    [
        ({"RequestType": "RemoveProfile", "Identifier": PROFILE_ID}, {}),
        ({"RequestType": "DeviceLock"}, {"platform": "iOS"}),
        ({"RequestType": "DeviceLock", "PIN": "123456"}, {"platform": "macOS"}),
        ({"RequestType": "CertificateList"}, {}),  # the simulator does not support it: Error
        ({"RequestType": "DeviceInformation", "Queries": ["BatteryLevel", "DeviceName"]}, {}),
        ({"RequestType": "ProfileList"}, {}),
    ],
]


def status_line(text_: str) -> None:
    sys.stderr.write(f"\r{text_:<100}")
    sys.stderr.flush()


def main() -> int:
    args = parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-fleet-"))
    scratch = ExitStack()
    db_url = scratch.enter_context(scratch_database(args.postgres, "mdm_bench"))
    prefix = f"mdmbench-{uuid.uuid4().hex[:8]}"
    port = harness.free_port()
    base_url = f"https://127.0.0.1:{port}"
    processes = []
    fleet = None
    try:
        apple = FakeApple.create(work / "fake-apple")
        instance = prepare_instance(work / "instance", base_url, apple, database_url=db_url)
        verify = str(instance.ca_file)
        gateway = apple.gateway().start()
        env = harness.server_env(
            {
                "home": instance.home,
                "database_url": db_url,
                "redis_url": args.redis,
                "queue_prefix": prefix,
                "apns_host": "127.0.0.1",
                "apns_port": gateway.port,
                "apns_ca_file": apple.ca_file,
                "auto_migrate": "false",
                "log_level": "WARNING",
            }
        )
        log = (work / "servers.log").open("ab")
        serve = ["serve", "--port", str(port), "--workers", str(args.web_workers)]
        processes.append(harness.spawn([*serve, "--threads", str(args.threads)], env, log, work))
        for index in range(args.rq_workers):
            worker = ["worker", "--name", f"{prefix}-{index}"]
            processes.append(harness.spawn(worker, env, log, work))
        harness.wait_ready(base_url, verify, processes[0])
        sampler = harness.MemorySampler([p.pid for p in processes]).start()

        status_line(f"generating {args.devices} device keys...")
        keys = generate_keys(args.devices, processes=args.key_processes)
        options = FleetOptions(
            devices=args.devices,
            macos_share=args.macos_share,
            notnow_rate=args.notnow_rate,
            error_rate=args.error_rate,
            notnow_retry_seconds=1.0,
            threads=args.client_threads,
        )
        fleet = Fleet(base_url, options, verify=verify, apns=gateway)
        done = [0]

        def progress(step: int) -> None:
            done[0] += step
            if done[0] % 25 == 0 or done[0] == args.devices:
                status_line(f"enrolling {done[0]}/{args.devices}")

        enroll = fleet.enroll_all(instance.token, keys=keys, progress=progress)
        status_line("")
        admin = AdminClient(base_url, instance.api_key, verify=verify)
        fleet.wait_quiet(60)  # sessions triggered by enrollment-time pushes, if any
        before = fleet.stats.count("connect", "authenticate", "token_update")
        steady_started = time.perf_counter()
        sent: list[str] = []
        for number, round_ in enumerate(ROUNDS, 1):
            replies = [admin.send_command(cmd, filter=flt) for cmd, flt in round_]
            uuids = {r["command_uuid"] for r in replies}
            sent += uuids
            expected = sum(len(r["targets"]) for r in replies)
            push_everyone(admin, fleet, args.client_threads)
            wait_answered(fleet, uuids, expected, args.timeout, f"round {number}/{len(ROUNDS)}")
        fleet.wait_quiet(args.timeout)
        steady = time.perf_counter() - steady_started
        requests = fleet.stats.count("connect", "authenticate", "token_update") - before
        sampler.stop()
        lost, counts, targets = account(admin, sent)
        report(args, enroll, fleet, requests, steady, lost, counts, targets, sampler)
        admin.close()
        return 0 if (lost == 0 and fleet.stats.total_errors() == 0 and not enroll.failed) else 1
    finally:
        if fleet is not None:
            fleet.close()
        for process in processes:
            harness.stop(process)
        scratch.close()
        client = redis.Redis.from_url(args.redis)
        for key in client.scan_iter(f"*{prefix}*", count=1000):
            client.delete(key)
        if args.keep:
            print(f"kept {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)


def push_everyone(admin: AdminClient, fleet: Fleet, threads: int) -> None:
    """POST /devices/<udid>/push for every enrolled device (what a console's "sync" does)."""
    with ThreadPoolExecutor(min(8, threads)) as pool:
        list(pool.map(lambda d: admin.push(d.udid), [d for d in fleet.devices if d.enrolled]))


def wait_answered(fleet: Fleet, uuids: set[str], expected: int, timeout: float, label: str) -> None:
    """Until every target has a final (not NotNow) answer to every command of this round."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        final = sum(
            1
            for d in fleet.devices
            for u, (_kind, status) in list(d.answered.items())
            if u in uuids and status != "NotNow"
        )
        status_line(f"{label}: {final}/{expected} final answers, {fleet.active} devices busy")
        if final >= expected:
            break
        time.sleep(0.5)
    status_line("")


def account(admin: AdminClient, sent: list[str]) -> tuple[int, dict[str, int], int]:
    """Commands lost: targets of our commands without a final status in the server's records."""
    totals: dict[str, int] = {}
    for command_uuid in sent:
        for status, count in admin.command_status(command_uuid)["counts"].items():
            totals[status] = totals.get(status, 0) + count
    targets = sum(totals.values())
    return targets - sum(v for k, v in totals.items() if k in FINAL), totals, targets


def report(args, enroll, fleet, requests, steady, lost, counts, targets, sampler) -> None:
    stats = fleet.stats
    mib = 1024
    print(f"devices                 {args.devices} ({args.macos_share:.0%} macOS)")
    print(f"server                  gunicorn {args.web_workers}x{args.threads} threads, "
          f"{args.rq_workers} RQ worker(s), PostgreSQL, Redis")  # fmt: skip
    print(f"enrolled                {enroll.enrolled} in {enroll.seconds:.1f}s "
          f"= {enroll.per_second:.1f} enrollments/s (failed {enroll.failed})")  # fmt: skip
    for name, kinds in (
        ("enrollment requests", ("enroll_profile", "scep", "authenticate", "token_update")),
        ("connect requests", ("connect",)),
    ):
        s = stats.summary(*kinds)
        print(f"{name:<24}{s['count']} p50 {s['p50_ms']} ms p99 {s['p99_ms']} ms max {s['max_ms']}")
    print(f"steady state            {requests} check-in/connect requests in {steady:.1f}s "
          f"= {requests / steady:.0f} requests/s")  # fmt: skip
    print(f"pushes received         {stats.events['push_received']} "
          f"(sessions {stats.events['sessions']})")  # fmt: skip
    print(f"commands queued         {targets} to devices: {counts}")
    print(f"commands lost           {lost}")
    print(f"device answers          {dict(sorted(stats.answers.items()))}")
    print(f"errors                  {stats.total_errors()} {dict(stats.errors)}")
    print(f"server peak RSS         total {sampler.peak_total_kib / mib:.0f} MiB; per process "
          f"{sorted(round(v / mib) for v in sampler.peak_by_pid.values())} MiB")  # fmt: skip


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--macos-share", type=float, default=0.3)
    parser.add_argument("--notnow-rate", type=float, default=0.05)
    parser.add_argument("--error-rate", type=float, default=0.02)
    parser.add_argument("--web-workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8, help="threads per web worker")
    parser.add_argument("--rq-workers", type=int, default=1)
    parser.add_argument("--client-threads", type=int, default=24)
    parser.add_argument("--key-processes", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument("--postgres", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (logs)")
    return parser.parse_args()


if __name__ == "__main__":
    raise SystemExit(main())
