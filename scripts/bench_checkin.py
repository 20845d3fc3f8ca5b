#!/usr/bin/env python3
"""Benchmark the device command loop: N signed devices doing Idle -> command -> Acknowledged
cycles, served by `mdmserver serve` (plain HTTP, as the Procfile's web line) or, with
--server gunicorn, by the gunicorn gthread line the project used before (for comparison).

Prints requests/s and p50/p99 latency. Every request is signed with a real CMS signature
(pre-computed, as the bodies are known in advance) and verified by the server.

The load comes from wrk (`apt install wrk`) when it is installed: one wrk thread per device
replays that device's signed requests for --seconds (scripts/bench_checkin.lua) and checks each
Idle gets the expected command. A Python client shares the 2 cores with the server and costs
about as much CPU per request as the server does, so it measures itself as much as the server;
it remains as a fallback (--driver python), running every device through all its commands and
a final empty Idle.

    python scripts/bench_checkin.py --db postgresql --devices 50 --seconds 10
    python scripts/bench_checkin.py --db sqlite --server gunicorn
    python scripts/bench_checkin.py --db sqlite --driver python --devices 50 --commands 20
"""

from __future__ import annotations

import argparse
import asyncio
import os
import plistlib
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine, insert

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mdmserver.config import load_config
from mdmserver.crypto.ca import create_ca, dump_cert_pem
from mdmserver.protocol.commands import new_command
from mdmserver.storage.sql import migrate
from mdmserver.storage.sql.device_store import SQLStorage
from mdmserver.storage.sql.engine import make_engine
from mdmserver.storage.sql.schema import command_queue
from mdmserver.storage.sql.schema import commands as commands_table
from mdmserver.testing.cpu import cpu_by_pid, postgres_backends, process_tree
from mdmserver.testing.device import SignedRequest, VirtualDevice
from mdmserver.testing.scratch import scratch_database

TOPIC = "com.apple.mgmt.External.00000000-0000-0000-0000-00000000bench"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def make_devices(count: int, ca_cert, ca_key) -> list[VirtualDevice]:
    from datetime import timedelta

    from cryptography import x509
    from cryptography.x509.oid import NameOID

    from mdmserver.crypto.ca import generate_key, issue_certificate

    devices = []
    for index in range(count):
        key = generate_key("ec")  # the devices sign a lot; EC keeps the client side cheap
        cert = issue_certificate(
            ca_cert,
            ca_key,
            key.public_key(),
            x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"bench-{index}")]),
            lifetime=timedelta(days=1),
            client_auth=True,
        )
        devices.append(VirtualDevice(certificate=cert, key=key, topic=TOPIC))
    return devices


class Connection:
    """A minimal HTTP/1.1 keep-alive client: the load generator must cost less than the server."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        head = f"PUT {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {len(body)}\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
        self.writer.write(head.encode() + body)
        assert self.reader is not None
        status_line = await self.reader.readline()
        status = int(status_line.split()[1])
        length, close = 0, False
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.decode().partition(":")
            if name.lower() == "content-length":
                length = int(value)
            elif name.lower() == "connection" and value.strip().lower() == "close":
                close = True
        payload = await self.reader.readexactly(length) if length else b""
        if close:
            self.writer.close()
            self.writer = None
        return status, payload


class CpuMeter:
    """CPU spent by the server's processes and the database's backends while the load runs.

    Figures per request are independent of whatever else shares the machine, unlike requests/s.
    """

    def __init__(self, server_pid: int, database_url: str | None) -> None:
        self.server_pid = server_pid
        self.database_url = database_url  # PostgreSQL's: its backends serve the server

    def _backends(self) -> list[int]:
        if not self.database_url:
            return []
        engine = make_engine(self.database_url)
        try:
            return postgres_backends(engine)
        finally:
            engine.dispose()

    def __enter__(self) -> CpuMeter:
        self.server_before = cpu_by_pid(process_tree(self.server_pid))
        self.db_before = cpu_by_pid(self._backends())
        self.generator_before = _own_cpu()
        return self

    def __exit__(self, *exc: object) -> None:
        server_after = cpu_by_pid(process_tree(self.server_pid))
        db_after = cpu_by_pid(self._backends())
        self.server = sum(v - self.server_before.get(k, 0.0) for k, v in server_after.items())
        self.database_cpu = sum(v - self.db_before.get(k, 0.0) for k, v in db_after.items())
        self.load_generator = _own_cpu() - self.generator_before


def _own_cpu() -> float:
    """This process and its finished children (wrk): the load generator, either way."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


@dataclass
class Report:
    requests: int
    elapsed: float
    p50: float
    p99: float
    errors: list[str]


