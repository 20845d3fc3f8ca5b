"""``mdmserver profiles``: templates, managed profiles, assignments, status, FileVault escrow.

The same service as the admin API (mdmserver.profiles.admin). Changes queue the
commands at once; devices fetch them at their next check-in (the API also pushes them).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import click
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from mdmserver.catalog.validate import ValidationError
from mdmserver.cli._admin import cli_server, emit_json, json_option, table
from mdmserver.cli._instance import instance_config
from mdmserver.crypto.ca import (
    create_ca,
    dump_cert_pem,
    dump_key_pem,
    generate_key,
    issue_certificate,
    load_pem_certificates,
    load_private_key,
)
from mdmserver.crypto.cms_encrypt import decrypt
from mdmserver.instance_files import ensure_home
from mdmserver.profiles.admin import ProfileAdmin, ProfileNotFound, describe, describe_state
from mdmserver.profiles.validation import ProfileRefused

ESCROW_CERT, ESCROW_KEY = "escrow.pem", "escrow.key"


@contextmanager
def _admin() -> Iterator[ProfileAdmin]:
    with cli_server() as server:
        try:
            yield server.profiles.admin
        except ProfileRefused as exc:
            lines = [f"  {e.path or '(profile)'}: {e.message}" for e in exc.errors]
            message = "profile refused, nothing stored:\n" + "\n".join(lines)
            raise click.ClickException(message) from None
        except (ProfileNotFound, ValueError) as exc:
            raise click.ClickException(str(exc)) from None


def _values(pairs: tuple[str, ...]) -> dict[str, Any]:
    """-v name=value (repeat a name for arrays; name=@file reads the file's bytes)."""
    values: dict[str, Any] = {}
    for pair in pairs:
        name, sep, raw = pair.partition("=")
        if not sep:
            raise click.BadParameter(f"{pair!r}: expected name=value", param_hint="-v")
        value: Any = Path(raw[1:]).read_bytes() if raw.startswith("@") else raw
        if name in values:
            previous = values[name]
            values[name] = [*previous, value] if isinstance(previous, list) else [previous, value]
        else:
            values[name] = value
    return values


def _profile_table(rows: Sequence[dict[str, Any]]) -> None:
    table(
        ("NAME", "IDENTIFIER", "REVISION", "SOURCE", "PAYLOADS", "ASSIGNED", "UPDATED"),
        [
            (
                r["name"],
                r["identifier"],
                r["revision"],
                r["source"],
                ",".join(r["payload_types"]) or "-",
                ",".join(r["assignments"]) or "-",
                r["updated_at"][:16].replace("T", " "),
            )
            for r in rows
        ],
    )


def _show_profile(described: dict[str, Any], as_json: bool) -> None:
    if as_json:
        emit_json(described)
        return
    width = max(len(k) for k in described)
    for key, value in described.items():
        shown = ", ".join(value) if isinstance(value, list) else value
        click.echo(f"{key + ':':<{width + 1}} {'-' if shown in (None, '') else shown}")


def _warn(warnings: Sequence[ValidationError]) -> None:
    """On stderr, so the JSON on stdout stays parseable."""
    for warning in warnings:
        click.echo(f"warning: {warning}", err=True)


@click.group("profiles")
def profiles() -> None:
    """Configuration profiles: create from templates or upload, assign, see each device."""


@profiles.command("templates")
@json_option
def templates(as_json: bool) -> None:
    """List the templates and their variables."""
    with _admin() as admin:
        found = list(admin.templates().values())
    if as_json:
        emit_json(
            [
                {
                    "name": t.name,
                    "display_name": t.display_name,
                    "platforms": list(t.platforms),
                    "variables": [
                        {
                            "name": v.name,
                            "type": v.type,
                            "required": v.required,
                            "secret": v.secret,
                            "default": None if v.secret else v.default,
                            "description": v.description,
                        }
                        for v in t.variables.values()
                    ],
                }
                for t in found
            ]
        )
        return
    for t in found:
        click.echo(f"{t.name}: {t.display_name} ({', '.join(t.platforms)})")
        for v in t.variables.values():
            need = "required" if v.required else f"default {v.default!r}"
            shown = "secret" if v.secret else need
            click.echo(f"    {v.name} <{v.type}> {shown}: {v.description}")


@profiles.command("create")
@click.argument("name")
@click.option("--template", "template_name", required=True, help="Template name.")
@click.option("-v", "variables", multiple=True, help="name=value, or name=@file.")
@click.option("--identifier", default=None, help="PayloadIdentifier (default from the name).")
@click.option("--encrypt/--no-encrypt", default=None, help="Encrypt to each device.")
@click.option("--replace", is_flag=True, help="Replace the profile of that name.")
@json_option
def create(
    name: str,
    template_name: str,
    variables: tuple[str, ...],
    identifier: str | None,
    encrypt: bool | None,
    replace: bool,
    as_json: bool,
) -> None:
    """Create (or --replace) a profile from a template."""
    with _admin() as admin:
        saved = admin.from_template(
            template_name,
            name,
            _values(variables),
            identifier=identifier,
            encrypt=encrypt,
            replace=replace,
        )
        _warn(saved.warnings)
        _show_profile(describe(saved.profile, admin.store.assignments(saved.profile.id)), as_json)


@profiles.command("upload")
@click.argument("name")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--identifier", default=None, help="Override the PayloadIdentifier.")
@click.option("--encrypt", is_flag=True, help="Encrypt to each device.")
@click.option("--replace", is_flag=True, help="Replace the profile of that name.")
@json_option
def upload(
    name: str, file: Path, identifier: str | None, encrypt: bool, replace: bool, as_json: bool
) -> None:
    """Add a custom .mobileconfig (signed or not); it is validated and signed again."""
    with _admin() as admin:
        saved = admin.from_upload(
            name, file.read_bytes(), identifier=identifier, encrypt=encrypt, replace=replace
        )
        _warn(saved.warnings)
        _show_profile(describe(saved.profile, admin.store.assignments(saved.profile.id)), as_json)


@profiles.command("list")
@json_option
def list_profiles(as_json: bool) -> None:
    """The profiles, with what they are assigned to."""
    with _admin() as admin:
        rows = [describe(p, admin.store.assignments(p.id)) for p in admin.list()]
    if as_json:
        emit_json(rows)
    else:
        _profile_table(rows)


@profiles.command("show")
@click.argument("name")
@click.option(
    "--content", is_flag=True, help="Print the profile's XML (secret variables redacted)."
)
@json_option
def show(name: str, content: bool, as_json: bool) -> None:
    """One profile: identifiers, revision, payload types, assignments (or its content)."""
    with _admin() as admin:
        profile = admin.get(name)
        if content:
            click.echo(profile.shown.decode("utf-8"), nl=False)
            return
        _show_profile(describe(profile, admin.store.assignments(profile.id)), as_json)


@profiles.command("delete")
@click.argument("name")
def delete(name: str) -> None:
    """Delete a profile; devices that have it are told to remove it."""
    with _admin() as admin:
        done = admin.delete(name)
        _warn(done.warnings)
        click.echo(f"deleted {done.value.identifier}")


@profiles.command("assign")
@click.argument("name")
@click.argument("target")
def assign(name: str, target: str) -> None:
    """Assign to 'all' or to 'tag:<tag>'."""
    with _admin() as admin:
        done = admin.assign(name, target)
        _warn(done.warnings)
        click.echo("assigned" if done.value else "already assigned")


@profiles.command("unassign")
@click.argument("name")
@click.argument("target")
def unassign(name: str, target: str) -> None:
    with _admin() as admin:
        done = admin.unassign(name, target)
        if not done.value:
            raise click.ClickException(f"{name} is not assigned to {target}")
        _warn(done.warnings)
        click.echo("unassigned")


@profiles.command("status")
@click.argument("name", required=False)
@click.option("--device", default=None, help="One device id.")
@json_option
def status(name: str | None, device: str | None, as_json: bool) -> None:
    """Per device: installed, pending, removed, or failed with the device's ErrorChain."""
    with _admin() as admin:
        rows = [describe_state(s) for s in admin.status(name, device)]
    if as_json:
        emit_json(rows)
        return
    table(
        ("ENROLLMENT", "IDENTIFIER", "STATUS", "ACTION", "UPDATED", "ERROR"),
        [
            (
                r["enrollment_id"],
                r["identifier"],
                r["status"],
                r["action"],
                r["updated_at"][:16].replace("T", " "),
                _first_error(r["error"]),
            )
            for r in rows
        ],
    )


def _first_error(error: Any) -> str | None:
    """The first LocalizedDescription of a device's ErrorChain, for the table."""
    if not error:
        return None
    chain = error if isinstance(error, list) else [error]
    first = chain[0] if chain else {}
    if isinstance(first, dict):
        return str(first.get("LocalizedDescription") or first.get("ErrorCode") or first)
    return str(first)


@profiles.command("retry")
@click.argument("name")
def retry(name: str) -> None:
    """Try failed installs of this profile again, and sync every device (what was held back
    for want of a signer goes out now)."""
    with _admin() as admin:
        done = admin.retry(name)
        _warn(done.warnings)
        click.echo(f"retrying on {done.value} device(s)")


def make_escrow_cert(home: Path, *, force: bool = False) -> tuple[Path, Path]:
    """escrow.pem / escrow.key in `home`: an RSA certificate FileVault encrypts keys to."""
    cert_path, key_path = home / ESCROW_CERT, home / ESCROW_KEY
    if cert_path.exists() and not force:
        raise click.ClickException(f"{cert_path} exists (use --force to replace it)")
    ca_pem, ca_key_path = home / "ca.pem", home / "ca.key"
    if ca_pem.is_file() and ca_key_path.is_file():
        ca_cert = load_pem_certificates(ca_pem.read_bytes())[0]
        ca_key = load_private_key(ca_key_path.read_bytes())
    else:
        ca_cert, ca_key = create_ca("mdmserver FileVault escrow")
    key = generate_key("rsa")
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "FileVault recovery key escrow")])
    cert = issue_certificate(
        ca_cert, ca_key, key.public_key(), subject, lifetime=timedelta(days=10 * 365)
    )
    ensure_home(home)
    for path, data in ((key_path, dump_key_pem(key)), (cert_path, dump_cert_pem(cert))):
        path.unlink(missing_ok=True)
        path.touch(mode=0o600)
        path.write_bytes(data)
    return cert_path, key_path


