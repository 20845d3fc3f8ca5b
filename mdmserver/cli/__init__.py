"""The ``mdmserver`` command: Flask's CLI plus the server's own command groups."""

from __future__ import annotations

import click
from flask.cli import FlaskGroup

from mdmserver.app import create_app
from mdmserver.cli.db import db
from mdmserver.cli.serve import serve


@click.group(cls=FlaskGroup, create_app=create_app, add_version_option=False)
def main() -> None:
    """Apple MDM server. Settings come from MDM_* variables and <MDM_HOME>/config.toml."""


main.add_command(serve)
main.add_command(db)
