"""``mdmserver devices list|show``: the inventory, as a table or as JSON; ``devices
allow-reenroll`` and ``devices revoke``: a device's identity."""

from __future__ import annotations

from typing import Any

import click

from mdmserver.admin import views as out
from mdmserver.admin.devices import MAX_LIMIT, encode_cursor, parse_filter
from mdmserver.admin.errors import BadRequest
from mdmserver.admin.identities import parse_window
from mdmserver.cli._admin import admin_service, cli_actor, emit_json, json_option, table


def filter_options(func: Any) -> Any:
    """The device filters, shared by ``devices list`` and ``command send``."""
    for option in reversed(
        [
            click.option("--platform", help="iOS, macOS, tvOS, watchOS or visionOS."),
            click.option("--os-version", help="Exact OS version."),
            click.option("--min-os-version", help="At least this OS version."),
            click.option("--enrolled/--not-enrolled", default=None, help="Enrollment state."),
            click.option("--tag", "tags", multiple=True, help="Device tag (repeatable: all)."),
            click.option("--last-seen-before", help="ISO 8601 time."),
            click.option("--last-seen-after", help="ISO 8601 time."),
        ]
    ):
        func = option(func)
    return func


def filter_from(options: dict[str, Any]) -> dict[str, Any]:
    raw = {k: v for k, v in options.items() if v is not None and k != "tags"}
    if options.get("tags"):
        raw["tag"] = list(options["tags"])
    return raw


@click.group()
def devices() -> None:
    """Enrolled and known devices."""


@devices.command("list")
@filter_options
@click.option("--limit", type=click.IntRange(1, MAX_LIMIT), default=100, show_default=True)
@click.option("--cursor", default=None, help="next cursor printed by the previous page.")
@json_option
def list_devices(limit: int, cursor: str | None, as_json: bool, **filters: Any) -> None:
    """List devices, ordered by id, a page at a time."""
    with admin_service() as admin:
        page = admin.devices.list(parse_filter(filter_from(filters)), limit, cursor)
    next_cursor = encode_cursor(page.next_cursor)
    if as_json:
        emit_json({"devices": [out.device(d) for d in page.devices], "next_cursor": next_cursor})
        return
    rows = [
        (
            d.id,
            d.serial_number,
            d.platform,
            d.os_version,
            "yes" if d.enrolled else "no",
            out.when(d.last_seen_at),
            ",".join(d.tags),
        )
        for d in page.devices
    ]
    table(("ID", "SERIAL", "PLATFORM", "OS", "ENROLLED", "LAST SEEN", "TAGS"), rows)
    if next_cursor:
        click.echo(f"next page: --cursor {next_cursor}")


@devices.command()
@click.argument("device")
@json_option
def show(device: str, as_json: bool) -> None:
    """One device (UDID or serial number): fields, enrollments, identity expiry."""
    with admin_service() as admin:
        detail = out.device_detail(admin.devices.show(device))
    if as_json:
        emit_json(detail)
        return
    for key in (
        "id",
        "serial_number",
        "platform",
        "product_name",
        "os_version",
        "build_version",
        "device_name",
        "enrolled",
        "identity_expires_at",
        "last_seen_at",
    ):
        click.echo(f"{key + ':':22}{detail[key]}")
    click.echo(f"{'tags:':22}{', '.join(detail['tags']) or '-'}")
    rows = [
        (
            e["id"],
            e["channel"],
            e["status"],
            e["push_token_present"],
            e["token_stale"],
            e["last_seen_at"],
        )
        for e in detail["enrollments"]
    ]
    click.echo("")
    table(("ENROLLMENT", "CHANNEL", "STATUS", "PUSH TOKEN", "STALE", "LAST SEEN"), rows)


@devices.command("allow-reenroll")
@click.argument("device")
@click.option(
    "--for", "window", default="24h", show_default=True, help="How long: 24h, 30m, 2d (max 30d)."
)
@json_option
def allow_reenroll(device: str, window: str, as_json: bool) -> None:
    """Let one new identity take over DEVICE's enrollment (UDID or serial), once."""
    try:
        duration = parse_window(window)
    except BadRequest as exc:
        raise click.BadParameter(exc.message, param_hint="--for") from None
    with admin_service() as admin:
        allowance = admin.identities.allow_reenroll(device, duration, actor=cli_actor())
    until = out.when(allowance.allowed_until)
    if as_json:
        emit_json({"device_id": allowance.device_id, "allowed_until": until})
        return
    click.echo(f"{allowance.device_id}: one re-enrollment allowed until {until}")


@devices.command()
@click.argument("device")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@json_option
def revoke(device: str, yes: bool, as_json: bool) -> None:
    """Revoke DEVICE's identities and end its enrollment (it must enroll again)."""
    if not yes:
        click.confirm(f"Revoke every identity of {device} and end its enrollment?", abort=True)
    with admin_service() as admin:
        revocation = admin.identities.revoke(device, actor=cli_actor())
    if as_json:
        emit_json(
            {"device_id": revocation.device_id, "revoked_serials": revocation.revoked_serials}
        )
        return
    serials = ", ".join(revocation.revoked_serials) or "none issued by this CA"
    click.echo(f"{revocation.device_id}: enrollment ended; revoked serials: {serials}")
