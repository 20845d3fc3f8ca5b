"""``mdmserver apps``: the app catalog and Apps and Books licenses from the command line.

The same service as ``/api/v1/apps``, with the same checks; each change is in the audit log
under the caller's name (``cli:<user>``), as for the other admin commands.
"""

from __future__ import annotations

import datetime as dt
import json
import plistlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from mdmserver.admin.errors import AdminError
from mdmserver.apps.service import AppsService, describe_app, license_rows
from mdmserver.apps.vpp import EXPIRY_WARNING_DAYS
from mdmserver.cli._admin import cli_actor, cli_server, emit_json, json_option, table


@contextmanager
def _service(action: str | None = None, targets: list[str] | None = None) -> Iterator[AppsService]:
    with cli_server() as server:
        try:
            if action is None:
                yield server.apps
            else:
                with server.admin.audit.record(cli_actor(), action, targets or []):
                    yield server.apps
        except AdminError as exc:
            raise click.ClickException(str(exc)) from None


@click.group("apps")
def apps() -> None:
    """The app catalog (App Store apps, in-house apps, macOS packages) and their licenses."""


@apps.command("list")
@json_option
def list_apps(as_json: bool) -> None:
    """List the catalog."""
    with _service() as service:
        found = [
            describe_app(a, {}, service.store.assignment_details(a.id)) for a in service.store.all()
        ]
    if as_json:
        emit_json(found)
        return
    rows = [
        (a["name"], a["kind"], a["bundle_id"], a["adam_id"], a["version"],
         ",".join(f"{x['target']}={x['behaviour']}" for x in a["assignments"]))
        for a in found
    ]  # fmt: skip
    table(("NAME", "KIND", "BUNDLE ID", "ADAM ID", "VERSION", "ASSIGNED"), rows)


@apps.command("add")
@click.option("--name", required=True)
@click.option("--kind", type=click.Choice(["app_store", "ios_inhouse", "macos_pkg"]), required=True)
@click.option("--bundle-id", required=True)
@click.option("--adam-id", help="App Store apps: the iTunes Store ID.")
@click.option("--version")
@click.option("--manifest-url", help="In-house apps and packages: the https manifest URL.")
@json_option
def add(
    name: str,
    kind: str,
    bundle_id: str,
    adam_id: str | None,
    version: str | None,
    manifest_url: str | None,
    as_json: bool,
) -> None:
    """Add an App Store app, or an in-house app / package by its manifest URL."""
    body: dict[str, Any] = {"name": name, "kind": kind, "bundle_id": bundle_id}
    for key, value in (("adam_id", adam_id), ("version", version), ("manifest_url", manifest_url)):
        if value is not None:
            body[key] = value
    with _service("app.create", [name]) as service:
        created = service.create(body)
        _show(service, created.id, as_json)


@apps.command("upload")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--name", required=True)
@click.option("--kind", type=click.Choice(["ios_inhouse", "macos_pkg"]), required=True)
@click.option("--bundle-id", help="Required for a .pkg; an .ipa names its own.")
@click.option("--version")
@click.option("--download-url", help="Serve the file from this CDN URL instead of the server.")
@json_option
def upload(
    file: Path,
    name: str,
    kind: str,
    bundle_id: str | None,
    version: str | None,
    download_url: str | None,
    as_json: bool,
) -> None:
    """Store an .ipa or a signed distribution .pkg and build its manifest."""
    params = {
        k: v
        for k, v in (("name", name), ("kind", kind), ("bundle_id", bundle_id),
                     ("version", version), ("download_url", download_url))
        if v is not None
    }  # fmt: skip
    with _service("app.upload", [name]) as service:
        created = service.upload(params, file.read_bytes())
        _show(service, created.id, as_json)


@apps.command("show")
@click.argument("app")
@json_option
def show(app: str, as_json: bool) -> None:
    """One app, with its manifest and assignments."""
    with _service() as service:
        _show(service, service.get(app).id, as_json)


@apps.command("delete")
@click.argument("app")
def delete(app: str) -> None:
    with _service("app.delete", [app]) as service:
        removed = service.delete(app)
    click.echo(f"deleted {removed.name}")


@apps.command("assign")
@click.argument("app")
@click.option("--tag", help="Assign to devices with this tag (default: all devices).")
@click.option(
    "--behaviour", type=click.Choice(["required", "available"]), default="required",
    show_default=True,
)  # fmt: skip
@click.option(
    "--management-flags",
    type=int,
    help="ManagementFlags: 0 none (the app stays when MDM goes), 1 remove with MDM (the "
    "default), 4 no backup of its data, 5 both (packages: 0 or 1).",
)
@click.option(
    "--configuration",
    "configuration_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The managed app configuration: a JSON object or a property list file.",
)
def assign(
    app: str,
    tag: str | None,
    behaviour: str,
    management_flags: int | None,
    configuration_file: Path | None,
) -> None:
    """Assign APP (replacing the target's assignment, its flags and configuration)."""
    target = f"tag:{tag}" if tag else "all"
    body: dict[str, Any] = {"target": target, "behaviour": behaviour}
    if management_flags is not None:
        body["management_flags"] = management_flags
    if configuration_file is not None:
        body["configuration"] = _read_configuration(configuration_file)
    with _service("app.assign", [app, target]) as service:
        done = service.assign(app, body)
    click.echo(f"assigned {done.app.name} to {target} ({behaviour})")
    if done.rollout is not None:
        if done.rollout.scheduled:
            click.echo(f"roll-out scheduled on the {done.rollout.backend} job queue")
        else:
            queued = done.rollout.queued or {}
            by_platform = ", ".join(f"{p} {n}" for p, n in sorted(queued.items()))
            total = sum(queued.values())
            click.echo(f"install queued to {total} devices ({by_platform or 'none'})")


