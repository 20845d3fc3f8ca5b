"""Shared fixtures: where the reference material lives, and how to skip without it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from mdmserver.testing.pki import TEST_TOPIC, Pki

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
    from mdmserver.storage.sql import migrate
    from mdmserver.storage.sql.engine import make_engine
    from mdmserver.testing.scratch import check_server, scratch_database

    try:
        check_server(POSTGRES_ADMIN_URL)
    except Exception as exc:  # the server is absent or refuses us
        if os.environ.get("CI"):
            raise
        pytest.skip(f"PostgreSQL not reachable at {POSTGRES_ADMIN_URL}: {exc}")
    with scratch_database(POSTGRES_ADMIN_URL, "mdm_test") as url:
        engine = make_engine(url)
        migrate.upgrade(engine)
        engine.dispose()
        yield url


@pytest.fixture(params=DATABASES)
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database with no tables at all (not even Alembic's), on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    request.getfixturevalue("postgres_database")  # skips or fails like the others
    from mdmserver.testing.scratch import scratch_database

    with scratch_database(POSTGRES_ADMIN_URL, "mdm_empty") as url:
        yield url


@pytest.fixture(params=DATABASES)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'mdm.db'}"
    url = request.getfixturevalue("postgres_database")
    from mdmserver.storage.sql.schema import metadata

    engine = create_engine(url)
    with engine.begin() as conn:
        names = ", ".join(f'"{table.name}"' for table in metadata.sorted_tables)
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    engine.dispose()
    return url


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """A device CA (written to ca.pem) that mints device identities, as SCEP would."""
    return Pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def topic() -> str:
    return TEST_TOPIC


# The app and a live server --------------------------------------------------------------------


@pytest.fixture
def app_config(tmp_path: Path, database_url: str, pki: Pki) -> Any:
    from mdmserver.config import load_config

    return load_config(
        environ={},
        overrides={
            "home": tmp_path / "instance",
            "database_url": database_url,
            "push_topics": (TEST_TOPIC,),
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
    runtime(application).close()


@pytest.fixture
def live_server(app: Any) -> Iterator[str]:
    """The app served over real HTTP on an ephemeral loopback port."""
    from mdmserver.testing.http import serve

    with serve(app) as url:
        yield url
