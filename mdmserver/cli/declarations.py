"""``mdmserver declarations``: declarations as admin objects, from the command line.

The same service as ``/api/v1/declarations`` (mdmserver.ddm.service), each change audited
with the CLI user as its actor. Devices whose set changes are sent a DeclarativeManagement
sync; the running server (or worker) pushes them from the outbox.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from mdmserver.admin.audit import Audit
from mdmserver.cli._admin import cli_actor, cli_server, emit_json, json_option, table
from mdmserver.config import Config
from mdmserver.ddm.service import (
    DDMService,
    DeclarationConflict,
    DeclarationNotFound,
    DeclarationRefused,
)


@contextmanager
def ddm_service() -> Iterator[tuple[DDMService, Audit, Config]]:
    """The DDM service on this instance's database, its refusals as click errors."""
    with cli_server() as server:
        try:
            yield server.ddm.service, server.admin.audit, server.config
        except DeclarationRefused as exc:
            lines = [f"  {e.path or '(declaration)'}: {e.message}" for e in exc.errors]
            message = "declaration refused, nothing stored:\n" + "\n".join(lines)
            raise click.ClickException(message) from None
        except (DeclarationNotFound, DeclarationConflict, ValueError, LookupError) as exc:
            raise click.ClickException(str(exc)) from None


def describe(service: DDMService, identifier: str) -> dict[str, Any]:
    row = service.get(identifier)
    return {
        "Identifier": row.identifier,
        "Type": row.type,
        "Payload": row.payload,
        "ServerToken": row.server_token,
        "class": row.cls,
        "managed_by": row.managed_by,
        "assignments": service.store.assignments(identifier),
    }


@click.group()
def declarations() -> None:
    """Declarative Device Management declarations and their assignments."""


@declarations.command("list")
@json_option
def list_declarations(as_json: bool) -> None:
    """Every declaration (the server's own included)."""
    with ddm_service() as (service, _, _):
        rows = [describe(service, d.identifier) for d in service.declarations()]
    if as_json:
        emit_json(rows)
        return
    table(
        ("IDENTIFIER", "CLASS", "TYPE", "ASSIGNED", "SERVER TOKEN"),
        [
            (
                r["Identifier"],
                r["class"],
                r["Type"],
                ",".join(r["assignments"]) or "-",
                r["ServerToken"][:12],
            )
            for r in rows
        ],
    )


@declarations.command("put")
@click.argument("identifier")
@click.option("--type", "declaration_type", help="The declaration type (with --payload/--set).")
@click.option("--payload", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help='A JSON file: the Payload, or the whole {"Type", "Payload"}.')  # fmt: skip
@click.option("--set", "pairs", multiple=True, help="Key=JSON value in the Payload (repeatable).")
@json_option
def put(
    identifier: str,
    declaration_type: str | None,
    payload: Path | None,
    pairs: tuple[str, ...],
    as_json: bool,
) -> None:
    """Create or replace a declaration (validated against Apple's schema)."""
    body: dict[str, Any] = {}
    if payload is not None:
        loaded = json.loads(payload.read_text())
        body = loaded if isinstance(loaded, dict) and "Type" in loaded else {"Payload": loaded}
    if declaration_type:
        body["Type"] = declaration_type
    content = dict(body.get("Payload") or {})
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep:
            raise click.BadParameter(f"{pair!r}: expected Key=value", param_hint="--set")
        try:
            content[key] = json.loads(raw)
        except json.JSONDecodeError:
            content[key] = raw
    body["Payload"] = content
    with ddm_service() as (service, audit, _):
        with audit.record(cli_actor(), "declarations.put", [identifier]):
            saved = service.put(identifier, body)
        shown = describe(service, identifier)
    shown |= {"changed": saved.changed, "synced": saved.synced}
    if as_json:
        emit_json(shown)
        return
    state = "saved" if saved.changed else "unchanged"
    click.echo(f"{identifier}: {state}, ServerToken {saved.declaration.server_token[:12]}…,"
               f" {saved.synced} device channel(s) synced")  # fmt: skip
    for warning in saved.warnings:
        click.echo(f"warning: {warning}", err=True)


@declarations.command("show")
@click.argument("identifier")
def show(identifier: str) -> None:
    """One declaration, as JSON."""
    with ddm_service() as (service, _, _):
        emit_json(describe(service, identifier))


@declarations.command("delete")
@click.argument("identifier")
def delete(identifier: str) -> None:
    """Delete a declaration; devices that had it are synced."""
    with (
        ddm_service() as (service, audit, _),
        audit.record(cli_actor(), "declarations.delete", [identifier]),
    ):
        synced = service.delete(identifier)
    click.echo(f"deleted {identifier}; {synced} device channel(s) synced")


@declarations.command("assign")
@click.argument("identifier")
@click.argument("target")
def assign(identifier: str, target: str) -> None:
    """Assign to TARGET: all, or tag:<name>."""
    with (
        ddm_service() as (service, audit, _),
        audit.record(cli_actor(), "declarations.assign", [identifier, target]),
    ):
        added, synced = service.assign(identifier, target)
    click.echo(f"{'assigned' if added else 'already assigned'}; {synced} channel(s) synced")


@declarations.command("unassign")
@click.argument("identifier")
@click.argument("target")
def unassign(identifier: str, target: str) -> None:
    """Remove the assignment to TARGET."""
    with (
        ddm_service() as (service, audit, _),
        audit.record(cli_actor(), "declarations.unassign", [identifier, target]),
    ):
        removed, synced = service.unassign(identifier, target)
    if not removed:
        raise click.ClickException(f"{identifier} is not assigned to {target}")
    click.echo(f"unassigned; {synced} channel(s) synced")


@declarations.command("device")
@click.argument("enrollment_id")
def device(enrollment_id: str) -> None:
    """A channel's declarations and their state on the device (its UDID for the device)."""
    with ddm_service() as (service, _, _):
        emit_json(service.device_declarations(enrollment_id))
