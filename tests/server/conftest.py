"""The real server as operators run it: ``mdmserver serve`` (TLS, the embedded default) and
the Procfile's ``web:`` line (plain HTTP behind a proxy), as child processes of this checkout."""

from __future__ import annotations

import logging
import subprocess
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mdmserver.admin import build_admin
from mdmserver.app import create_app
from mdmserver.config import load_config
from mdmserver.enrollment.instance import init_instance
from mdmserver.enrollment.service import EnrollmentTokens
from mdmserver.simulator.harness import free_port, server_env, spawn, stop, wait_ready
from mdmserver.storage.sql.device_store import SQLStorage
from mdmserver.storage.sql.engine import make_engine
from mdmserver.storage.sql.enrollment_store import EnrollmentStore
from mdmserver.testing.http import serve
from mdmserver.testing.pki import TEST_TOPIC
from mdmserver.web.runtime import runtime

REPO = Path(__file__).resolve().parent.parent.parent
KINDS = ("serve", "procfile")


def procfile_line(name: str) -> str:
    for line in (REPO / "Procfile").read_text().splitlines():
        key, _, command = line.partition(":")
        if key.strip() == name:
            return command.strip()
    raise AssertionError(f"the Procfile has no {name}: line")


@dataclass
class Served:
    kind: str
    url: str
    port: int
    tls: bool
    home: Path
    process: subprocess.Popen
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture
def instance_home(tmp_path: Path) -> Path:
    home = tmp_path / "instance"
    init_instance(home, "https://localhost:8443", topic=TEST_TOPIC)
    return home


@pytest.fixture
def start_server(
    tmp_path: Path, database_url: str, instance_home: Path
) -> Iterator[Callable[..., Served]]:
    """``start(kind, **settings)``: the server running, with MDM_* ``settings``."""
    started: list[Served] = []

    def start(kind: str, workers: int = 2, **settings: Any) -> Served:
        port = free_port()
        env = server_env(
            {
                "home": instance_home,
                "database_url": database_url,
                "auto_migrate": "true",
                "push_topics": TEST_TOPIC,
                "log_level": "WARNING",
                **settings,
            }
        )
        log = tmp_path / f"{kind}-{port}.log"
        out = log.open("wb")
        if kind == "serve":
            args = ["serve", "--port", str(port), "--workers", str(workers), "--no-init"]
            process = spawn(args, env, out, tmp_path)
            tls = True
        else:
            # The Procfile's own line, run by a shell as a process manager would.
            env.update(PORT=str(port), HOST="127.0.0.1", WEB_CONCURRENCY=str(workers))
            command = "exec " + procfile_line("web")
            process = subprocess.Popen(
                ["bash", "-c", command],
                env=env,
                cwd=tmp_path,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            tls = False
        out.close()
        url = f"{'https' if tls else 'http'}://127.0.0.1:{port}"
        served = Served(kind, url, port, tls, instance_home, process, log)
        started.append(served)
        try:
            wait_ready(url, False, process)
        except RuntimeError as exc:
            raise AssertionError(f"{exc}\n{served.output()}") from None
        return served

    yield start
    for served in started:
        stop(served.process)


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """create_app takes over the package logger; give it back for later tests."""
    logger = logging.getLogger("mdmserver")
    saved = (logger.level, logger.propagate, list(logger.handlers))
    yield
    logger.setLevel(saved[0])
    logger.propagate = saved[1]
    logger.handlers[:] = saved[2]


@pytest.fixture
def serve_app(database_url: str, instance_home: Path) -> Iterator[Callable[..., str]]:
    """``serve_app(**settings)``: one more app instance on the same instance and database,
    in this process over real HTTP (another "worker": it shares nothing in memory)."""
    apps: list[Any] = []
    with ExitStack() as servers:

        def start(**settings: Any) -> str:
            config = load_config(
                environ={},
                overrides={
                    "home": instance_home,
                    "database_url": database_url,
                    "auto_migrate": True,
                    "log_level": "WARNING",
                    **settings,
                },
            )
            app = create_app(config)
            apps.append(app)
            return servers.enter_context(serve(app))

        yield start
    for app in apps:
        runtime(app).close()


def enrollment_token(database_url: str) -> str:
    engine = make_engine(database_url)
    try:
        return EnrollmentTokens(EnrollmentStore(engine)).create().token
    finally:
        engine.dispose()


def admin_api_key(database_url: str) -> str:
    engine = make_engine(database_url)
    try:
        return build_admin(engine, SQLStorage(engine)).api_keys.create("tests", actor="cli:t").key
    finally:
        engine.dispose()
