"""``mdmserver queue show|clear DEVICE``: what waits for a device, and cancelling it."""

from __future__ import annotations

import click

from mdmserver.admin import views as out
from mdmserver.cli._admin import admin_service, cli_actor, emit_json, json_option, table


@click.group()
def queue() -> None:
    """A device's command queue."""


@queue.command()
@click.argument("device")
@click.option("--all", "include_done", is_flag=True, help="Include answered commands.")
@json_option
def show(device: str, include_done: bool, as_json: bool) -> None:
    """Commands queued for DEVICE (UDID or serial number)."""
    with admin_service() as admin:
        device_id, items = admin.queues.show(device, include_done=include_done)
    if as_json:
        emit_json({"device_id": device_id, "commands": [out.queue_item(i) for i in items]})
        return
    table(
        ("COMMAND", "TYPE", "STATUS", "PRIORITY", "QUEUED"),
        [
            (i.command_uuid, i.request_type, i.status.value, i.priority, out.when(i.created_at))
            for i in items
        ],
    )


@queue.command()
@click.argument("device")
@json_option
def clear(device: str, as_json: bool) -> None:
    """Cancel every pending command of DEVICE."""
    with admin_service() as admin:
        device_id, cancelled = admin.queues.clear(device, actor=cli_actor())
    if as_json:
        emit_json({"device_id": device_id, "cancelled": cancelled})
    else:
        click.echo(f"cancelled {cancelled} command(s) for {device_id}")
