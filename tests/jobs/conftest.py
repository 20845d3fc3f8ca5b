"""Background jobs against real services: the APNs stand-in (real TLS, real aioapns), real
Redis, real RQ worker processes, and a real HTTP receiver for webhooks."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import redis

from mdmserver.testing.apns_pki import Identity, issue_push_cert, issue_server_cert, make_ca
from mdmserver.testing.fake_apns import FakeAPNs
from mdmserver.testing.pki import TEST_TOPIC

REPO = Path(__file__).resolve().parents[2]
REDIS_URL = os.environ.get("MDM_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture(scope="session")
def apple_ca() -> Identity:
    return make_ca("Fake Apple Root CA (jobs)")


@pytest.fixture(scope="session")
def push_identity(apple_ca: Identity) -> Identity:
    """A push certificate for the topic the virtual devices enroll with."""
    return issue_push_cert(apple_ca, TEST_TOPIC)


@pytest.fixture(scope="session")
def fake_apns(apple_ca: Identity) -> Iterator[FakeAPNs]:
    server = issue_server_cert(apple_ca, ("127.0.0.1", "localhost"))
    with FakeAPNs(ca_pem=apple_ca.cert_pem, cert_pem=server.cert_pem, key_pem=server.key_pem) as s:
        yield s


@pytest.fixture(scope="session")
def apple_ca_file(apple_ca: Identity, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("apple") / "apple-ca.pem"
    path.write_bytes(apple_ca.cert_pem)
    return path


@pytest.fixture
def push_settings(
    tmp_path: Path, push_identity: Identity, fake_apns: FakeAPNs, apple_ca_file: Path
) -> dict[str, Any]:
    """Settings aiming pushes at the stand-in, with the push certificate installed in home."""
    home = tmp_path / "instance"
    home.mkdir(parents=True, exist_ok=True)
    (home / "push.pem").write_bytes(push_identity.cert_pem)
    (home / "push.key").write_bytes(push_identity.key_pem)
    return {
        "home": home,
        "apns_host": "127.0.0.1",
        "apns_port": fake_apns.port,
        "apns_ca_file": str(apple_ca_file),
        "retry_base_seconds": 1,
    }


@pytest.fixture
def redis_available() -> str:
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except redis.exceptions.ConnectionError as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"Redis not reachable at {REDIS_URL}: {exc}")
    return REDIS_URL


@pytest.fixture
def queue_prefix(redis_available: str) -> Iterator[str]:
    """A private queue namespace per test; its keys are deleted afterwards."""
    prefix = f"mdmtest-{uuid.uuid4().hex[:10]}"
    yield prefix
    client = redis.Redis.from_url(redis_available)
    for key in client.scan_iter(f"*{prefix}*", count=1000):
        client.delete(key)
    client.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def worker_env(settings: dict[str, Any]) -> dict[str, str]:
    """MDM_* variables for a worker subprocess importing this checkout's code."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MDM_")}
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env["MDM_LOG_LEVEL"] = "INFO"
    for name, value in settings.items():
        if isinstance(value, tuple | list):
            value = ",".join(value)
        env[f"MDM_{name.upper()}"] = str(value)
    return env


@dataclass
class WorkerProcess:
    process: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture
def start_worker(tmp_path: Path) -> Iterator[Callable[[dict[str, Any]], WorkerProcess]]:
    """Start ``mdmserver worker`` (RQ SimpleWorker + scheduler) as a real subprocess."""
    workers: list[WorkerProcess] = []

    def start(settings: dict[str, Any]) -> WorkerProcess:
        log = tmp_path / f"worker-{len(workers)}.log"
        handle = log.open("wb")
        process = subprocess.Popen(
            [sys.executable, "-c", "import sys; from mdmserver.cli import main; main()", "worker"],
            cwd=REPO,
            env=worker_env(settings),
            stdout=handle,
            stderr=subprocess.STDOUT,
        )
        handle.close()
        worker = WorkerProcess(process, log)
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        worker.stop()


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    at: float


@dataclass
class WebhookReceiver:
    """A real HTTP server thread; answers ``status`` (settable) to every POST."""

    status: int = 200
    received: list[Received] = field(default_factory=list)
    attempts: int = 0
    cond: threading.Condition = field(default_factory=threading.Condition)
    url: str = ""

    def wait_for(self, predicate: Callable[[list[Received]], bool], timeout: float = 20) -> None:
        with self.cond:
            if not self.cond.wait_for(lambda: predicate(self.received), timeout):
                raise TimeoutError(f"webhook receiver: got {len(self.received)} events")

    def events(self) -> list[dict[str, Any]]:
        with self.cond:
            return [json.loads(r.body) for r in self.received]


@pytest.fixture
def webhook_receiver() -> Iterator[WebhookReceiver]:
    state = WebhookReceiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with state.cond:
                state.attempts += 1
                status = state.status
                if status < 300:
                    state.received.append(Received(dict(self.headers), body, time.time()))
                state.cond.notify_all()
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_port}/hook"
    yield state
    server.shutdown()
    server.server_close()


def wait_until(predicate: Callable[[], Any], timeout: float = 20.0, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what or predicate}")
