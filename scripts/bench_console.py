#!/usr/bin/env python3
"""Console page times on a seeded fleet: dashboard, device list (with filters, a search, a deep
page) and one device's page, on SQLite and PostgreSQL side by side.

Seeds N devices in SQL (platform mix, OS versions, inventory, compliance states with failing
rules, last-seen times over 30 days), signs a console user in through the login form, then
times each page through the real app (Flask's test client: the server's own time, templates
included, no network). Prints the median and 95th percentile of R loads per page.

    python scripts/bench_console.py                    # 100,000 devices, both databases
    python scripts/bench_console.py --devices 20000 --db sqlite
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mdmserver.app import create_app
from mdmserver.config import load_config
from mdmserver.testing.scratch import scratch_database
from mdmserver.testing.seed import seed_fleet
from mdmserver.web.runtime import runtime

PASSWORD = "benchmark-password-1"


def measure(url: str, home: Path, device_id: str, repeat: int) -> dict[str, tuple[float, float]]:
    os.environ["MDM_HOME"] = str(home)
    config = load_config(overrides={"database_url": url, "home": home, "log_level": "WARNING"})
    app = create_app(config)
    try:
        admin = runtime(app).admin
        assert admin is not None
        admin.console_users.create("bench", "admin", actor="bench", password=PASSWORD)
        admin.console_users.change_password("bench", PASSWORD, actor="bench")
        client = app.test_client()
        client.environ_base["wsgi.url_scheme"] = "https"
        page = client.get("/login", base_url="https://localhost").get_data(as_text=True)
        token = re.search(r'name="csrf_token" value="([^"]+)"', page)
        assert token is not None
        reply = client.post(
            "/login",
            base_url="https://localhost",
            data={"name": "bench", "password": PASSWORD, "csrf_token": token.group(1)},
        )
        assert reply.status_code == 302, reply.status_code
        paths = [
            "/",
            "/devices",
            "/devices?compliance=noncompliant&platform=iOS",
            "/devices?supervised=false&sort=last_seen&order=desc",
            "/devices?q=C02B0004",
            "/devices?page=1000",
            f"/devices/{device_id}",
        ]
        pages = {("device page" if p.startswith("/devices/") else p): p for p in paths}
        out = {}
        for name, path in pages.items():
            times = []
            for _ in range(repeat):
                started = time.perf_counter()
                reply = client.get(path, base_url="https://localhost")
                times.append((time.perf_counter() - started) * 1000)
                assert reply.status_code == 200, (path, reply.status_code)
            times.sort()
            out[name] = (statistics.median(times), times[max(0, int(len(times) * 0.95) - 1)])
        return out
    finally:
        runtime(app).close()


@contextmanager
def database(kind: str, pg_server: str, folder: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{folder / 'bench.db'}"
        return
    with scratch_database(pg_server, "mdm_bench_console") as url:
        yield url


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument(
        "--url",
        default=os.environ.get(
            "MDM_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
        ),
    )
    args = parser.parse_args()
    kinds = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
    results: dict[str, dict[str, Any]] = {}
    for kind in kinds:
        with tempfile.TemporaryDirectory() as tmp, database(kind, args.url, Path(tmp)) as url:
            print(f"{kind}: seeding {args.devices:,} devices", file=sys.stderr)
            device_id = seed_fleet(url, args.devices)
            results[kind] = measure(url, Path(tmp) / "home", device_id, args.repeat)
    print(
        f"\nconsole page times, {args.devices:,} devices, {args.repeat} loads each "
        "(median / p95, ms)"
    )
    names = list(next(iter(results.values())))
    print(f"{'page':<52}" + "".join(f"{k:>22}" for k in kinds))
    for name in names:
        cells = "".join(
            f"{results[k][name][0]:>12.1f} / {results[k][name][1]:>7.1f}" for k in kinds
        )
        print(f"{name:<52}{cells}")


if __name__ == "__main__":
    main()
