"""``mdmserver enroll-token``: create, list and revoke enrollment tokens.

A token is printed once, as the last line of ``create`` (so scripts can take ``tail -n1``);
only its hash is stored, and ``list`` shows an id and the first characters.
"""

from __future__ import annotations

from datetime import UTC, datetime

import click

from mdmserver.cli._instance import open_instance
from mdmserver.config import load_config
from mdmserver.enrollment.links import enrollment_url, qr_text
from mdmserver.enrollment.onetime import parse_duration
from mdmserver.enrollment.service import EnrollmentTokens, TokenRequestError
from mdmserver.storage.sql.enrollment_store import EnrollmentStore, TokenInfo


def _tokens() -> EnrollmentTokens:
    _, engine = open_instance()
    return EnrollmentTokens(EnrollmentStore(engine))


def _qr(text: str) -> None:
    """The URL as a QR code in the terminal: a phone's camera opens it in Safari."""
    click.echo(qr_text(text))


@click.group("enroll-token")
def enroll_token() -> None:
    """Enrollment tokens: each lets devices download an enrollment profile."""


@enroll_token.command()
@click.option("--uses", type=click.IntRange(min=1), default=None, help="Devices it may enroll.")
@click.option("--expires", default=None, help="Lifetime such as 7d, 12h or 30m.")
@click.option("--tag", "tags", multiple=True, help="Group the enrolled devices join (repeatable).")
@click.option("--qr", is_flag=True, help="Also show the enrollment URL as a QR code (phones).")
@click.option(
    "--ota", is_flag=True, help="Its URL answers Apple's profile service (over-the-air enrollment)."
)
@click.option(
    "--require-ota",
    is_flag=True,
    help="Only over the air: the plain profile is refused (URL needs &ota=1 unless --ota).",
)
def create(
    uses: int | None,
    expires: str | None,
    tags: tuple[str, ...],
    qr: bool,
    ota: bool,
    require_ota: bool,
) -> None:
    """Create a token; it is printed once, as the last line, after its enrollment URL."""
    config = load_config()
    try:
        lifetime = parse_duration(expires) if expires else None
        new = _tokens().create(
            uses=uses, lifetime=lifetime, tags=tags, ota=ota, require_ota=require_ota
        )
    except (ValueError, TokenRequestError) as exc:
        raise click.ClickException(str(exc)) from None
    info = new.info
    click.echo(f"id:      {info.id}")
    click.echo(f"uses:    {info.max_uses if info.max_uses is not None else 'unlimited'}")
    click.echo(f"expires: {_when(info.expires_at)}")
    click.echo(f"tags:    {', '.join(info.tags) or '-'}")
    click.echo(f"ota:     {_ota(info)}")
    ota_query = (
        "&ota=1" if info.require_ota and not info.ota else ""
    )  # the plain profile is refused
    if config.server_url:
        url = enrollment_url(config.server_url, new.token) + ota_query
        click.echo(f"url:     {url}")
        if qr:
            _qr(url)
    else:
        click.echo(
            "warning: server_url is not set (config.toml or MDM_SERVER_URL), so there is no "
            f"enrollment URL: devices enroll at <server_url>/mdm/enroll?token=...{ota_query}",
            err=True,
        )
    click.echo("The token is shown only now (only its hash is stored); it is the last line:")
    click.echo(new.token)


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else "never"


def _ota(info: TokenInfo) -> str:
    if info.require_ota:
        return "required"
    return "default" if info.ota else "on request (&ota=1)"


def _state(info: TokenInfo) -> str:
    return info.problem(datetime.now(UTC)) or "active"


@enroll_token.command("list")
def list_tokens() -> None:
    """List tokens (id and first characters only)."""
    rows = [("ID", "TOKEN", "USES", "EXPIRES", "STATE", "OTA", "TAGS")]
    for info in _tokens().list():
        limit = str(info.max_uses) if info.max_uses is not None else "-"
        rows.append(
            (
                info.id,
                f"{info.prefix}…",
                f"{info.uses}/{limit}",
                _when(info.expires_at),
                _state(info),
                "required" if info.require_ota else "default" if info.ota else "-",
                ",".join(info.tags) or "-",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))


@enroll_token.command()
@click.argument("token_id")
def revoke(token_id: str) -> None:
    """Revoke a token by its id: no new device enrolls with it."""
    if not _tokens().revoke(token_id):
        raise click.ClickException(f"no active token with id {token_id!r}")
    click.echo(f"revoked {token_id}")
