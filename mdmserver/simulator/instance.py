"""A ready-to-run instance for the demo and the benchmark, made with the server's own code:
``mdmserver init`` (CA, TLS, profile signer), ``push-cert import``, migrations, an enrollment
token and an admin API key."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mdmserver.assembly import build_server
from mdmserver.config import load_config
from mdmserver.enrollment.instance import init_instance
from mdmserver.enrollment.service import EnrollmentTokens
from mdmserver.push.instance import install
from mdmserver.simulator.apple import FakeApple
from mdmserver.storage.sql import migrate
from mdmserver.storage.sql.engine import make_engine


@dataclass(frozen=True)
class Instance:
    home: Path
    server_url: str
    database_url: str
    token: str  # enrollment token (unlimited uses)
    api_key: str  # admin scope

    @property
    def ca_file(self) -> Path:
        """The device CA: it also issued the server's TLS certificate, so clients verify it."""
        return self.home / "ca.pem"


def prepare_instance(
    home: Path,
    server_url: str,
    apple: FakeApple,
    *,
    database_url: str = "",
    key_name: str = "simulator",
    tags: tuple[str, ...] = ("simulated",),
) -> Instance:
    init_instance(home, server_url, topic=apple.topic)
    overrides: dict[str, object] = {"home": home, "log_level": "WARNING"}
    if database_url:
        overrides["database_url"] = database_url
    config = load_config(environ={}, overrides=overrides)
    install(config, apple.push_file.read_bytes())
    engine = make_engine(config.resolved_database_url)
    migrate.upgrade(engine)
    server = build_server(config, role="cli", engine=engine)  # the server's own services
    try:
        token = EnrollmentTokens(server.enrollment.store).create(tags=tags).token
        api_key = server.admin.api_keys.create(key_name, actor="cli:simulator").key
    finally:
        server.close()
    return Instance(home, server_url, config.resolved_database_url, token, api_key)
