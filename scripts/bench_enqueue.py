#!/usr/bin/env python3
"""Benchmark queueing one command to every enrolled device through the admin service layer.

Seeds N enrolled iPhones straight in SQL (one INSERT ... SELECT per table), then times
``Admin.commands.send`` (target resolution, catalog validation, one UUID queued to all),
by filter and by an explicit list of device ids. Uses a throwaway PostgreSQL database.

    python scripts/bench_enqueue.py                      # 100,000 devices, local PostgreSQL
    python scripts/bench_enqueue.py --devices 20000 --url postgresql://postgres@127.0.0.1/test
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mdmserver.admin import build_admin
from mdmserver.storage.sql import migrate
from mdmserver.storage.sql.device_store import SQLStorage
from mdmserver.storage.sql.engine import make_engine
from mdmserver.testing.scratch import scratch_database

_SEED_DEVICES = """
INSERT INTO devices (id, serial_number, user_enrollment, model, product_name, os_version,
                     build_version, topic, enrolled, created_at, updated_at, last_seen_at)
SELECT 'BENCH-' || lpad(g::text, 8, '0'), 'SN' || g, false, 'iPhone', 'iPhone15,2', '17.4',
       '21E219', 'com.apple.mgmt.bench', true, now(), now(), now()
FROM generate_series(1, :n) AS g
"""
_SEED_ENROLLMENTS = """
INSERT INTO enrollments (id, device_id, type, topic, push_token, push_magic, unlock_token,
                         status, created_at, updated_at)
SELECT id, id, 'device', topic, md5(id) || md5(id), 'magic', NULL, 'active', now(), now()
FROM devices
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=100_000)
    parser.add_argument(
        "--url",
        default=os.environ.get(
            "MDM_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
        ),
        help="a PostgreSQL server where a throwaway database may be created",
    )
    args = parser.parse_args()

    with scratch_database(args.url, "mdm_bench") as url:
        engine = make_engine(url)
        storage = SQLStorage(engine)
        try:
            migrate.upgrade(engine)
            started = time.perf_counter()
            with engine.begin() as conn:
                conn.execute(text(_SEED_DEVICES), {"n": args.devices})
                conn.execute(text(_SEED_ENROLLMENTS))
                conn.execute(text("ANALYZE"))
            seeded = time.perf_counter() - started
            print(f"seeded {args.devices:,} enrolled devices in {seeded:.2f} s")

            admin = build_admin(engine, storage)
            command = {"RequestType": "DeviceInformation", "Queries": ["OSVersion"]}
            started = time.perf_counter()
            sent = admin.commands.send(
                {"filter": {"platform": "iOS"}, "command": command}, actor="bench"
            )
            by_filter = time.perf_counter() - started
            print(f"filter send:   {len(sent.targets):,} targets queued in {by_filter:.2f} s")

            ids = list(sent.targets)
            started = time.perf_counter()
            sent = admin.commands.send({"targets": ids, "command": command}, actor="bench")
            by_list = time.perf_counter() - started
            print(f"explicit send: {len(sent.targets):,} targets queued in {by_list:.2f} s")
            with engine.connect() as conn:
                rows = conn.execute(text("SELECT count(*) FROM command_queue")).scalar()
            assert rows == 2 * args.devices, rows
            print(f"target < 5 s: {'met' if max(by_filter, by_list) < 5 else 'MISSED'}")
        finally:
            storage.dispose()
            engine.dispose()


if __name__ == "__main__":
    main()
