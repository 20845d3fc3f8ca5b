"""``mdmserver serve``: run the server under gunicorn (the production WSGI server)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click
from gunicorn.app.base import BaseApplication

from mdmserver.cli._instance import (
    instance_files_exist,
    missing_instance_message,
    open_database,
    sqlite_file,
)
from mdmserver.config import Config, load_config
from mdmserver.instance_files import ensure_home


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
    from mdmserver.storage import migrate
    from mdmserver.storage.engine import make_engine

    engine = make_engine(config.resolved_database_url)
    try:
        return migrate.schema_status(engine).applied > 0
    finally:
        engine.dispose()


class _Gunicorn(BaseApplication):  # type: ignore[misc]
    def __init__(self, options: dict[str, Any]) -> None:
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        from mdmserver.wsgi import create

        return create()


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8443, show_default=True, type=int)
@click.option("--workers", default=2, show_default=True, type=int, help="Web worker processes.")
@click.option("--threads", default=4, show_default=True, type=int, help="Threads per worker.")
@click.option(
    "--certfile",
    default=None,
    type=click.Path(exists=True, dir_okay=False),
    help="TLS certificate (PEM); devices require HTTPS.",
)
@click.option(
    "--keyfile", default=None, type=click.Path(exists=True, dir_okay=False), help="TLS key (PEM)."
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
    init_if_missing: bool,
) -> None:
    """Run the MDM server (embedded default: SQLite in MDM_HOME, jobs in-process)."""
    config = load_config()
    if not _is_existing_instance(config):
        if not init_if_missing:
            raise click.ClickException(missing_instance_message(config))
        _first_run_init(config.home, host, port)
        config = load_config()
    elif not config.resolved_ca_cert_file.is_file():
        # Never a first run on an existing instance: a new CA would orphan every device.
        raise click.ClickException(
            f"the device CA {config.resolved_ca_cert_file} is missing from this instance: "
            "restore it (`mdmserver restore`) or set MDM_CA_CERT_FILE to where it is"
        )
    ensure_home(config.home)  # 0700 and its files 0600, an existing instance included
    if certfile is None:
        default_cert, default_key = config.home / "tls.pem", config.home / "tls.key"
        if default_cert.is_file() and default_key.is_file():
            certfile, keyfile = str(default_cert), str(default_key)
    # Migrate (embedded default) or check the schema once here, before any worker starts.
    open_database(config).dispose()
    scheme = "https" if certfile else "http"
    click.echo(f"mdmserver listening on {scheme}://{host}:{port} (data in {config.home})", err=True)
    options: dict[str, Any] = {
        "bind": f"{host}:{port}",
        "workers": workers,
        # Threaded workers keep connections alive: devices poll over TLS, and a handshake per
        # request would cost more than the request.
        "worker_class": "gthread",
        "threads": threads,
        "keepalive": 30,
        "accesslog": None,
        "errorlog": "-",
        "loglevel": config.log_level.lower(),
    }
    if certfile:
        options.update(certfile=certfile, keyfile=keyfile)
    _Gunicorn(options).run()
