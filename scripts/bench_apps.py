#!/usr/bin/env python3
"""Benchmark assigning one App Store app to every device of a large fleet (issue #17).

Seeds N enrolled devices (mdmserver.testing.seed: iPhones, Macs and iPads), starts the local
Apps and Books stand-in (mdmserver.testing.fake_vpp) and times, through the apps service and
the real Apps and Books client over HTTP:

1. the app created;
2. a license assigned to every serial, in batches of ``MAX_SERIALS`` (1,000) as the service
   sends them, each event followed until Apple's stand-in reports it COMPLETE;
3. the app assigned (required) to all devices through the apps service, whose roll-out
   queues the install for every licensed device (what the background job runs: a command per
   platform and batch, every device's state ``pending``, their pushes requested);
4. for comparison, the per-device path (a ManagedApplicationList answer reconciled) on a
   sample, extrapolated to the fleet.

    python scripts/bench_apps.py                           # 100,000 devices, local PostgreSQL
    python scripts/bench_apps.py --devices 20000 --sqlite  # on SQLite instead
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import func, select

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mdmserver.apps.reconcile import AppReconciler
from mdmserver.apps.rollout import Rollouts
from mdmserver.apps.service import MAX_SERIALS, AppsService
from mdmserver.service.wakes import WakingStorage
from mdmserver.storage.sql.app_store import AppFiles, AppStore
from mdmserver.storage.sql.device_store import SQLStorage
from mdmserver.storage.sql.engine import make_engine
from mdmserver.storage.sql.schema import app_device_states, command_queue, devices, vpp_licenses
from mdmserver.testing.fake_vpp import FakeVpp, make_token, serve_fake_vpp
from mdmserver.testing.scratch import scratch_database
from mdmserver.testing.seed import seed_fleet

ADAM_ID = "361309726"  # Pages


class _NotDeclared:
    """No DDM here: every device takes the app by command."""

    def is_declared(self, app_id: str) -> bool:
        return False


SERVER_URL = "https://mdm.example.com"


@contextmanager
def database(args: argparse.Namespace) -> Iterator[str]:
    if args.sqlite:
        with tempfile.TemporaryDirectory(prefix="mdm-bench-apps-") as folder:
            yield f"sqlite:///{folder}/mdm.db"
    else:
        with scratch_database(args.url, "mdm_bench_apps") as url:
            yield url


def phase(name: str, started: float, timings: dict[str, float]) -> float:
    took = time.perf_counter() - started
    timings[name] = took
    print(f"{name:<34} {took:8.2f} s", flush=True)
    return time.perf_counter()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=100_000)
    parser.add_argument("--sqlite", action="store_true", help="SQLite instead of PostgreSQL")
    parser.add_argument(
        "--url",
        default=os.environ.get(
            "MDM_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
        ),
        help="a PostgreSQL server where a throwaway database may be created",
    )
    parser.add_argument("--sample", type=int, default=500, help="devices reconciled one by one")
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # the stand-in's request lines
    backend = "SQLite" if args.sqlite else "PostgreSQL"
    print(f"{args.devices:,} devices on {backend}")

    token = make_token("Bench Org", days=300)
    fake = FakeVpp(token, pending_polls=0)  # Apple's delay is not what is measured here
    fake.add_asset(ADAM_ID, total=args.devices)
    timings: dict[str, float] = {}
    with (
        database(args) as url,
        serve_fake_vpp(fake) as vpp_url,
        tempfile.TemporaryDirectory(prefix="mdm-bench-apps-home-") as home,
    ):
        started = time.perf_counter()
        seed_fleet(url, args.devices)
        engine = make_engine(url)
        storage = SQLStorage(engine)
        try:
            store = AppStore(engine)
            woken: list[str] = []
            waking = WakingStorage(storage, woken.extend)  # the push requests, counted
            rollouts = Rollouts(store, waking, SERVER_URL, _NotDeclared(), background=None)
            service = AppsService(
                store,
                AppFiles(Path(home) / "apps"),
                server_url=SERVER_URL,
                token_file=Path(home) / "vpp.token",
                vpp_url=vpp_url,
                roll_out=rollouts,
            )
            service.install_token(token)
            with engine.connect() as conn:
                serials = list(conn.execute(select(devices.c.serial_number)).scalars())
            started = phase("seed", started, timings)

            app = service.create(
                {"name": "pages", "kind": "app_store", "bundle_id": "com.apple.Pages",
                 "adam_id": ADAM_ID}
            )  # fmt: skip
            started = phase("create", started, timings)

            for start in range(0, len(serials), MAX_SERIALS):
                batch = serials[start : start + MAX_SERIALS]
                event = service.assign_licenses(app.id, {"serials": batch}, wait=60)
                assert event["status"] == "COMPLETE", event
            started = phase(f"licenses ({MAX_SERIALS:,} per event)", started, timings)
            with engine.connect() as conn:
                licensed = conn.execute(
                    select(func.count()).select_from(vpp_licenses)
                    .where(vpp_licenses.c.status == "assigned")
                ).scalar()  # fmt: skip
            assert licensed == args.devices, licensed

            done = service.assign(app.id, {"target": "all", "behaviour": "required"})
            started = phase("assign + roll-out queued", started, timings)
            assert done.rollout is not None and not done.rollout.scheduled
            rollout = done.rollout
            with engine.connect() as conn:
                queued = conn.execute(
                    select(func.count()).select_from(command_queue)
                    .where(command_queue.c.status == "queued")
                ).scalar()  # fmt: skip
                pending = conn.execute(
                    select(func.count()).select_from(app_device_states)
                    .where(app_device_states.c.status == "pending")
                ).scalar()  # fmt: skip
            total = sum((rollout.queued or {}).values())
            assert total == queued == pending == len(woken) == args.devices, (rollout, queued)
            print(f"  {queued:,} installs queued ({rollout.queued}), {pending:,} states pending,"
                  f" {len(woken):,} pushes requested")  # fmt: skip
            work = sum(timings.values()) - timings["seed"]
            print(f"{'total (assign + licenses + queue)':<34} {work:8.2f} s")

            # The per-device path, for comparison: a device's empty ManagedApplicationList
            # reconciled (the apps it lacks queued), on devices the rollout did not cover.
            other = service.create(
                {"name": "keynote", "kind": "app_store", "bundle_id": "com.apple.Keynote",
                 "adam_id": ADAM_ID}
            )  # fmt: skip
            store.assign(other.id, "all", "required")  # no roll-out: the per-device path
            reconciler = AppReconciler(store, storage, SERVER_URL)
            sample = [f"BENCH-{i:08d}" for i in range(min(args.sample, args.devices))]
            one = time.perf_counter()
            for device_id in sample:
                reconciler.reconcile(device_id, {"com.apple.Pages": "Managed"})
            one = (time.perf_counter() - one) / max(len(sample), 1)
            print(f"{'per-device reconcile (sample)':<34} {one * 1000:8.2f} ms/device "
                  f"(x {args.devices:,} = {one * args.devices:.0f} s)")  # fmt: skip
        finally:
            storage.dispose()
            engine.dispose()


if __name__ == "__main__":
    main()
