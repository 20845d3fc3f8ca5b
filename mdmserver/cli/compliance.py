"""``mdmserver inventory refresh-due`` and ``mdmserver compliance evaluate-stale|show|policy``:
the scheduled inventory and compliance work, for cron or issue #4's worker, and a look at one
device. Built from the configuration like the web app, without Flask."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click

from mdmserver.cli._admin import cli_server, emit_json
from mdmserver.compliance.policy import PolicyError, load_policy
from mdmserver.inventory.setup import InventoryRuntime


@contextmanager
def inventory_runtime() -> Iterator[InventoryRuntime]:
    with cli_server() as server:
        try:
            yield server.inventory
        except PolicyError as exc:
            raise click.ClickException(f"compliance policy: {exc}") from None


@click.group("inventory")
def inventory() -> None:
    """Device inventory (DeviceInformation, SecurityInfo, profiles, apps, certificates)."""


@inventory.command("refresh-due")
@click.option("--limit", default=1000, show_default=True, help="Devices per run.")
def refresh_due(limit: int) -> None:
    """Queue inventory for devices not asked within inventory_interval_hours.

    Commands wait for each device's next check-in (no push is sent from the CLI)."""
    with inventory_runtime() as built:
        count = built.inventory.refresh_due_inventory(limit=limit)
    click.echo(f"inventory queued for {count} device(s)")


@click.group("compliance")
def compliance() -> None:
    """Compliance policy and device states."""


@compliance.command("evaluate-stale")
def evaluate_stale() -> None:
    """Re-judge devices silent past the limit or with an identity certificate about to expire."""
    with inventory_runtime() as built:
        count = built.compliance.evaluate_stale()
    click.echo(f"re-evaluated {count} device(s)")


@compliance.command("show")
@click.argument("device_id")
def show(device_id: str) -> None:
    """A device's compliance state (re-evaluated now), reasons and history, as JSON."""
    with inventory_runtime() as built:
        evaluation = built.compliance.evaluate(device_id)
        if evaluation is None:
            raise click.ClickException(f"no device {device_id!r}")
        emit_json(
            {
                "device_id": device_id,
                "state": evaluation.state.value,
                "results": [r.to_dict() for r in evaluation.results],
                "history": built.compliance_store.history(device_id, 20),
                "remediations": built.compliance_store.remediations(device_id),
            }
        )


@compliance.command("policy")
@click.option("--check", "check", type=click.Path(exists=True, path_type=Path), default=None)
def policy(check: Path | None) -> None:
    """Print the effective policy (or validate a policy file with --check)."""
    if check is not None:
        try:
            emit_json(load_policy(check).to_dict())
        except PolicyError as exc:
            raise click.ClickException(str(exc)) from None
        return
    with inventory_runtime() as built:
        emit_json({"source": built.policies.source(), "policy": built.policies.current().to_dict()})
