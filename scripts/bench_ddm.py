"""Benchmark Declarative Device Management: declaration-items answers/s and status reports
ingested/s for a fleet of devices with 20 declarations each, on SQLite and PostgreSQL side by
side in one run.

    python scripts/bench_ddm.py [--devices 10000] [--declarations 20] [--requests N]
                                [--postgres-url URL | --no-postgres]

Each request goes through the whole device path in process (werkzeug test client, no
socket): the WSGI device endpoints, Mdm-Signature verification (a real detached CMS signature
by the device's own EC identity), the certificate binding check (CertAuth), then the DDM
service and its SQL. Requests are signed before the clock starts. Devices, their enrollments
and bound certificates are bulk-inserted; 19 configurations and one activation naming them
are assigned to all devices, so every channel's set holds 20 declarations (plus the server's
two: the default status subscriptions and their activation).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import insert
from werkzeug.test import Client

from mdmserver.app import create_app
from mdmserver.config import load_config
from mdmserver.crypto.ca import fingerprint_sha256
from mdmserver.storage.sql.schema import cert_bindings, ddm_channels, devices, enrollments
from mdmserver.testing.device import VirtualDevice
from mdmserver.testing.pki import TEST_TOPIC, Pki
from mdmserver.testing.scratch import check_server, scratch_database
from mdmserver.web.runtime import runtime

PASSCODE = "com.apple.configuration.passcode.settings"
TEST = "com.apple.configuration.management.test"
CHUNK = 1000


def fleet(pki: Pki, count: int) -> list[VirtualDevice]:
    started = time.perf_counter()
    out = []
    for index in range(count):
        cert, key = pki.identity(f"bench-{index}", "ec")
        out.append(
            VirtualDevice(certificate=cert, key=key, topic=TEST_TOPIC, udid=f"BENCH-{index:06d}")
        )
    print(f"  {count} EC identities in {time.perf_counter() - started:.1f} s", flush=True)
    return out


def populate(app: Any, fleet_: list[VirtualDevice], declarations: int) -> None:
    rt = runtime(app)
    now = datetime.now(UTC)
    with rt.engine.begin() as conn:
        for start in range(0, len(fleet_), CHUNK):
            chunk = fleet_[start : start + CHUNK]
            conn.execute(
                insert(devices),
                [
                    {"id": d.udid, "serial_number": f"S{d.udid[-6:]}", "user_enrollment": False,
                     "product_name": "iPhone15,2", "model": "iPhone", "os_version": "17.4",
                     "topic": TEST_TOPIC, "enrolled": True, "created_at": now, "updated_at": now}
                    for d in chunk
                ],
            )  # fmt: skip
            conn.execute(
                insert(enrollments),
                [
                    {"id": d.udid, "device_id": d.udid, "type": "device", "topic": TEST_TOPIC,
                     "push_token": "ab" * 32, "push_magic": "magic", "status": "active",
                     "created_at": now, "updated_at": now}
                    for d in chunk
                ],
            )  # fmt: skip
            conn.execute(
                insert(cert_bindings),
                [
                    {"device_id": d.udid, "fingerprint": fingerprint_sha256(d.certificate),
                     "not_after": d.certificate.not_valid_after_utc, "bound_at": now}
                    for d in chunk
                ],
            )  # fmt: skip
    service = runtime(app).ddm.service
    names = []
    for index in range(declarations - 1):
        name = f"bench.config.{index:02d}"
        if index % 2:
            body = {"Type": PASSCODE, "Payload": {"MinimumLength": 4 + index % 10}}
        else:
            body = {"Type": TEST, "Payload": {"Echo": f"declaration {index}"}}
        service.put(name, body)
        names.append(name)
    service.put("bench.activation", {"Type": "com.apple.activation.simple",
                                     "Payload": {"StandardConfigurations": names}})  # fmt: skip
    service.assign("bench.activation", "all")
    with rt.engine.begin() as conn:  # DDM on for every device, as enrollment turns it on
        for start in range(0, len(fleet_), CHUNK):
            conn.execute(
                insert(ddm_channels),
                [
                    {"enrollment_id": d.udid, "device_id": d.udid, "enabled_at": now}
                    for d in fleet_[start : start + CHUNK]
                ],
            )


def edit_and_sync(app: Any) -> tuple[float, int]:
    """One admin edit of a configuration every device has: seconds, and channels synced."""
    started = time.perf_counter()
    saved = runtime(app).ddm.service.put(
        "bench.config.01", {"Type": PASSCODE, "Payload": {"MinimumLength": 12}}
    )
    return time.perf_counter() - started, saved.synced


def _request(device: VirtualDevice, endpoint: str, data: bytes | None = None) -> Any:
    message: dict[str, Any] = {"MessageType": "DeclarativeManagement", "UDID": device.udid,
                               "Endpoint": endpoint}  # fmt: skip
    if data is not None:
        message["Data"] = data
    return device.checkin(message)


def _report(index: int) -> bytes:
    return json.dumps(
        {
            "StatusItems": {
                "passcode": {"is-compliant": index % 3 != 0, "is-present": True},
                "device": {
                    "operating-system": {"version": "17.4", "build-version": "21E219"},
                    "model": {"identifier": "iPhone15,2"},
                },
                "softwareupdate": {"install-state": "none"},
            },
            "Errors": [],
            "FullReport": index % 2 == 0,
        }
    ).encode()


def timed(client: Client, requests_: list[Any], check: Any) -> tuple[float, float]:
    """Requests per wall-clock second, and per second of this process's CPU (the fair figure
    on a shared machine: it leaves out time spent waiting for a core)."""
    started, cpu = time.perf_counter(), time.process_time()
    for signed in requests_:
        reply = client.put(signed.path, data=signed.body, headers=signed.headers)
        check(reply)
    wall, used = time.perf_counter() - started, time.process_time() - cpu
    return len(requests_) / wall, len(requests_) / used


def run(label: str, database_url: str, fleet_: list[VirtualDevice], pki: Pki, args: Any) -> str:
    home = Path(tempfile.mkdtemp(prefix="bench-ddm-"))
    overrides: dict[str, Any] = {
        "home": home,
        "database_url": database_url,
        "push_topics": (TEST_TOPIC,),
        "ca_cert_file": str(pki.ca_file),
        "auto_migrate": True,
        "log_level": "WARNING",
    }
    app = create_app(load_config(environ={}, overrides=overrides))
    try:
        started = time.perf_counter()
        populate(app, fleet_, args.declarations)
        print(f"  {label}: populated in {time.perf_counter() - started:.1f} s", flush=True)
        edit_seconds, synced = edit_and_sync(app)
        client = Client(app)
        sample = fleet_[: args.requests]
        items = [_request(d, "declaration-items") for d in sample]
        status = [_request(d, "status", _report(i)) for i, d in enumerate(sample)]

        def items_ok(reply: Any) -> None:
            assert reply.status_code == 200, reply.get_data(as_text=True)
            body = json.loads(reply.get_data())
            assert len(body["Declarations"]["Configurations"]) == args.declarations - 1 + 1

        def status_ok(reply: Any) -> None:
            assert reply.status_code == 200 and reply.get_data() == b"", reply.get_data()

        items_rate, items_cpu = timed(client, items, items_ok)
        status_rate, status_cpu = timed(client, status, status_ok)
        return (
            f"{label}: {len(sample)} of {len(fleet_)} devices x {args.declarations} declarations"
            f" (one process, one thread): declaration-items {items_rate:,.0f} answers/s"
            f" ({items_cpu:,.0f} per CPU-second of the server process), status reports"
            f" {status_rate:,.0f} ingested/s ({status_cpu:,.0f} per CPU-second); one edit synced"
            f" {synced} channels (a DeclarativeManagement command each) in {edit_seconds:.1f} s"
        )
    finally:
        runtime(app).close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--declarations", type=int, default=20)
    parser.add_argument("--requests", type=int, default=0, help="devices that ask (default all)")
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get(
            "MDM_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
        ),
    )
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()
    args.requests = args.requests or args.devices
    logging.disable(logging.INFO)
    pki = Pki(Path(tempfile.mkdtemp(prefix="bench-ddm-pki-")), key_type="ec")
    fleet_ = fleet(pki, args.devices)
    lines = []
    sqlite_home = Path(tempfile.mkdtemp(prefix="bench-ddm-sqlite-"))
    lines.append(run("sqlite", f"sqlite:///{sqlite_home / 'mdm.db'}", fleet_, pki, args))
    print(lines[-1], flush=True)
    if not args.no_postgres:
        check_server(args.postgres_url)
        with scratch_database(args.postgres_url, "mdm_bench_ddm") as url:
            lines.append(run("postgresql", url, fleet_, pki, args))
            print(lines[-1], flush=True)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