def queue_plans(
    engine: Engine, devices: list[VirtualDevice], commands: int
) -> list[list[tuple[str, SignedRequest]]]:
    """Seed DeviceLock commands in bulk (the admin path is scripts/bench_enqueue.py's subject);
    return each device's signed acknowledgements, in queue order."""
    now = datetime.now(UTC)
    command_rows, queue_rows, plans = [], [], []
    for device in devices:
        plan = []
        for _ in range(commands):
            command = new_command("DeviceLock", {"Message": "benchmark"})
            uuid_ = command.command_uuid
            command_rows.append(
                {
                    "uuid": uuid_,
                    "request_type": command.request_type,
                    "plist": command.to_plist(),
                    "created_at": now,
                }
            )
            queue_rows.append(
                {"enrollment_id": device.udid, "command_uuid": uuid_, "status": "queued"}
                | {"priority": 0, "created_at": now}
            )
            plan.append((uuid_, device.result("Acknowledged", uuid_)))
        plans.append(plan)
    with engine.begin() as conn:
        conn.execute(insert(commands_table), command_rows)
        conn.execute(insert(command_queue), queue_rows)
    return plans


def _wrk_commands(args: argparse.Namespace) -> int:
    # Enough for 5,000 requests/s (two per command) without a device running dry.
    return int(args.seconds * 5000 / (2 * args.devices)) + 1


def run_wrk(
    port: int,
    devices: list[VirtualDevice],
    plans: list[list[tuple[str, SignedRequest]]],
    seconds: int,
    home: Path,
) -> Report:
    """One wrk thread and connection per device, each replaying Idle, ack, Idle, ack, ..."""
    folder = home / "wrk"
    folder.mkdir()
    for index, (device, plan) in enumerate(zip(devices, plans, strict=True)):
        idle = device.idle()
        with open(folder / f"{index}.seq", "wb") as out:
            for command_uuid, ack in plan:
                for request, expect in ((idle, command_uuid), (ack, "")):
                    raw = _raw_request(port, request)
                    out.write(f"{len(raw)} {expect}\n".encode() + raw)
    count = str(len(devices))
    script = str(Path(__file__).with_suffix(".lua"))
    argv = [
        "wrk",
        "-t",
        count,
        "-c",
        count,
        "-d",
        f"{seconds:g}s",
        "--timeout",
        "10s",
        "-s",
        script,
    ]
    completed = subprocess.run(
        [*argv, f"http://127.0.0.1:{port}", "--", str(folder)],
        capture_output=True,
        text=True,
        check=True,
    )
    line = next(x for x in completed.stdout.splitlines() if x.startswith("WRK "))
    fields = {k: int(v) for k, v in (item.split("=") for item in line.split()[1:])}
    errors = [f"{fields['errors']} non-200 answers"] if fields["errors"] else []
    if fields["mismatches"]:
        errors.append(f"{fields['mismatches']} Idle polls got another command than expected")
    if fields["exhausted"]:
        errors.append(f"{fields['exhausted']} devices ran out of commands: raise --commands")
    errors += [x for x in completed.stderr.splitlines() if x.startswith("HTTP")]
    return Report(
        requests=fields["requests"],
        elapsed=fields["duration_us"] / 1e6,
        p50=fields["p50_us"] / 1e6,
        p99=fields["p99_us"] / 1e6,
        errors=errors,
    )


def _raw_request(port: int, request: SignedRequest) -> bytes:
    head = f"PUT {request.path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
    head += f"Content-Length: {len(request.body)}\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in request.headers.items()) + "\r\n"
    return head.encode() + request.body


def run_python(
    port: int, devices: list[VirtualDevice], plans: list[list[tuple[str, SignedRequest]]]
) -> Report:
    latencies: list[float] = []
    errors: list[str] = []

    async def load() -> float:
        start = time.perf_counter()
        await asyncio.gather(
            *(
                run_device(port, d, p, latencies, errors)
                for d, p in zip(devices, plans, strict=True)
            )
        )
        return time.perf_counter() - start

    elapsed = asyncio.run(load())
    latencies.sort()
    total = len(latencies)
    return Report(
        total, elapsed, statistics.median(latencies), latencies[int(total * 0.99) - 1], errors
    )


async def run_device(port, device, plan, latencies, errors) -> None:
    conn = Connection(port)
    idle = device.idle()
    for command_uuid, ack in plan:
        for request, expect in ((idle, command_uuid), (ack, None)):
            start = time.perf_counter()
            status, payload = await conn.request(request.path, request.body, request.headers)
            latencies.append(time.perf_counter() - start)
            if status != 200:
                errors.append(f"{status} {payload[:200]!r}")
            elif expect and plistlib.loads(payload)["CommandUUID"] != expect:
                errors.append("unexpected command")
    start = time.perf_counter()
    status, payload = await conn.request(idle.path, idle.body, idle.headers)
    latencies.append(time.perf_counter() - start)
    if status != 200 or payload:
        errors.append(f"final idle: {status} {payload[:100]!r}")


