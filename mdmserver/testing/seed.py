"""A seeded fleet straight in SQL, for console benchmarks and screenshots: devices with a
platform mix, OS versions, inventory facts, compliance states with failing rules and history,
and last-seen times spread over 30 days. Deterministic (a fixed random seed)."""

from __future__ import annotations

import json
import random
import sys
import time
from datetime import UTC, datetime, timedelta

from sqlalchemy import insert

from mdmserver.storage.sql import migrate
from mdmserver.storage.sql.engine import make_engine
from mdmserver.storage.sql.schema import (
    compliance_history,
    compliance_state,
    devices,
    enrollments,
    inventory,
)

PRODUCTS = [
    ("iPhone15,2", "iPhone", "iOS", 0.65),
    ("Mac14,2", "MacBookAir", "macOS", 0.25),
    ("iPad13,1", "iPad", "iPadOS", 0.10),
]
VERSIONS = {
    "iOS": ["17.4", "17.5", "18.0", "18.1"],
    "macOS": ["14.4", "14.5", "15.0"],
    "iPadOS": ["17.4", "18.0"],
}
FAILING = [
    {"rule": "passcode_present", "outcome": "fail", "reason": "no passcode is set"},
    {"rule": "max_checkin_age", "outcome": "fail", "reason": "not seen for 9 days"},
]


PASSING = [
    {"rule": "passcode_present", "outcome": "pass", "reason": "passcode set"},
    {"rule": "max_checkin_age", "outcome": "pass", "reason": "checked in recently"},
]


def seed_fleet(url: str, n: int) -> str:
    """N devices with enrollments, inventory and compliance; returns one device id."""
    engine = make_engine(url)
    migrate.upgrade(engine)
    rng = random.Random(7)
    now = datetime.now(UTC)
    started = time.perf_counter()
    for start in range(0, n, 5000):
        rows_d, rows_e, rows_i, rows_c, rows_h = [], [], [], [], []
        for i in range(start, min(n, start + 5000)):
            product, model, platform, _ = rng.choices(PRODUCTS, [p[3] for p in PRODUCTS])[0]
            udid = f"BENCH-{i:08d}"
            seen = now - timedelta(hours=rng.random() * 24 * 30)
            version = rng.choice(VERSIONS[platform])
            rows_d.append(
                {
                    "id": udid,
                    "serial_number": f"C02B{i:08d}",
                    "model": model,
                    "product_name": product,
                    "os_version": version,
                    "device_name": f"{model} {i:05d}",
                    "enrolled": True,
                    "user_enrollment": False,
                    "created_at": now,
                    "updated_at": now,
                    "last_seen_at": seen,
                    "topic": "com.apple.mgmt.bench",
                }
            )
            rows_e.append(
                {
                    "id": udid,
                    "device_id": udid,
                    "type": "device",
                    "status": "active",
                    "push_token": "ab" * 32,
                    "push_magic": "magic",
                    "created_at": now,
                    "updated_at": now,
                    "user_short_name": f"user{i}",
                }
            )
            rows_i.append(
                {
                    "device_id": udid,
                    "platform": platform,
                    "os_version": version,
                    "supervised": rng.random() < 0.7,
                    "passcode_present": True,
                    "battery_level": rng.random(),
                    "updated_at": seen,
                }
            )
            roll = rng.random()
            state = "compliant" if roll < 0.8 else "noncompliant" if roll < 0.95 else "unknown"
            results = FAILING[: 1 + i % 2] if state == "noncompliant" else PASSING
            rows_c.append(
                {
                    "device_id": udid,
                    "state": state,
                    "reasons": json.dumps([r["reason"] for r in results if r["outcome"] != "pass"]),
                    "results": json.dumps(results),
                    "evaluated_at": seen,
                    "changed_at": seen,
                }
            )
            if state != "unknown":
                rows_h.append(
                    {
                        "device_id": udid,
                        "at": seen,
                        "previous_state": None,
                        "state": state,
                        "reasons": rows_c[-1]["reasons"],
                    }
                )
        with engine.begin() as conn:
            for table, rows in (
                (devices, rows_d),
                (enrollments, rows_e),
                (inventory, rows_i),
                (compliance_state, rows_c),
                (compliance_history, rows_h),
            ):
                conn.execute(insert(table), rows)
        print(f"  seeded {min(n, start + 5000):>7,} devices", end="\r", file=sys.stderr)
    print(f"  seeded {n:,} devices in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    engine.dispose()
    return f"BENCH-{n // 2:08d}"
