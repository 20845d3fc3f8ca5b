"""``mdmserver api-key create|list|revoke``: keys for the admin API (and other scopes).

``create`` prints the key once, as the last line of stdout; only its hash is stored.
"""

from __future__ import annotations

import click

from mdmserver.admin.api_keys import SCOPES
from mdmserver.cli._admin import admin_service, cli_actor, emit_json, json_option, table


@click.group("api-key")
def api_key() -> None:
    """API keys: Authorization: Bearer <key> on /api/v1 (scope admin)."""


@api_key.command()
@click.option("--name", required=True, help="Unique name; the audit log shows it.")
@click.option("--scope", type=click.Choice(SCOPES), default="admin", show_default=True)
def create(name: str, scope: str) -> None:
    """Create a key; it is printed once, as the last line."""
    with admin_service() as admin:
        new = admin.api_keys.create(name, scope, actor=cli_actor())
    click.echo(f"name:  {new.info.name}")
    click.echo(f"scope: {new.info.scope}")
    click.echo("The key is shown only now; send it as Authorization: Bearer <key>")
    click.echo(new.key)


@api_key.command("list")
@json_option
def list_keys(as_json: bool) -> None:
    """List keys (names and first characters, never the keys)."""
    with admin_service() as admin:
        keys = admin.api_keys.list()
    if as_json:
        emit_json(
            [
                {
                    "name": k.name,
                    "scope": k.scope,
                    "prefix": k.prefix,
                    "created_at": k.created_at.isoformat(),
                    "revoked_at": k.revoked_at.isoformat() if k.revoked_at else None,
                }
                for k in keys
            ]
        )
        return
    rows = [
        (k.name, k.scope, f"{k.prefix}…", f"{k.created_at:%Y-%m-%d %H:%M}", _state(k.revoked_at))
        for k in keys
    ]
    table(("NAME", "SCOPE", "KEY", "CREATED", "STATE"), rows)


def _state(revoked_at: object) -> str:
    return "active" if revoked_at is None else f"revoked {revoked_at:%Y-%m-%d}"


@api_key.command()
@click.argument("name")
def revoke(name: str) -> None:
    """Revoke the active key called NAME."""
    with admin_service() as admin:
        admin.api_keys.revoke(name, actor=cli_actor())
    click.echo(f"revoked {name}")
