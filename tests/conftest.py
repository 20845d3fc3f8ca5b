"""Shared fixtures: where the reference material lives, and how to skip without it."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"


def shared_path(*parts: str) -> Path:
    """A path under ../shared, or skip the calling test with the reason."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(
            f"reference material {path} is absent (it lives beside the checkout, not in it)"
        )
    return path


@pytest.fixture
def fixtures_dir() -> Path:
    """The captured device messages in ../shared/fixtures/commandment/testdata."""
    return shared_path("fixtures", "commandment", "testdata")


@pytest.fixture
def spec_dir() -> Path:
    """Apple's machine-readable MDM specification in ../shared/apple-device-management."""
    return shared_path("apple-device-management")


# Databases ------------------------------------------------------------------------------------
# Every test that takes `database_url` runs on SQLite and on PostgreSQL. PostgreSQL comes from
# MDM_TEST_POSTGRES_URL (default: the local server, database "test"); each test run gets its own
# database, emptied between tests. Outside CI a missing server skips those tests with the reason;
# in CI (CI=true) it fails them, so a green CI always means both backends were exercised.

POSTGRES_ADMIN_URL = os.environ.get(
    "MDM_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
DATABASES = [
    name.strip()
    for name in os.environ.get("MDM_TEST_DATABASES", "sqlite,postgresql").split(",")
    if name.strip()
]


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """A fresh PostgreSQL database for this test run, migrated once, dropped at the end."""
    from mdmserver.storage import migrate
    from mdmserver.storage.engine import make_engine, normalise_url

    admin_url = normalise_url(POSTGRES_ADMIN_URL)
    try:
        admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # the server is absent or refuses us
        if os.environ.get("CI"):
            raise
        pytest.skip(f"PostgreSQL not reachable at {admin_url}: {exc}")
    name = f"mdm_test_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = admin_url.rsplit("/", 1)[0] + f"/{name}"
    engine = make_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    yield url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=DATABASES)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'mdm.db'}"
    url = request.getfixturevalue("postgres_database")
    from mdmserver.storage.schema import metadata

    engine = create_engine(url)
    with engine.begin() as conn:
        names = ", ".join(f'"{table.name}"' for table in metadata.sorted_tables)
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    engine.dispose()
    return url


# PKI ------------------------------------------------------------------------------------------

TOPIC = "com.apple.mgmt.External.7f1c9a0e-3b0b-4f4e-9d62-2f5bd0c4a001"


class Pki:
    """A device CA and helpers to mint device identities, as SCEP would."""

    def __init__(self, directory: Path) -> None:
        from mdmserver.crypto.ca import create_ca, dump_cert_pem

        self.ca_cert, self.ca_key = create_ca("mdmserver test device CA")
        self.ca_file = directory / "ca.pem"
        self.ca_file.write_bytes(dump_cert_pem(self.ca_cert))

    def identity(self, common_name: str = "device", key_type: str = "rsa") -> tuple[Any, Any]:
        from datetime import timedelta

        from cryptography import x509
        from cryptography.x509.oid import NameOID

        from mdmserver.crypto.ca import generate_key, issue_certificate

        key = generate_key(key_type)  # type: ignore[arg-type]
        cert = issue_certificate(
            self.ca_cert,
            self.ca_key,
            key.public_key(),
            x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]),
            lifetime=timedelta(days=365),
            client_auth=True,
        )
        return cert, key

    def device(self, **kwargs: Any) -> Any:
        from mdmserver.testing.device import VirtualDevice

        cert, key = self.identity(kwargs.pop("common_name", "device"))
        return VirtualDevice(certificate=cert, key=key, topic=kwargs.pop("topic", TOPIC), **kwargs)


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return Pki(tmp_path_factory.mktemp("pki"))


# The app and a live server --------------------------------------------------------------------


@pytest.fixture
def app_config(tmp_path: Path, database_url: str, pki: Pki) -> Any:
    from mdmserver.config import load_config

    return load_config(
        environ={},
        overrides={
            "home": tmp_path / "instance",
            "database_url": database_url,
            "push_topics": (TOPIC,),
            "ca_cert_file": str(pki.ca_file),
            "auto_migrate": True,
            "log_level": "WARNING",
        },
    )


@pytest.fixture
def app(app_config: Any) -> Iterator[Any]:
    from mdmserver.app import create_app
    from mdmserver.web.runtime import runtime

    application = create_app(app_config)
    yield application
    runtime(application).engine.dispose()


@pytest.fixture
def live_server(app: Any) -> Iterator[str]:
    """The app served over real HTTP on an ephemeral loopback port."""
    import threading

    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=5)
