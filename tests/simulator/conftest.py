"""A real server (the app over HTTP, jobs in-process) whose pushes go to the APNs stand-in,
with an instance made by the simulator's own setup code (init, push cert, token, API key)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mdmserver.simulator.admin import AdminClient
from mdmserver.simulator.apple import FakeApple
from mdmserver.simulator.fleet import Fleet, FleetOptions
from mdmserver.simulator.instance import Instance, prepare_instance
from mdmserver.testing.fake_apns import FakeAPNs


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """create_app takes over the package logger; give it back for later tests."""
    logger = logging.getLogger("mdmserver")
    saved = (logger.level, logger.propagate, list(logger.handlers))
    yield
    logger.setLevel(saved[0])
    logger.propagate = saved[1]
    logger.handlers[:] = saved[2]


@pytest.fixture(scope="session")
def apple(tmp_path_factory: pytest.TempPathFactory) -> FakeApple:
    return FakeApple.create(tmp_path_factory.mktemp("apple"))


@pytest.fixture(scope="session")
def gateway(apple: FakeApple) -> Iterator[FakeAPNs]:
    with apple.gateway() as server:
        yield server


@dataclass
class SimServer:
    url: str
    instance: Instance
    admin: AdminClient
    gateway: FakeAPNs
    trust_key: str = ""  # a key of scope trust, for /api/v1/trust/...

    def fleet(self, **options: Any) -> Fleet:
        fleet = Fleet(self.url, FleetOptions(**options), verify=False, apns=self.gateway)
        report = fleet.enroll_all(self.instance.token)
        assert report.failed == 0, report.failures
        return fleet


@pytest.fixture
def sim_overrides() -> dict[str, Any]:
    """Extra server settings; a test module overrides this fixture to change them."""
    return {}


@pytest.fixture
def sim_server(
    tmp_path: Path,
    database_url: str,
    apple: FakeApple,
    gateway: FakeAPNs,
    sim_overrides: dict[str, Any],
) -> Iterator[SimServer]:
    from mdmserver.app import create_app
    from mdmserver.config import load_config
    from mdmserver.testing.http import serve
    from mdmserver.web.runtime import runtime

    home = tmp_path / "instance"
    instance = prepare_instance(home, "https://mdm.example.test", apple, database_url=database_url)
    config = load_config(
        environ={},
        overrides={
            "home": home,
            "database_url": database_url,
            "apns_host": "127.0.0.1",
            "apns_port": gateway.port,
            "apns_ca_file": str(apple.ca_file),
            "log_level": "WARNING",
            **sim_overrides,
        },
    )
    app = create_app(config)
    try:
        with serve(app) as url:
            admin = AdminClient(url, instance.api_key, verify=False)
            trust = runtime(app).admin.api_keys.create("sim-trust", "trust", actor="test").key
            yield SimServer(url, instance, admin, gateway, trust)
            admin.close()
    finally:
        runtime(app).close()
