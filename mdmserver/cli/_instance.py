"""The instance a command works on: it must exist, and its schema must match this code.

Only ``init``, ``serve`` (first run) and ``demo`` create an instance. Every other command
refuses when ``MDM_HOME`` points at nothing, instead of quietly making a new, empty database
there: a forgotten ``MDM_HOME`` must not look like a fleet without devices.
"""

from __future__ import annotations

from pathlib import Path

import click
from sqlalchemy.engine import Engine

from mdmserver.config import Config, load_config
from mdmserver.enrollment.instance import CA_CERT, CONFIG
from mdmserver.instance_files import ensure_home
from mdmserver.storage.sql import migrate
from mdmserver.storage.sql.engine import make_engine


def sqlite_file(config: Config) -> Path | None:
    """The SQLite database file, or None for a server database (or an in-memory one)."""
    url = config.resolved_database_url
    if not url.startswith("sqlite"):
        return None
    path = url.split("///", 1)[1] if "///" in url else ""
    return Path(path) if path and path != ":memory:" else None


def instance_files_exist(config: Config) -> bool:
    """MDM_HOME holds what ``init`` or ``serve`` made, or the SQLite database is there."""
    home, database = config.home, sqlite_file(config)
    if (home / CONFIG).is_file() or (home / CA_CERT).is_file():
        return True
    return database is not None and database.is_file()


def instance_exists(config: Config) -> bool:
    """Made by ``init`` or ``serve``, or a database named in the settings (a server database
    always counts: its schema is checked next)."""
    return instance_files_exist(config) or bool(config.database_url)


def missing_instance_message(config: Config) -> str:
    return (
        f"no mdmserver instance at MDM_HOME={config.home.resolve()} (no {CONFIG}, {CA_CERT} "
        "or database there): set MDM_HOME to your instance folder, or create one with "
        "`mdmserver init --server-url https://<public name>`"
    )


def instance_config() -> Config:
    """The configuration of an existing instance; a clear refusal when there is none."""
    config = load_config()
    if not instance_exists(config):
        raise click.ClickException(missing_instance_message(config))
    ensure_home(config.home)  # 0700, whichever command touches it first
    return config


def open_database(config: Config) -> Engine:
    """The instance's database, migrated when it migrates itself (the embedded default),
    otherwise checked: a schema behind the code is refused with the command that fixes it."""
    engine = make_engine(config.resolved_database_url)
    if config.migrate_on_start:
        migrate.upgrade(engine)
    else:
        try:
            migrate.require_current(engine)
        except migrate.SchemaNotCurrent as exc:
            engine.dispose()
            raise click.ClickException(str(exc)) from None
    return engine


def open_instance() -> tuple[Config, Engine]:
    """The configuration and database every command on this instance's data starts from."""
    config = instance_config()
    return config, open_database(config)
