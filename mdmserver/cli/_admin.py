"""What the admin commands share: the server assembled from the configuration
(:func:`cli_server`, :func:`admin_service`), the caller's name for the audit log, tables for
people and ``--json`` for scripts."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

import click

from mdmserver.admin import Admin
from mdmserver.admin.audit import cli_actor as cli_actor  # re-exported to the commands
from mdmserver.admin.errors import AdminError
from mdmserver.assembly import Server, build_server
from mdmserver.cli._instance import open_instance
from mdmserver.commands.base import CommandRefused
from mdmserver.storage.base import AmbiguousSerial

F = TypeVar("F", bound=Callable[..., Any])


@contextmanager
def cli_server() -> Iterator[Server]:
    """The instance's server, assembled as the web process assembles it (``role="cli"``: push
    requests stay in the outbox, which the running server or worker drains)."""
    config, engine = open_instance()
    server = build_server(config, role="cli", engine=engine)
    try:
        yield server
    finally:
        server.close()


@contextmanager
def admin_service() -> Iterator[Admin]:
    with cli_server() as server:
        try:
            yield server.admin
        except (AdminError, CommandRefused, AmbiguousSerial) as exc:
            # The API's field is the CLI's option.
            message = str(exc).replace("allow_unknown_keys sends", "--allow-unknown-keys sends")
            raise click.ClickException(message) from None


def json_option(func: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")(func)


def emit_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, sort_keys=True, default=str))


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    cells = [[str(h) for h in headers]] + [["-" if v is None else str(v) for v in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    for row in cells:
        click.echo("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
