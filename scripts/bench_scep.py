#!/usr/bin/env python3
"""Benchmark certificate issuing through SCEP over HTTP: N PKCSReqs to a gunicorn server.

The instance folder is made by the same code as `mdmserver init`; N one-time challenges are
created through the service layer (as N profile downloads would, minus the profile signing);
the PKIOperation bodies are built before the clock starts (client keys come from a small pool:
an RSA key generation per request would measure the client). Every answer is then parsed as a
device would and must be a SUCCESS CertRep for the requester's key.

    python scripts/bench_scep.py --db sqlite --count 1000
    python scripts/bench_scep.py --db postgresql --count 1000
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from datetime import timedelta
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mdmserver.config import load_config
from mdmserver.crypto.ca import generate_key
from mdmserver.enrollment.instance import init_instance, load_instance_keys
from mdmserver.enrollment.profile import EnrollmentSettings
from mdmserver.enrollment.service import EnrollmentProfiles, EnrollmentTokens
from mdmserver.scep.message import PkiStatus
from mdmserver.storage.sql import migrate
from mdmserver.storage.sql.engine import make_engine
from mdmserver.storage.sql.enrollment_store import EnrollmentStore
from mdmserver.testing.scep_client import (
    build_pkcs_req,
    make_csr,
    parse_cert_rep,
    self_signed_for_scep,
)
from mdmserver.testing.scratch import scratch_database

TOPIC = "com.apple.mgmt.External.00000000-0000-0000-0000-0000000scep"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--postgres-url", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--count", type=int, default=1000, help="certificates to issue")
    parser.add_argument("--clients", type=int, default=8, help="concurrent HTTP clients")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--key-pool", type=int, default=16, help="distinct client RSA keys")
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="mdm-bench-scep-")) / "instance"
    init_instance(home, "https://mdm.bench.test", topic=TOPIC)
    scratch = ExitStack()
    if args.db == "postgresql":
        database_url = scratch.enter_context(scratch_database(args.postgres_url, "mdm_bench"))
    else:
        database_url = f"sqlite:///{home / 'mdm.db'}"
    env = {
        **os.environ,
        "MDM_HOME": str(home),
        "MDM_DATABASE_URL": database_url,
        "MDM_LOG_LEVEL": "WARNING",
    }
    config = load_config(environ=env)
    engine = make_engine(config.resolved_database_url)
    migrate.upgrade(engine)
    store = EnrollmentStore(engine)
    keys = load_instance_keys(home)
    assert keys is not None
    profiles = EnrollmentProfiles(
        store,
        keys,
        EnrollmentSettings(config.server_url, TOPIC, keys.ca_cert),
        challenge_lifetime=timedelta(hours=1),
    )

    print(f"preparing {args.count} challenges and PKCSReqs ({args.db}) ...", flush=True)
    token = EnrollmentTokens(store).create(uses=args.count, tags=["bench"]).info
    pool = [generate_key("rsa") for _ in range(args.key_pool)]
    signers = [self_signed_for_scep(key, f"bench-{i}") for i, key in enumerate(pool)]
    jobs = []
    for index in range(args.count):
        key, signer = pool[index % len(pool)], signers[index % len(pool)]
        challenge = profiles.new_challenge(token_id=token.id)
        csr = make_csr(key, f"bench device {index}", challenge)
        body, transaction_id, nonce = build_pkcs_req(csr, signer, key, keys.ca_cert)
        jobs.append((body, key, transaction_id, nonce))

    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable, "-m", "gunicorn",
            "--workers", str(args.workers),
            "--worker-class", "gthread",
            "--threads", str(args.threads),
            "--bind", f"127.0.0.1:{port}",
            "--log-level", "warning",
            "mdmserver.app:create_app()",
        ],
        env=env,
    )  # fmt: skip
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        url = f"http://127.0.0.1:{port}/scep?operation=PKIOperation"
        sessions: dict[int, requests.Session] = {}

        def post(body: bytes) -> tuple[int, bytes]:
            import threading

            session = sessions.setdefault(threading.get_ident(), requests.Session())
            reply = session.post(url, data=body, timeout=60)
            return reply.status_code, reply.content

        post(b"warm-up")  # let the workers import and load keys before timing
        start = time.perf_counter()
        with ThreadPoolExecutor(args.clients) as executor:
            replies = list(executor.map(post, [job[0] for job in jobs]))
        elapsed = time.perf_counter() - start

        issued = 0
        for (status, content), (_, key, transaction_id, nonce) in zip(replies, jobs, strict=True):
            if status != 200:
                continue
            result = parse_cert_rep(
                content, keys.ca_cert, key, transaction_id=transaction_id, sender_nonce=nonce
            )
            if result.status == PkiStatus.SUCCESS and result.certificate is not None:
                issued += 1
        recorded = len(store.list_tokens()) and store.list_tokens()[0].uses
        print(f"database          {args.db}")
        print(
            f"server            gunicorn {args.workers} workers x {args.threads} threads (gthread)"
        )
        print(f"clients           {args.clients} concurrent, over HTTP")
        print(f"certificates      {issued} issued of {args.count}, in {elapsed:.2f} s")
        print(f"throughput        {issued / elapsed:,.1f} certificates/s")
        print(f"token uses        {recorded} (must equal issued)")
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
        engine.dispose()
        scratch.close()
        shutil.rmtree(home.parent, ignore_errors=True)


if __name__ == "__main__":
    main()
