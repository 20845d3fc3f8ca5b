"""``mdmserver users create|list|passwd|reset|disable|enable``: people who use the web console.

``create`` and ``reset`` print a one-time password as the last line of stdout (it must be
changed at the first sign-in); ``--password-stdin`` reads a chosen one instead.
"""

from __future__ import annotations

import sys

import click

from mdmserver.admin.console_users import ROLES
from mdmserver.cli._admin import admin_service, cli_actor, emit_json, json_option, table


@click.group("users")
def users() -> None:
    """Console users: admin (everything), helpdesk (device help-desk actions), auditor
    (read-only, exports)."""


@users.command()
@click.argument("name")
@click.option("--role", type=click.Choice(ROLES), required=True)
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def create(name: str, role: str, password_stdin: bool) -> None:
    """Create NAME with ROLE; prints a one-time password unless one is read from stdin."""
    password = sys.stdin.readline().rstrip("\n") if password_stdin else None
    with admin_service() as admin:
        new = admin.console_users.create(name, role, actor=cli_actor(), password=password)
    click.echo(f"user: {new.user.name} ({new.user.role})")
    if password is None:
        click.echo("One-time password (shown only now; it must be changed at the first sign-in):")
        click.echo(new.password)


@users.command("list")
@json_option
def list_users(as_json: bool) -> None:
    """List console users (never their passwords)."""
    with admin_service() as admin:
        found = admin.console_users.list()
    if as_json:
        emit_json(
            [
                {
                    "name": u.name,
                    "role": u.role,
                    "disabled": u.disabled,
                    "created_at": u.created_at.isoformat(),
                    "last_login_at": u.last_login_at.isoformat() if u.last_login_at else None,
                }
                for u in found
            ]
        )
        return
    rows = [
        (
            u.name,
            u.role,
            "disabled" if u.disabled else "active",
            f"{u.last_login_at:%Y-%m-%d %H:%M}" if u.last_login_at else None,
        )
        for u in found
    ]
    table(("NAME", "ROLE", "STATE", "LAST SIGN-IN"), rows)


@users.command()
@click.argument("name")
def passwd(name: str) -> None:
    """Set NAME's password (asked twice)."""
    password = click.prompt("New password", hide_input=True, confirmation_prompt=True)
    with admin_service() as admin:
        admin.console_users.change_password(name, password, actor=cli_actor())
    click.echo(f"password changed for {name}; its sessions have ended")


@users.command()
@click.argument("name")
def reset(name: str) -> None:
    """Give NAME a new one-time password; its sessions end."""
    with admin_service() as admin:
        new = admin.console_users.reset_password(name, actor=cli_actor())
    click.echo("One-time password (shown only now; it must be changed at the first sign-in):")
    click.echo(new.password)


@users.command()
@click.argument("name")
def disable(name: str) -> None:
    """Disable NAME: it cannot sign in and its sessions end."""
    with admin_service() as admin:
        admin.console_users.set_disabled(name, True, actor=cli_actor())
    click.echo(f"disabled {name}")


@users.command()
@click.argument("name")
def enable(name: str) -> None:
    """Enable NAME again."""
    with admin_service() as admin:
        admin.console_users.set_disabled(name, False, actor=cli_actor())
    click.echo(f"enabled {name}")
