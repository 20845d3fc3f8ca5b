"""Benchmark: sign N distinct profiles through the job layer; prints profiles/s.

Each job is the real task (``profiles.sign``): it signs a batch with the profile-signing
certificate and stores the signatures in the cache table. ``--backend inprocess`` (default)
runs the jobs on the in-process backend's thread pool; ``--backend rq`` enqueues them on Redis
and starts ``--workers`` RQ worker processes in burst mode. Every signature is then checked to
be in the cache, and one is verified with ``openssl cms -verify``.

    python scripts/bench_profile_signing.py --count 10000
    python scripts/bench_profile_signing.py --count 10000 --backend rq --workers 2
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from cryptography import x509
from cryptography.x509.oid import NameOID
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from mdmserver.config import load_config
from mdmserver.crypto.ca import (
    create_ca,
    dump_cert_pem,
    dump_key_pem,
    generate_key,
    issue_certificate,
)
from mdmserver.jobs.context import JobContext
from mdmserver.jobs.inprocess import InProcessBackend
from mdmserver.jobs.tasks import TASKS
from mdmserver.profiles.builder import build
from mdmserver.profiles.signing import SIGN_QUEUE, digest_of, register_tasks, sign_jobs
from mdmserver.profiles.template import load_templates
from mdmserver.storage.sql import migrate
from mdmserver.storage.sql.engine import make_engine
from mdmserver.storage.sql.schema import profile_signatures

_WORKER = """
from mdmserver.jobs.tasks import TASKS
from mdmserver.profiles.signing import register_tasks
register_tasks(TASKS)  # until mdmserver.jobs.tasks lists profiles.sign itself
from rq import Queue, Worker
from mdmserver.jobs.rq_backend import connect
conn = connect({url!r})
worker = Worker([Queue({queue!r}, connection=conn)], connection=conn)
worker.work(burst=True, logging_level="WARNING")
"""


def make_home(home: Path) -> None:
    ca_cert, ca_key = create_ca("bench CA")
    key = generate_key("rsa")
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bench profile signing")])
    cert = issue_certificate(ca_cert, ca_key, key.public_key(), name, lifetime=timedelta(days=2))
    (home / "signing.pem").write_bytes(dump_cert_pem(cert) + dump_cert_pem(ca_cert))
    (home / "signing.key").write_bytes(dump_key_pem(key))
    (home / "ca.pem").write_bytes(dump_cert_pem(ca_cert))


def stored(engine: Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(profile_signatures)).scalar() or 0


def _wait_for(engine: Engine, count: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while stored(engine) < count and time.monotonic() < deadline:
        time.sleep(0.02)


def contents(count: int) -> list[bytes]:
    """Distinct, valid passcode profiles (the organisation name makes each one unique)."""
    template = load_templates()["passcode"]
    return [
        build(template.render({"organization": f"Org {i}"}), f"com.bench.p{i}").content
        for i in range(count)
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=100, help="profiles per job")
    parser.add_argument("--backend", choices=("inprocess", "rq"), default="inprocess")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--database-url", default="", help="default: SQLite in a temp dir")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="bench-sign-"))
    make_home(home)
    url = args.database_url or f"sqlite:///{home / 'bench.db'}"
    os.environ.update(MDM_HOME=str(home), MDM_DATABASE_URL=url, MDM_LOG_LEVEL="WARNING")
    engine = make_engine(url)
    migrate.upgrade(engine)
    items = contents(args.count)
    jobs = sign_jobs(items, args.batch)
    register_tasks(TASKS)

    started = time.perf_counter()
    if args.backend == "inprocess":
        backend = InProcessBackend(workers=args.workers)
        context = JobContext(load_config(), engine, backend)
        backend.bind(lambda name, job_args: TASKS[name](context, *job_args))
        backend.submit(jobs)
        _wait_for(engine, args.count, timeout=600)  # close() would cancel queued jobs
        backend.close()
    else:
        from mdmserver.jobs.rq_backend import RQBackend

        prefix = f"bench{os.getpid()}"
        os.environ.update(MDM_REDIS_URL=args.redis_url, MDM_QUEUE_PREFIX=prefix)
        backend_rq = RQBackend(args.redis_url, prefix)
        backend_rq.submit(jobs)
        code = _WORKER.format(url=args.redis_url, queue=f"{prefix}:{SIGN_QUEUE}")
        workers = [subprocess.Popen([sys.executable, "-c", code]) for _ in range(args.workers)]
        for worker in workers:
            worker.wait()
        backend_rq.close()
    elapsed = time.perf_counter() - started

    done = stored(engine)
    with engine.connect() as conn:
        sample = conn.execute(
            select(profile_signatures.c.signed).where(
                profile_signatures.c.digest == digest_of(items[-1])
            )
        ).scalar()
    if done != args.count or sample is None:
        print(f"FAILED: {done} of {args.count} signatures stored", file=sys.stderr)
        return 1
    verified = subprocess.run(
        ["openssl", "cms", "-verify", "-inform", "DER", "-CAfile", str(home / "ca.pem")],
        input=sample,
        capture_output=True,
        check=False,
    )
    if verified.returncode != 0 or verified.stdout != items[-1]:
        print(f"FAILED: openssl does not verify: {verified.stderr.decode()}", file=sys.stderr)
        return 1
    print(
        f"{args.count} profiles signed via {args.backend} ({args.workers} workers,"
        f" {args.batch}/job) in {elapsed:.2f}s: {args.count / elapsed:.0f} profiles/s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
