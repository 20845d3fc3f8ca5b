#!/usr/bin/env python3
"""Push N enrollments end to end: request_push -> outbox -> Redis/RQ -> ONE `mdmserver worker`
process -> aioapns -> the APNs stand-in in another process. Prints pushes/s.

    python scripts/bench_push.py                          # 100,000 enrollments, SQLite
    python scripts/bench_push.py -n 20000 --batch 2000
    python scripts/bench_push.py --database-url postgresql://postgres@127.0.0.1:5432/bench

Needs Redis (--redis-url, default the local one; a private queue prefix is used and cleaned).
The clock starts at request_push and stops when every enrollment's push outcome is stored.
Besides pushes/s it prints each process's CPU time per push (the worker, the stand-in, this
process's dispatcher, Redis, and PostgreSQL's backends for the bench database): CPU per push
holds still when other work shares the machine, where pushes/s does not.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import secrets
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import redis  # noqa: E402
from sqlalchemy import func, insert, select  # noqa: E402

from mdmserver.jobs.backend import PUSH_QUEUE  # noqa: E402
from mdmserver.jobs.dispatcher import Dispatcher  # noqa: E402
from mdmserver.jobs.rq_backend import RQBackend  # noqa: E402
from mdmserver.storage.sql import migrate  # noqa: E402
from mdmserver.storage.sql.engine import make_engine  # noqa: E402
from mdmserver.storage.sql.outbox_store import OutboxStore  # noqa: E402
from mdmserver.storage.sql.push_store import PushStore  # noqa: E402
from mdmserver.storage.sql.schema import devices, enrollments, inventory, push_status  # noqa: E402
from mdmserver.testing.apns_pki import issue_push_cert, issue_server_cert, make_ca  # noqa: E402
from mdmserver.testing.cpu import cpu_by_pid, postgres_backends, process_cpu  # noqa: E402
from mdmserver.testing.pki import TEST_TOPIC  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--enrollments", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=1000, help="enrollments per push job")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--database-url", default="", help="default: SQLite in a temp dir")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        ca = make_ca()
        server_identity = issue_server_cert(ca)
        push = issue_push_cert(ca, TEST_TOPIC)
        files = {
            "ca": ca.cert_pem,
            "cert": server_identity.cert_pem,
            "key": server_identity.key_pem,
        }
        for name, data in files.items():
            (home / name).write_bytes(data)
        (home / "push.pem").write_bytes(push.cert_pem)
        (home / "push.key").write_bytes(push.key_pem)
        database_url = args.database_url or f"sqlite:///{home / 'bench.db'}"
        engine = make_engine(database_url)
        migrate.upgrade(engine)
        ids = seed(engine, args.enrollments)

        stand_in = subprocess.Popen(
            [sys.executable, str(ROOT / "scripts" / "fake_apns.py"), "--quiet", "--port", "0"]
            + [f"--{name}={home / name}" for name in files],
            stdout=subprocess.PIPE,
            text=True,
        )
        prefix = f"bench-{uuid.uuid4().hex[:8]}"
        worker = None
        try:
            assert stand_in.stdout is not None
            port = json.loads(stand_in.stdout.readline())["port"]
            env = {k: v for k, v in os.environ.items() if not k.startswith("MDM_")}
            env.update(
                PYTHONPATH=str(ROOT),
                MDM_HOME=str(home),
                MDM_DATABASE_URL=database_url,
                MDM_REDIS_URL=args.redis_url,
                MDM_QUEUE_PREFIX=prefix,
                MDM_APNS_HOST="127.0.0.1",
                MDM_APNS_PORT=str(port),
                MDM_APNS_CA_FILE=str(home / "ca"),
                MDM_PUSH_BATCH_SIZE=str(args.batch),
                MDM_REPUSH_INTERVAL_SECONDS="86400",
            )
            log_path = home / "worker.log"
            with log_path.open("wb") as log:
                worker = subprocess.Popen(
                    [sys.executable, "-c", "from mdmserver.cli import main; main()", "worker"],
                    cwd=ROOT,
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            backend = RQBackend(args.redis_url, prefix)
            dispatcher = Dispatcher(
                OutboxStore(engine), PushStore(engine), backend, batch_size=args.batch
            )
            warm_up(dispatcher, engine, ids[:50])
            meters = {"worker": worker.pid, "stand-in": stand_in.pid, "bench+dispatcher": 0}
            meters["redis"] = int(redis.Redis.from_url(args.redis_url).info("server")["process_id"])
            result = run(dispatcher, engine, ids[50:], meters)
            print(result + f", cores {os.cpu_count()}")
            print(breakdown(log_path.read_text(errors="replace")))
        finally:
            if worker is not None:
                worker.terminate()
                worker.wait(15)
            stand_in.terminate()
            stand_in.wait(10)
            cleanup(args.redis_url, prefix)
    return 0


def seed(engine, count: int) -> list[str]:
    """Active enrollments with tokens, written straight to the tables (fast).

    Each device was seen and its inventory asked for just now, as for a live fleet; otherwise
    the worker's periodic upkeep (run with the push scan, in the same process) would spend the
    run queueing inventory for "never inventoried" devices and judging "silent" ones stale,
    which is not push work (it cost the worker more CPU than the pushes did).
    """
    now = datetime.now(UTC)
    ids = [str(uuid.uuid4()).upper() for _ in range(count)]
    with engine.begin() as conn:
        for start in range(0, count, 10_000):
            chunk = ids[start : start + 10_000]
            conn.execute(
                insert(devices),
                [
                    {
                        "id": i,
                        "created_at": now,
                        "updated_at": now,
                        "last_seen_at": now,
                        "enrolled": True,
                    }
                    for i in chunk
                ],
            )
            conn.execute(
                insert(enrollments),
                [
                    {
                        "id": i,
                        "device_id": i,
                        "type": "device",
                        "status": "active",
                        "topic": TEST_TOPIC,
                        "push_token": secrets.token_hex(32),
                        "push_magic": str(uuid.uuid4()).upper(),
                        "created_at": now,
                        "updated_at": now,
                    }
                    for i in chunk
                ],
            )
            conn.execute(insert(inventory), [{"device_id": i, "requested_at": now} for i in chunk])
    return ids


def stored(engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(push_status)).scalar_one())


def warm_up(dispatcher: Dispatcher, engine, ids: list[str]) -> None:
    """Let the worker start, connect to APNs and import everything before the clock runs."""
    dispatcher.request(ids)
    deadline = time.monotonic() + 60
    while stored(engine) < len(ids):
        if time.monotonic() > deadline:
            raise SystemExit("the worker did not push the warm-up batch within 60 s")
        time.sleep(0.1)


def run(dispatcher: Dispatcher, engine, ids: list[str], meters: dict[str, int]) -> str:
    before = stored(engine)
    load = os.getloadavg()[0]
    cpu_before = {name: _cpu(pid) for name, pid in meters.items()}
    pg_before = _postgres_cpu(engine)
    started = time.perf_counter()
    dispatcher.request(ids)
    handed = time.perf_counter()
    target = before + len(ids)
    while (done := stored(engine)) < target:
        # Counting push_status scans it: on PostgreSQL every 50 ms that alone was ~100 us of
        # database CPU per push. A 0.2 s poll costs under 1% of a 20 s run in resolution.
        time.sleep(0.2)
    elapsed = time.perf_counter() - started
    cpu = {name: _cpu(pid) - cpu_before[name] for name, pid in meters.items()}
    if pg_before is not None:
        pg_after = _postgres_cpu(engine) or {}
        cpu["postgres"] = sum(t - pg_before.get(pid, 0.0) for pid, t in pg_after.items())
    dispatcher.stop()
    per_push = ", ".join(f"{name} {t / len(ids) * 1e6:.0f}" for name, t in cpu.items())
    return (
        f"{len(ids)} pushes (one worker, queue {PUSH_QUEUE}) in {elapsed:.1f}s: "
        f"{len(ids) / elapsed:,.0f} pushes/s end to end; request+outbox+enqueue "
        f"{handed - started:.2f}s; CPU us/push: {per_push} (total "
        f"{sum(cpu.values()) / len(ids) * 1e6:.0f}); stored {done}; load {load:.2f} before"
    )


def breakdown(log: str) -> str:
    """Where the worker's time went, from its push_batch log lines."""
    batches = [json.loads(line) for line in log.splitlines() if '"event":"push_batch"' in line]
    if not batches:
        return "no push_batch lines in the worker log"
    push_ms = sum(b["ms"] for b in batches)
    pushed = sum(b["enrollments"] for b in batches)
    outcomes = {k: sum(b.get(k, 0) for b in batches) for k in ("delivered", "retry", "rejected")}
    return (
        f"worker: {len(batches)} jobs, {pushed} pushes, push_many {push_ms / 1000:.1f}s "
        f"({pushed / (push_ms / 1000):,.0f} pushes/s inside push_many), outcomes {outcomes}"
    )


def _cpu(pid: int) -> float:
    """User+system CPU seconds of a process (0: this one, including its threads)."""
    if pid == 0:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime
    return process_cpu(pid)


def _postgres_cpu(engine) -> dict[int, float] | None:
    """CPU seconds of each PostgreSQL backend connected to the bench database (None: SQLite)."""
    if engine.dialect.name != "postgresql":
        return None
    return cpu_by_pid(postgres_backends(engine))


def cleanup(url: str, prefix: str) -> None:
    client = redis.Redis.from_url(url)
    for key in client.scan_iter(f"*{prefix}*", count=1000):
        client.delete(key)
    for key in client.scan_iter("rq:job:*", count=1000):
        if re.search(prefix.encode(), client.hget(key, "origin") or b""):
            client.delete(key)


if __name__ == "__main__":
    raise SystemExit(main())