def server_command(args: argparse.Namespace, port: int) -> list[str]:
    if args.server == "gunicorn":
        return [
            sys.executable,
            "-m",
            "gunicorn",
            "--workers",
            str(args.workers),
            "--worker-class",
            "gthread",
            "--threads",
            str(args.threads),
            "--bind",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
            "--keep-alive",
            "30",
            "mdmserver.app:create_app()",
        ]
    return [
        sys.executable,
        "-c",
        "from mdmserver.cli import main; main()",
        "serve",
        "--no-init",
        "--no-tls",
        "--port",
        str(port),
        "--workers",
        str(args.workers),
        "--threads",
        str(args.threads),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--postgres-url", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--devices", type=int, default=50)
    parser.add_argument(
        "--commands",
        type=int,
        default=0,
        help="commands per device (default: 20 for python, enough for --seconds for wrk)",
    )
    parser.add_argument("--driver", choices=["auto", "wrk", "python"], default="auto")
    parser.add_argument("--seconds", type=int, default=10, help="how long wrk runs")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--server", choices=["mdmserver", "gunicorn"], default="mdmserver")
    args = parser.parse_args()
    driver = args.driver
    if driver == "auto":
        driver = "wrk" if shutil.which("wrk") else "python"
    elif driver == "wrk" and not shutil.which("wrk"):
        parser.error("wrk is not installed (apt install wrk)")

    home = Path(tempfile.mkdtemp(prefix="mdm-bench-"))
    ca_cert, ca_key = create_ca("bench CA", key_type="ec")
    (home / "ca.pem").write_bytes(dump_cert_pem(ca_cert))
    scratch = ExitStack()
    if args.db == "postgresql":
        database_url = scratch.enter_context(scratch_database(args.postgres_url, "mdm_bench"))
    else:
        database_url = f"sqlite:///{home / 'mdm.db'}"
    env = {
        **os.environ,
        "MDM_HOME": str(home),
        "MDM_DATABASE_URL": database_url,
        "MDM_PUSH_TOPICS": TOPIC,
        "MDM_LOG_LEVEL": "WARNING",
    }
    config = load_config(environ=env)
    engine = make_engine(config.resolved_database_url)
    migrate.upgrade(engine)
    storage = SQLStorage(engine)

    print(
        f"preparing {args.devices} devices x {args.commands} commands ({args.db}) ...", flush=True
    )
    devices = make_devices(args.devices, ca_cert, ca_key)
    port = free_port()
    server = subprocess.Popen(server_command(args, port), env=env)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)

        async def enroll_all() -> None:
            for device in devices:
                conn = Connection(port)
                for request in (device.authenticate(), device.token_update()):
                    status, payload = await conn.request(
                        request.path, request.body, request.headers
                    )
                    assert status == 200, payload
                # Answer what enrollment itself queued (inventory, profiles) before timing.
                idle = device.idle()
                status, payload = await conn.request(idle.path, idle.body, idle.headers)
                while payload:
                    queued = plistlib.loads(payload)["CommandUUID"]
                    ack = device.result("Acknowledged", queued)
                    status, payload = await conn.request(ack.path, ack.body, ack.headers)

        asyncio.run(enroll_all())

        commands = args.commands or (20 if driver == "python" else _wrk_commands(args))
        print(f"queueing {commands} commands per device and signing the results ...", flush=True)
        plans = queue_plans(engine, devices, commands)
        with CpuMeter(server.pid, database_url if args.db == "postgresql" else None) as cpu:
            if driver == "wrk":
                report = run_wrk(port, devices, plans, args.seconds, home)
            else:
                report = run_python(port, devices, plans)
        undelivered = sum(len(storage.queue(d.udid)) for d in devices)
        print(f"database          {args.db}")
        kind = "gunicorn (gthread)" if args.server == "gunicorn" else "mdmserver serve --no-tls"
        print(f"server            {kind}, {args.workers} workers x {args.threads} threads")
        print(f"load generator    {driver}")
        print(f"devices           {args.devices}, {commands} commands queued each")
        print(f"requests          {report.requests} signed, in {report.elapsed:.2f} s")
        print(f"throughput        {report.requests / report.elapsed:,.0f} requests/s")
        print(f"latency p50       {report.p50 * 1000:.2f} ms")
        print(f"latency p99       {report.p99 * 1000:.2f} ms")
        per_request = 1e6 / report.requests
        print(
            f"CPU per request   server {cpu.server * per_request:.0f} µs"
            f" + database {cpu.database_cpu * per_request:.0f} µs"
            f" + load generator {cpu.load_generator * per_request:.0f} µs"
        )
        server_side = (cpu.server + cpu.database_cpu) * per_request
        print(
            f"CPU ceiling       {os.cpu_count()} cores / server+database CPU per request"
            f" = {os.cpu_count() * 1e6 / server_side:,.0f} requests/s"
        )
        print(f"load average      {os.getloadavg()[0]:.2f} (other work on the machine)")
        print(f"errors            {len(report.errors)}")
        if driver == "python":
            print(f"commands pending  {undelivered} (must be 0)")
        else:
            print(f"commands pending  {undelivered} (left when the clock stopped)")
        if report.errors:
            print("first errors:", report.errors[:3])
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
        engine.dispose()
        scratch.close()
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