def _read_configuration(path: Path) -> Any:
    data = path.read_bytes()
    try:
        return json.loads(data)
    except ValueError:
        pass
    try:
        return plistlib.loads(data)
    except Exception:
        raise click.ClickException(f"{path}: neither JSON nor a property list") from None


@apps.command("unassign")
@click.argument("app")
@click.option("--tag")
def unassign(app: str, tag: str | None) -> None:
    target = f"tag:{tag}" if tag else "all"
    with _service("app.unassign", [app, target]) as service:
        found = service.unassign(app, target)
    click.echo(f"unassigned {found.name} from {target}")


@apps.command("vpp-token")
@click.argument(
    "file", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=False
)
def vpp_token(file: Path | None) -> None:
    """Upload the Apps and Books content token FILE (.vpptoken); without FILE, show it."""
    if file is None:
        with _service() as service:
            summary = service.token_summary()
    else:
        with _service("vpp.token") as service:
            service.install_token(file.read_bytes())
            summary = service.token_summary()
    if not summary["installed"]:
        raise click.ClickException("no Apps and Books content token: mdmserver apps vpp-token FILE")
    expires = dt.datetime.fromisoformat(summary["expires_at"])
    click.echo(f"organisation: {summary['org_name']}")
    click.echo(f"expires:      {expires:%Y-%m-%d %H:%M} UTC ({summary['days_left']} days left)")
    days = summary["days_left"]
    if days < 0:
        click.echo("error: the content token has EXPIRED: licenses cannot be managed", err=True)
    elif days < EXPIRY_WARNING_DAYS:
        click.echo(
            f"warning: the content token expires in {days} days: download a new one in Apple "
            "Business (or School) Manager and upload it",
            err=True,
        )


@apps.command("sync")
@json_option
def sync(as_json: bool) -> None:
    """Fetch assets and license counts from Apple."""
    with _service("vpp.sync") as service:
        assets = service.sync_assets()
    if as_json:
        emit_json(assets)
        return
    table(
        ("ADAM ID", "PRICING", "TOTAL", "ASSIGNED", "AVAILABLE", "DEVICE"),
        [(a["adam_id"], a["pricing_param"], a["total_count"], a["assigned_count"],
          a["available_count"], a["device_assignable"]) for a in assets],
    )  # fmt: skip


@apps.command("license")
@click.argument("app")
@click.argument("serials", nargs=-1, required=True)
@click.option("--revoke", is_flag=True, help="Revoke instead of assign.")
@json_option
def license_(app: str, serials: tuple[str, ...], revoke: bool, as_json: bool) -> None:
    """Assign (or --revoke) APP's licenses for device SERIALS; waits for Apple's event."""
    action = "app.licenses.revoke" if revoke else "app.licenses.assign"
    with _service(action, [app, *serials]) as service:
        manage = service.revoke_licenses if revoke else service.assign_licenses

        def progress(status: Any) -> None:
            done, asked = status.num_completed or 0, status.num_requested or "?"
            click.echo(f"event {status.event_id}: {status.status} {done}/{asked}", err=True)

        event = manage(app, {"serials": list(serials)}, wait=120.0, progress=progress)
    if as_json:
        emit_json(event)
        return
    click.echo(f"event {event['event_id']}: {event['status']}")
    for failure in event["failures"]:
        click.echo(
            f"  {failure.get('serialNumber')}: {failure.get('errorNumber')} "
            f"{failure.get('errorMessage')}",
            err=True,
        )


@apps.command("licenses")
@click.argument("app")
@json_option
def licenses(app: str, as_json: bool) -> None:
    with _service() as service:
        rows = license_rows(service.store, service.get(app).adam_id)
    if as_json:
        emit_json(rows)
        return
    table(
        ("SERIAL", "STATUS", "ERROR"), [(r["serial_number"], r["status"], r["error"]) for r in rows]
    )


def _show(service: AppsService, app_id: str, as_json: bool) -> None:
    found = service.get(app_id)
    described = describe_app(found, {}, service.store.assignment_details(found.id))
    if as_json:
        emit_json(described)
        return
    for key in ("id", "name", "kind", "bundle_id", "adam_id", "version"):
        click.echo(f"{key + ':':11}{described[key] if described[key] is not None else '-'}")
    if described["file"]:
        click.echo(f"{'file:':11}{described['file']['name']} ({described['file']['size']} bytes)")
