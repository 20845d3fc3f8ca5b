"""An app whose MDM_HOME was made by `mdmserver init` code: a real CA, signer and TLS cert."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from mdmserver.crypto.ca import load_pem_certificates
from mdmserver.enrollment.instance import init_instance
from mdmserver.service.enrollment import EnrollmentTokens
from mdmserver.testing.pki import TEST_TOPIC
from mdmserver.web.enrollment_runtime import EnrollmentRuntime, enrollment_runtime

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
    return enrollment_runtime(app)


@pytest.fixture
def tokens(enrollment: EnrollmentRuntime) -> EnrollmentTokens:
    return EnrollmentTokens(enrollment.store)
