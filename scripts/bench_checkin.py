#!/usr/bin/env python3
"""Benchmark the device command loop under gunicorn: N signed devices doing
Idle -> command -> Acknowledged cycles, then a final Idle (empty body).

Prints requests/s and p50/p99 latency. Every request is signed with a real CMS signature
(pre-computed, as the bodies are known in advance) and verified by the server.

    python scripts/bench_checkin.py --db sqlite --devices 50 --commands 20
    python scripts/bench_checkin.py --db postgresql --devices 50 --commands 20
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
import uuid
from pathlib import Path

from sqlalchemy import create_engine, text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mdmserver.config import load_config
from mdmserver.crypto.ca import create_ca, dump_cert_pem
from mdmserver.protocol.commands import new_command
from mdmserver.storage import migrate
from mdmserver.storage.engine import make_engine
from mdmserver.storage.sql import SQLStorage
from mdmserver.testing.device import VirtualDevice

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


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--postgres-url", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--devices", type=int, default=50)
    parser.add_argument("--commands", type=int, default=20, help="commands per device")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="mdm-bench-"))
    ca_cert, ca_key = create_ca("bench CA", key_type="ec")
    (home / "ca.pem").write_bytes(dump_cert_pem(ca_cert))
    admin = None
    if args.db == "postgresql":
        db_name = f"mdm_bench_{uuid.uuid4().hex[:8]}"
        admin = create_engine(
            args.postgres_url.replace("postgresql://", "postgresql+psycopg://"),
            isolation_level="AUTOCOMMIT",
        )
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{db_name}"'))
        database_url = args.postgres_url.rsplit("/", 1)[0] + f"/{db_name}"
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
    server = subprocess.Popen(
        [
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
        ],
        env=env,
    )
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
                    uuid = plistlib.loads(payload)["CommandUUID"]
                    ack = device.result("Acknowledged", uuid)
                    status, payload = await conn.request(ack.path, ack.body, ack.headers)

        asyncio.run(enroll_all())
        plans = []
        for device in devices:
            plan = []
            for _ in range(args.commands):
                command = new_command("DeviceLock", {"Message": "benchmark"})
                storage.enqueue(command, [device.udid])
                plan.append(
                    (command.command_uuid, device.result("Acknowledged", command.command_uuid))
                )
            plans.append(plan)

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
        undelivered = sum(len(storage.queue(d.udid)) for d in devices)
        print(f"database          {args.db}")
        print(
            f"server            gunicorn {args.workers} workers x {args.threads} threads (gthread)"
        )
        print(f"devices           {args.devices}, {args.commands} commands each")
        print(f"requests          {total} signed, in {elapsed:.2f} s")
        print(f"throughput        {total / elapsed:,.0f} requests/s")
        print(f"latency p50       {statistics.median(latencies) * 1000:.2f} ms")
        print(f"latency p99       {latencies[int(total * 0.99) - 1] * 1000:.2f} ms")
        print(f"errors            {len(errors)}")
        print(f"commands pending  {undelivered} (must be 0)")
        if errors:
            print("first errors:", errors[:3])
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
        engine.dispose()
        if admin is not None:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)'))
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