@profiles.command("escrow-cert")
@click.option("--force", is_flag=True, help="Replace an existing escrow certificate.")
def escrow_cert(force: bool) -> None:
    """Create the FileVault escrow certificate (for the filevault template)."""
    cert_path, key_path = make_escrow_cert(instance_config().home, force=force)
    click.echo(f"wrote {cert_path} and {key_path}; keep the key safe (offline if you can)")
    click.echo(f"use: -v escrow_certificate=@{cert_path}")


@profiles.command("escrowed-key")
@click.argument("device")
def escrowed_key(device: str) -> None:
    """Decrypt the newest recovery key escrowed by a device (id or serial number)."""
    home = instance_config().home
    cert = load_pem_certificates((home / ESCROW_CERT).read_bytes())[0]
    key = load_private_key((home / ESCROW_KEY).read_bytes())
    if not isinstance(key, rsa.RSAPrivateKey):
        raise click.ClickException("the escrow key must be RSA")
    with _admin() as admin:
        found = admin.store.escrowed(device)
    if not found:
        raise click.ClickException(f"no recovery key escrowed for {device}")
    device_id, device_key, envelope, received = found[0]
    click.echo(f"device {device_id} ({device_key or '-'}), received {received}")
    click.echo(decrypt(envelope, cert, key).decode("utf-8", "replace"))
