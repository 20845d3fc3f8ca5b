"""``mdmserver serve``: run the server (mdmserver/server: asyncio in front of WSGI threads).

The embedded default serves HTTPS with the instance's own TLS certificate; behind a
TLS-terminating proxy (the Procfile's web line) ``--no-tls`` serves plain HTTP.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from mdmserver.cli._instance import (
    instance_files_exist,
    missing_instance_message,
    sqlite_file,
)
from mdmserver.config import Config, load_config
from mdmserver.instance_files import ensure_home
from mdmserver.logs import configure_logging
from mdmserver.server.http import Limits
from mdmserver.server.workers import ServeError, ServerOptions, bind, run, tls_context
from mdmserver.wsgi import APP_LOAD_ERROR, say, startup_problems

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication


def _first_run_init(home: Path, host: str, port: int) -> None:
    """The embedded default must run from one command: make the instance it needs."""
    from mdmserver.enrollment.instance import init_instance

    public_host = "localhost" if host in {"127.0.0.1", "0.0.0.0", "::", "::1"} else host
    url = os.environ.get("MDM_SERVER_URL") or f"https://{public_host}:{port}"
    result = init_instance(home, url)
    click.echo(f"first run: created {len(result.written)} files in {home} for {url}", err=True)
    click.echo("  (run `mdmserver init --server-url https://<public name>` to choose)", err=True)


def _is_existing_instance(config: Config) -> bool:
    """Files in MDM_HOME, or a configured database that already holds a schema (its CA is
    somewhere: making a new one would orphan every enrolled device)."""
    if instance_files_exist(config):
        return True
    if not config.database_url or sqlite_file(config) is not None:
        return False
    from mdmserver.storage.sql import migrate
    from mdmserver.storage.sql.engine import make_engine

    engine = make_engine(config.resolved_database_url)
    try:
        return migrate.schema_status(engine).applied > 0
    finally:
        engine.dispose()


def _create_app() -> WSGIApplication:
    from mdmserver.web.app import create

    return create()


def limits(config: Config) -> Limits:
    return Limits(
        header_timeout=config.http_header_timeout_seconds,
        body_timeout=config.http_body_timeout_seconds,
        keepalive_timeout=config.http_keepalive_seconds,
        max_header_bytes=config.http_max_header_bytes,
        max_body_bytes=config.max_body_bytes,
    )


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8443, show_default=True, type=int)
@click.option("--workers", default=2, show_default=True, type=int, help="Web worker processes.")
@click.option("--threads", default=4, show_default=True, type=int, help="Threads per worker.")
@click.option("--certfile", default=None, help="TLS certificate (PEM); devices require HTTPS.")
@click.option("--keyfile", default=None, help="TLS private key (PEM).")
@click.option(
    "--tls/--no-tls",
    default=True,
    show_default=True,
    help="--no-tls: plain HTTP, only behind a TLS-terminating proxy.",
)
@click.option(
    "--init/--no-init",
    "init_if_missing",
    default=True,
    show_default=True,
    help="On first run, create the instance (CA, signing and TLS certificates, config).",
)
def serve(
    host: str,
    port: int,
    workers: int,
    threads: int,
    certfile: str | None,
    keyfile: str | None,
    tls: bool,
    init_if_missing: bool,
) -> None:
    """Run the MDM server (embedded default: SQLite in MDM_HOME, jobs in-process)."""
    if (certfile is None) != (keyfile is None):
        raise click.ClickException("--certfile and --keyfile go together: give both or neither")
    for option, path in (("--certfile", certfile), ("--keyfile", keyfile)):
        if path is not None and not Path(path).is_file():
            raise click.BadParameter(f"file {path} does not exist", param_hint=f"'{option}'")
    if not tls and certfile:
        raise click.ClickException("--no-tls serves plain HTTP: drop --certfile and --keyfile")
    if workers < 1 or threads < 1:
        raise click.ClickException("--workers and --threads must be at least 1")
    config = load_config()
    try:
        sock = bind(host, port)  # first: a busy port fails before anything else happens
    except ServeError as exc:
        raise click.ClickException(str(exc)) from None
    if not _is_existing_instance(config):
        if init_if_missing:
            _first_run_init(config.home, host, port)
            config = load_config()
        elif not config.database_url:
            sock.close()
            raise click.ClickException(missing_instance_message(config))
    elif not config.resolved_ca_cert_file.is_file():
        # Never a first run on an existing instance: a new CA would orphan every device.
        sock.close()
        raise click.ClickException(
            f"the device CA {config.resolved_ca_cert_file} is missing from this instance: "
            "restore it (`mdmserver restore`) or set MDM_CA_CERT_FILE to where it is"
        )
    ensure_home(config.home)  # 0700 and its files 0600, an existing instance included
    if tls and certfile is None:
        default_cert, default_key = config.home / "tls.pem", config.home / "tls.key"
        if default_cert.is_file() and default_key.is_file():
            certfile, keyfile = str(default_cert), str(default_key)
    try:
        context = tls_context(certfile, keyfile) if certfile and keyfile else None
    except ServeError as exc:
        sock.close()
        raise click.ClickException(str(exc)) from None
    # Migrate (the embedded default) or check the schema once, before any worker starts: a
    # schema behind the code is one line naming `mdmserver db upgrade`, and exit status 4.
    problems = startup_problems()
    if problems:
        sock.close()
        say(problems)
        sys.exit(APP_LOAD_ERROR)
    configure_logging(config.log_level, config.log_json)  # the supervisor's own lines
    scheme = "https" if context else "http"
    click.echo(f"mdmserver listening on {scheme}://{host}:{port} (data in {config.home})", err=True)
    options = ServerOptions(
        workers=workers,
        threads=threads,
        limits=limits(config),
        max_connections_per_address=config.http_max_connections_per_address,
    )
    sys.exit(run(_create_app, options, sock, context))
