"""``mdmserver db``: schema migrations."""

from __future__ import annotations

import click

from mdmserver.config import load_config
from mdmserver.instance_files import ensure_home
from mdmserver.storage import migrate
from mdmserver.storage.engine import make_engine


@click.group()
def db() -> None:
    """Database schema management."""


@db.command()
@click.option("--revision", default="heads", show_default=True, help="Target revision.")
def upgrade(revision: str) -> None:
    """Apply migrations up to REVISION (the embedded SQLite default does this on start)."""
    config = load_config()
    ensure_home(config.home)
    engine = make_engine(config.resolved_database_url)
    before = sorted(migrate.current_revisions(engine))
    migrate.upgrade(engine, revision)
    after = sorted(migrate.current_revisions(engine))
    click.echo(f"database at {', '.join(after)} (was {', '.join(before) or 'empty'})")


@db.command()
def current() -> None:
    """Show the applied and the latest revision."""
    config = load_config()
    engine = make_engine(config.resolved_database_url)
    click.echo(f"applied: {', '.join(sorted(migrate.current_revisions(engine))) or 'none'}")
    click.echo(f"latest:  {', '.join(sorted(migrate.head_revisions()))}")
