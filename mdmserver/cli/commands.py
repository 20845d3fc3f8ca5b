"""``mdmserver lock``, ``wipe`` and ``command send|status``: the same service as the API.

Bulk sends show a progress bar (on stderr, so ``--json`` output stays clean) while the
targets are resolved; the command is then queued to all of them at once, under one UUID.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from typing import Any

import click

from mdmserver.admin import Admin
from mdmserver.admin import views as out
from mdmserver.admin.commands import SendResult
from mdmserver.catalog.schema import command_spec
from mdmserver.cli._admin import admin_service, cli_actor, emit_json, json_option, table
from mdmserver.cli.devices import filter_from, filter_options
from mdmserver.commands.cli_values import BadAssignment, apply_assignments

PROGRESS_FROM = 50  # targets


@contextmanager
def _progress(count: int) -> Iterator[Callable[[int], None] | None]:
    if count < PROGRESS_FROM:
        yield None
        return
    with click.progressbar(length=count, label="resolving targets", file=sys.stderr) as bar:
        yield bar.update


def _send(admin: Admin, request: dict[str, Any]) -> SendResult:
    count = len(request.get("targets", []))
    with _progress(count) if count else nullcontext() as progress:
        return admin.commands.send(request, actor=cli_actor(), progress=progress)


def _report(sent: SendResult, as_json: bool) -> None:
    if as_json:
        emit_json(
            {
                "command_uuid": sent.command_uuid,
                "request_type": sent.request_type,
                "targets": sent.targets,
                "skipped": sent.skipped,
                "warnings": [{"path": w.path, "message": w.message} for w in sent.warnings],
            }
        )
        return
    for warning in sent.warnings:
        click.echo(f"warning: {warning}", err=True)
    if sent.skipped:
        click.echo(f"skipped {len(sent.skipped)} device(s) that are not enrolled", err=True)
    click.echo(f"queued {sent.request_type} to {len(sent.targets)} device(s)")
    click.echo(sent.command_uuid)


@click.command()
@click.argument("device")
@click.option("--message", help="Shown on the lock screen.")
@click.option("--phone", "phone_number", help="Phone number shown on the lock screen.")
@click.option("--pin", help="6-digit PIN (required for a Mac).")
@json_option
def lock(
    device: str, message: str | None, phone_number: str | None, pin: str | None, as_json: bool
) -> None:
    """Lock DEVICE (UDID or serial number) now."""
    command: dict[str, Any] = {"RequestType": "DeviceLock"}
    for key, value in (("Message", message), ("PhoneNumber", phone_number), ("PIN", pin)):
        if value is not None:
            command[key] = value
    with admin_service() as admin:
        _report(_send(admin, {"targets": [device], "command": command}), as_json)


@click.command()
@click.argument("device")
@click.option("--pin", help="6-digit PIN (required for a Mac).")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@json_option
def wipe(device: str, pin: str | None, yes: bool, as_json: bool) -> None:
    """Erase DEVICE: everything on it is lost."""
    if not yes:
        click.confirm(f"Erase all content on {device}? This cannot be undone", abort=True)
    command: dict[str, Any] = {"RequestType": "EraseDevice"}
    if pin is not None:
        command["PIN"] = pin
    with admin_service() as admin:
        _report(_send(admin, {"targets": [device], "command": command}), as_json)


@click.group()
def command() -> None:
    """Any MDM command, checked against Apple's schema before it is queued."""


class _SendCommand(click.Command):
    """``send --help`` ends with every RequestType (read from the catalog only then)."""

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        from mdmserver.catalog.schema import request_types

        with formatter.section("Request types (Apple's MDM schema)"):
            formatter.write_text(", ".join(sorted(request_types())))


@command.command(cls=_SendCommand)
@click.argument("request_type")
@click.option("--target", "targets", multiple=True, help="Device UDID or serial (repeatable).")
@click.option("--set", "assignments", multiple=True, help="Key=Value, read by schema type.")
@click.option("--priority", type=int, default=0, show_default=True)
@click.option("--expires-in", type=click.IntRange(min=1), help="Seconds until it expires.")
@click.option("--yes", is_flag=True, help="Do not ask before EraseDevice.")
@click.option(
    "--allow-unknown-keys",
    is_flag=True,
    help="Send keys Apple's schema does not know (refused otherwise: usually a misspelling).",
)
@filter_options
@json_option
def send(
    request_type: str,
    targets: tuple[str, ...],
    assignments: tuple[str, ...],
    priority: int,
    expires_in: int | None,
    yes: bool,
    allow_unknown_keys: bool,
    as_json: bool,
    **filters: Any,
) -> None:
    """Queue REQUESTTYPE to --target devices, or to every device the filters select.

    Values are set with --set Key=Value (Key.Sub=Value for nested keys), read by the type the
    schema gives the key. The request types are listed below.
    """
    spec = command_spec(request_type)
    if spec is None:
        raise click.BadParameter(f"unknown RequestType {request_type!r}", param_hint="REQUESTTYPE")
    try:
        body = {"RequestType": request_type, **apply_assignments(spec, assignments)}
    except BadAssignment as exc:
        raise click.BadParameter(str(exc), param_hint="--set") from None
    flt = filter_from(filters)
    if bool(targets) == bool(flt):
        raise click.UsageError("give --target devices or filter options (not both)")
    if request_type == "EraseDevice" and not yes:
        click.confirm("Erase all content on the selected devices?", abort=True)
    request: dict[str, Any] = {"command": body, "priority": priority}
    request.update({"targets": list(targets)} if targets else {"filter": flt})
    if expires_in:
        request["expires_in"] = expires_in
    if allow_unknown_keys:
        request["allow_unknown_keys"] = True
    with admin_service() as admin:
        _report(_send(admin, request), as_json)


@command.command()
@click.argument("command_uuid")
@json_option
def status(command_uuid: str, as_json: bool) -> None:
    """How each target answered COMMAND_UUID."""
    with admin_service() as admin:
        request_type, targets = admin.commands.status(command_uuid)
    if as_json:
        emit_json(
            {
                "command_uuid": command_uuid,
                "request_type": request_type,
                "targets": [
                    {**out.queue_item(t.item, t.device_id or ""), "result": t.result_json()}
                    for t in targets
                ],
            }
        )
        return
    click.echo(f"{request_type} {command_uuid}")
    table(
        ("DEVICE", "STATUS", "SENT", "ANSWERED"),
        [
            (
                t.device_id,
                t.item.status.value,
                out.when(t.item.sent_at),
                out.when(t.item.answered_at),
            )
            for t in targets
        ],
    )
