"""``mdmserver init``: create the instance folder's CA, profile signer, TLS certificate, config."""

from __future__ import annotations

from pathlib import Path

import click

from mdmserver.config import load_config
from mdmserver.enrollment.instance import InitError, init_instance


@click.command()
@click.option("--server-url", required=True, help="Public https:// URL devices reach us at.")
@click.option("--topic", default=None, help="APNs push topic (default: a placeholder).")
@click.option(
    "--import-ca",
    nargs=2,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    metavar="CERT KEY",
    help="Use an organisation's existing CA (PEM certificate and key) instead of a new one.",
)
@click.option("--force", is_flag=True, help="Replace files that already exist.")
def init(
    server_url: str, topic: str | None, import_ca: tuple[Path, Path] | None, force: bool
) -> None:
    """Create MDM_HOME with a device CA, a profile-signing and a TLS certificate, config.toml."""
    home = load_config().home
    try:
        result = init_instance(home, server_url, topic=topic, force=force, imported_ca=import_ca)
    except InitError as exc:
        raise click.ClickException(str(exc)) from None
    for path in result.written:
        click.echo(f"wrote {path}")
    if result.topic_placeholder:
        click.echo(
            "note: push_topics holds a placeholder; importing the real APNs push certificate "
            "later sets the topic."
        )
    click.echo("private keys (*.key) are readable by you only; never commit them to git.")
