"""``mdmserver db``: schema migrations.

The migrations are independent branches from 0001 (joined by merge revisions from time to
time), so "the revision" of a database is a set of heads; ``current`` sums it up as one
current and one latest state instead of listing every branch.
"""

from __future__ import annotations

import click

from mdmserver.cli._instance import instance_config
from mdmserver.storage.sql import migrate
from mdmserver.storage.sql.engine import make_engine


@click.group()
def db() -> None:
    """Database schema management."""


@db.command()
@click.option("--revision", default="heads", show_default=True, help="Target revision.")
def upgrade(revision: str) -> None:
    """Apply migrations up to REVISION (the embedded SQLite default does this on start)."""
    config = instance_config()
    engine = make_engine(config.resolved_database_url)
    before = migrate.schema_status(engine)
    migrate.upgrade(engine, revision)
    after = migrate.schema_status(engine)
    engine.dispose()
    click.echo(
        f"database schema: {after.applied} of {after.total} revisions applied "
        f"(was {before.applied})"
    )


@db.command()
@click.option("--verbose", is_flag=True, help="Also list the applied heads.")
def current(verbose: bool) -> None:
    """Show the applied and the latest revision."""
    config = instance_config()
    engine = make_engine(config.resolved_database_url)
    status = migrate.schema_status(engine)
    heads = sorted(migrate.current_revisions(engine))
    engine.dispose()
    click.echo(f"current: {status.describe()}")
    click.echo(f"latest:  {status.total} revisions ({len(migrate.head_revisions())} branch heads)")
    if verbose:
        click.echo(f"applied heads: {', '.join(heads) or 'none'}")
    if not status.current:
        click.echo("run `mdmserver db upgrade` to bring the schema up to date", err=True)
