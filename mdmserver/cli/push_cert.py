"""``mdmserver push-cert``: install, inspect and request the APNs MDM push certificate."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import click

from mdmserver.cli._instance import instance_config, sqlite_file
from mdmserver.config import Config
from mdmserver.push.cert import (
    PushCertificate,
    PushCertificateError,
    create_push_csr,
    vendor_sign_request,
)
from mdmserver.push.instance import (
    expiry_level,
    install,
    installed,
    request_key_path,
    write_private,
)


@click.group("push-cert")
def push_cert() -> None:
    """The APNs push certificate devices are woken with (stored in MDM_HOME)."""


@push_cert.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--password", default=None, help="Password of the PKCS#12 file or PEM key.")
@click.option("--force", is_flag=True, help="Accept a certificate for a different topic.")
def import_cert(file: Path, password: str | None, force: bool) -> None:
    """Install FILE as the push certificate: Apple's certificate alone (PEM; its key is the one
    `push-cert csr` kept in the instance), a PEM certificate + key, or PKCS#12."""
    config = instance_config()
    try:
        new, old = install(
            config, file.read_bytes(), password=password.encode() if password else None, force=force
        )
    except PushCertificateError as exc:
        raise click.ClickException(str(exc)) from None
    if old is not None and old.topic != new.topic:
        click.echo(
            f"warning: topic changed from {old.topic} to {new.topic}: enrolled devices must "
            "re-enroll",
            err=True,
        )
    elif old is not None:
        click.echo(
            f"renewal: the topic {new.topic} is unchanged, so enrolled devices keep working "
            f"(the old certificate expired {old.not_after:%Y-%m-%d})"
        )
    click.echo(f"installed push certificate in {config.resolved_push_cert_file}")
    _describe(new)


@push_cert.command("show")
def show() -> None:
    """Show the installed push certificate: topic, expiry, and recent push trouble."""
    config = instance_config()
    certificate = installed(config)
    if certificate is None:
        raise click.ClickException(
            f"no push certificate in {config.resolved_push_cert_file}: "
            "run mdmserver push-cert import FILE"
        )
    _describe(certificate)
    _push_health(config)


NEXT_STEPS = """next steps:
  1. have the CSR signed by your MDM vendor (or with --vendor-cert/--vendor-key if you are
     one): the result is the base64 push-request.b64 request
  2. upload it at Apple's Push Certificates Portal (https://identity.apple.com/pushcert)
     with a company Apple Account; to RENEW, choose "Renew" on the existing certificate
     there, never "Create": a new certificate has a new topic and every device would have
     to enroll again
  3. download the certificate Apple issues (a .pem file)
  4. mdmserver push-cert import <downloaded .pem>   (it is paired with the key kept above)"""


@push_cert.command("csr")
@click.option(
    "--out",
    "out",
    default=".",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for the CSR (and the signed request); the key stays in MDM_HOME.",
)
@click.option("--common-name", default="mdmserver push", show_default=True)
@click.option("--vendor-cert", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--vendor-key", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--vendor-chain",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Apple's intermediate and root for the vendor certificate (PEM).",
)
@click.option("--vendor-key-password", default=None)
def csr(
    out: Path,
    common_name: str,
    vendor_cert: Path | None,
    vendor_key: Path | None,
    vendor_chain: Path | None,
    vendor_key_password: str | None,
) -> None:
    """Create a key (kept in MDM_HOME, 0600) and a CSR; with --vendor-cert/--vendor-key also
    the base64 plist request for Apple's Push Certificates Portal."""
    config = instance_config()
    if (vendor_cert is None) != (vendor_key is None):
        raise click.UsageError("give both --vendor-cert and --vendor-key, or neither")
    try:
        key_pem, csr_pem = create_push_csr(common_name)
        request = None
        if vendor_cert is not None and vendor_key is not None:
            request = vendor_sign_request(
                csr_pem,
                vendor_cert.read_bytes(),
                vendor_key.read_bytes(),
                vendor_chain.read_bytes() if vendor_chain else vendor_cert.read_bytes(),
                vendor_key_password=vendor_key_password.encode() if vendor_key_password else None,
            )
    except PushCertificateError as exc:
        raise click.ClickException(str(exc)) from None
    out.mkdir(parents=True, exist_ok=True)
    key_path = request_key_path(config)
    write_private(key_path, key_pem)
    (out / "push-request.csr").write_bytes(csr_pem)
    click.echo(f"kept the key in {key_path} (readable by you only; `push-cert import` uses it)")
    click.echo(f"wrote {out / 'push-request.csr'}")
    if request is not None:
        (out / "push-request.b64").write_bytes(request)
        click.echo(
            f"wrote {out / 'push-request.b64'}: upload it to Apple's Push Certificates Portal"
        )
    click.echo(NEXT_STEPS)


def _describe(certificate: PushCertificate) -> None:
    days = certificate.days_left(dt.datetime.now(dt.UTC))
    click.echo(f"topic:     {certificate.topic}")
    click.echo(f"subject:   {certificate.cert.subject.rfc4514_string()}")
    click.echo(f"expires:   {certificate.not_after:%Y-%m-%d %H:%M} UTC ({days} days left)")
    level = expiry_level(days)
    if level == "expired":
        click.echo("error: the push certificate has EXPIRED: no device can be woken", err=True)
    elif level != "ok":
        prefix = "URGENT" if level == "urgent" else "warning"
        click.echo(
            f"{prefix}: the push certificate expires in {days} days: renew it in Apple's "
            "portal (Renew, same topic) and import the renewal; once it expires no device "
            "can be woken",
            err=True,
        )


def _push_health(config: Config) -> None:
    """Outcome counts from push_status, when the database is reachable and migrated."""
    from mdmserver.storage.sql.engine import make_engine
    from mdmserver.storage.sql.push_store import PushStore

    database = sqlite_file(config)
    if database is not None and not database.is_file():
        click.echo("pushes:    none yet (no database)")
        return
    try:
        engine = make_engine(config.resolved_database_url)
        summary = PushStore(engine).summary()
        engine.dispose()
    except Exception as exc:  # a CLI view: report, do not crash on a missing database
        click.echo(f"push status: unavailable ({type(exc).__name__})")
        return
    counts = ", ".join(f"{k} {v}" for k, v in sorted(summary["by_outcome"].items())) or "none yet"
    click.echo(f"pushes:    last outcome per enrollment: {counts}")
    latest = summary["last_certificate_error"]
    if latest is not None:
        click.echo(
            f"error: APNs refused the certificate ({latest['reason']}) at {latest['at']}", err=True
        )
