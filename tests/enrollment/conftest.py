"""An app whose MDM_HOME was made by `mdmserver init` code: a real CA, signer and TLS cert."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from cryptography import x509

from mdmserver.crypto.ca import load_pem_certificates
from mdmserver.enrollment.instance import init_instance
from mdmserver.enrollment.service import EnrollmentTokens
from mdmserver.enrollment.setup import EnrollmentRuntime
from mdmserver.testing.pki import TEST_TOPIC
from mdmserver.web.runtime import runtime

SERVER_URL = "https://mdm.example.test"


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """create_app installs the JSON handler and stops propagation on the package logger; undo
    it so tests that run later and read caplog see records as if no app had been built."""
    logger = logging.getLogger("mdmserver")
    saved = (logger.level, logger.propagate, list(logger.handlers))
    yield
    logger.setLevel(saved[0])
    logger.propagate = saved[1]
    logger.handlers[:] = saved[2]


@pytest.fixture(scope="session")
def enroll_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One initialised instance folder for the session (keys are slow to make)."""
    home = tmp_path_factory.mktemp("enroll") / "instance"
    init_instance(home, SERVER_URL, topic=TEST_TOPIC)
    return home


@pytest.fixture
def app_config(enroll_home: Path, database_url: str) -> Any:
    """Overrides the root fixture: push topic and server URL come from init's config.toml."""
    from mdmserver.config import load_config

    return load_config(
        environ={},
        overrides={
            "home": enroll_home,
            "database_url": database_url,
            "auto_migrate": True,
            "log_level": "WARNING",
        },
    )


@pytest.fixture
def ca_cert(enroll_home: Path) -> x509.Certificate:
    return load_pem_certificates((enroll_home / "ca.pem").read_bytes())[0]


@pytest.fixture
def enrollment(app: Any) -> EnrollmentRuntime:
    return runtime(app).enrollment


@pytest.fixture
def tokens(enrollment: EnrollmentRuntime) -> EnrollmentTokens:
    return EnrollmentTokens(enrollment.store)


# Devices and the views a user checks (re-enrollment and identity lifecycle tests) ------------


class Keys:
    """An admin key and a trust key, and the two API calls the tests make with them."""

    def __init__(self, app: Any, base_url: str) -> None:
        from mdmserver.web.runtime import runtime

        keys = runtime(app).admin.api_keys
        self.base_url = base_url
        self.admin = keys.create("test-admin", "admin", actor="test").key
        self.trust_key = keys.create("test-relying", "trust", actor="test").key

    def trust(self, path: str) -> dict[str, Any]:
        """The trust answer for `devices/<id>` or `certificate/<sha256>`."""
        reply = requests.get(
            f"{self.base_url}/api/v1/trust/{path}",
            headers={"Authorization": f"Bearer {self.trust_key}"},
            timeout=30,
        )
        assert reply.status_code == 200, reply.text
        return reply.json()

    def post(self, path: str, body: Any = None) -> requests.Response:
        return requests.post(
            f"{self.base_url}/api/v1{path}",
            json=body,
            headers={"Authorization": f"Bearer {self.admin}"},
            timeout=30,
        )


@pytest.fixture
def keys(app: Any, live_server: str) -> Keys:
    return Keys(app, live_server)


@pytest.fixture
def enroll(live_server: str, tokens: EnrollmentTokens, ca_cert: x509.Certificate) -> Any:
    """enroll(**device_fields) -> a VirtualDevice enrolled through the profile, SCEP,
    Authenticate and TokenUpdate, with what enrollment queued (inventory) answered."""
    from mdmserver.testing.device import VirtualDevice
    from mdmserver.testing.enrollment import scep_identity
    from mdmserver.testing.http import drain, send

    def run(**fields: Any) -> VirtualDevice:
        cert, key = scep_identity(live_server, ca_cert, tokens.create().token)
        device = VirtualDevice(certificate=cert, key=key, topic=TEST_TOPIC, **fields)
        for request in (device.authenticate(), device.token_update()):
            reply = send(live_server, request)
            assert reply.status_code == 200, reply.text
        drain(live_server, device)
        return device

    return run


@pytest.fixture
def fresh_identity(live_server: str, tokens: EnrollmentTokens, ca_cert: x509.Certificate) -> Any:
    """fresh_identity() -> (certificate, key) any holder of an ordinary token can get."""
    from mdmserver.testing.enrollment import scep_identity

    return lambda: scep_identity(live_server, ca_cert, tokens.create().token)


class LogRecords(logging.Handler):
    """The records one logger emitted (the app's JSON handler stops propagation to caplog)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def events(self, message: str) -> list[dict[str, Any]]:
        return [getattr(r, "fields", {}) for r in self.records if r.getMessage() == message]


@pytest.fixture
def reenroll_log() -> Iterator[LogRecords]:
    handler = LogRecords()
    logger = logging.getLogger("mdmserver.reenroll")
    level = logger.level
    logger.setLevel(logging.INFO)  # the test apps log warnings only
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(level)
