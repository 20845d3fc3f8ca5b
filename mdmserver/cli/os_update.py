"""``mdmserver os-update``: OS updates enforced through DDM, and the devices' progress."""

from __future__ import annotations

import click

from mdmserver.cli._admin import cli_actor, emit_json, json_option, table
from mdmserver.cli.declarations import ddm_service
from mdmserver.compliance.policy import PolicyError
from mdmserver.compliance.service import PolicySource
from mdmserver.ddm import os_update as enforcement
from mdmserver.ddm.service import parse_target
from mdmserver.inventory.setup import policy_path
from mdmserver.storage.sql.compliance_store import ComplianceStore
from mdmserver.storage.sql.ddm_store import DDMStore


@click.group("os-update")
def os_update() -> None:
    """OS updates enforced by a deadline (softwareupdate.enforcement.specific)."""


@os_update.command("enforce")
@click.option("--version", "version", required=True, help="TargetOSVersion, e.g. 17.5.")
@click.option("--by", "by", required=True, help="Deadline, ISO 8601 (device local time).")
@click.option("--tag", default=None, help="Only devices with this tag (default: all).")
@click.option("--platform", default=None, help="Platform the compliance rule applies to.")
@click.option("--build", default=None, help="TargetBuildVersion.")
def enforce(
    version: str, by: str, tag: str | None, platform: str | None, build: str | None
) -> None:
    """Enforce VERSION by the deadline, and require it in compliance after it."""
    with ddm_service() as (service, audit, config):
        store = service.store  # the CLI builds the SQL stores, so it may use their engine
        assert isinstance(store, DDMStore)
        policies = PolicySource(ComplianceStore(store.engine), policy_path(config))
        with audit.record(cli_actor(), "os_updates.enforce", [tag or "all"]):
            try:
                done = enforcement.enforce(
                    service, policies, version, by, tag=tag, platform=platform, build=build,
                    actor=cli_actor(),
                )  # fmt: skip
            except PolicyError as exc:
                raise click.ClickException(str(exc)) from None
    click.echo(
        f"{done.identifier}: {done.version} by {done.by:%Y-%m-%d %H:%M} for {done.target};"
        f" {done.synced} device channel(s) synced"
    )


@os_update.command("status")
@click.option("--tag", default=None, help="The enforcement of this tag (default: all).")
@json_option
def status(tag: str | None, as_json: bool) -> None:
    """Each targeted device's progress, from its status channel."""
    with ddm_service() as (service, _, _):
        found = enforcement.progress(service, parse_target(f"tag:{tag}") if tag else "all")
    if as_json:
        emit_json(found)
        return
    click.echo(f"{found['version']} by {found['local_deadline']} for {found['target']}")
    table(
        ("DEVICE", "OS", "STATE", "PENDING", "FAILURE"),
        [
            (
                d["device_id"],
                d["os_version"],
                d["state"],
                (d["pending_version"] or {}).get("os-version"),
                (d["failure_reason"] or {}).get("reason"),
            )
            for d in found["devices"]
        ],
    )
