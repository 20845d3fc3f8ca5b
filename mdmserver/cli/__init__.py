"""The ``mdmserver`` command: Flask's CLI plus the server's own command groups."""

from __future__ import annotations

import click
from flask.cli import FlaskGroup

from mdmserver.app import create_app
from mdmserver.cli.api_key import api_key
from mdmserver.cli.apps import apps
from mdmserver.cli.commands import command, lock, wipe
from mdmserver.cli.compliance import compliance, inventory
from mdmserver.cli.db import db
from mdmserver.cli.demo import demo
from mdmserver.cli.devices import devices
from mdmserver.cli.enroll_token import enroll_token
from mdmserver.cli.init import init
from mdmserver.cli.profiles import profiles
from mdmserver.cli.push_cert import push_cert
from mdmserver.cli.queue import queue
from mdmserver.cli.serve import serve
from mdmserver.cli.simulate import simulate
from mdmserver.cli.worker import worker


@click.group(cls=FlaskGroup, create_app=create_app, add_version_option=False)
def main() -> None:
    """Apple MDM server. Settings come from MDM_* variables and <MDM_HOME>/config.toml."""


main.add_command(serve)
main.add_command(db)
main.add_command(init)
main.add_command(enroll_token)
for _admin_command in (api_key, devices, lock, wipe, command, queue):
    main.add_command(_admin_command)
main.add_command(push_cert)
main.add_command(worker)
main.add_command(profiles)
main.add_command(demo)
main.add_command(simulate)
main.add_command(inventory)
main.add_command(compliance)
main.add_command(apps)
