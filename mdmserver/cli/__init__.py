"""The ``mdmserver`` command: the server's own command groups, nothing else.

A plain click group (not Flask's): ``--help`` builds no app and opens no database, and the
only way to run the server is ``serve``, never a development server. Mistakes a
user can make — a bad setting, a missing instance, a database that is unreachable or behind —
end in one plain message, never a traceback.
"""

from __future__ import annotations

from typing import Any

import click
from sqlalchemy.exc import DBAPIError, NoSuchModuleError

from mdmserver.cli.api_key import api_key
from mdmserver.cli.apps import apps
from mdmserver.cli.backup import backup, restore
from mdmserver.cli.commands import command, lock, wipe
from mdmserver.cli.compliance import compliance, inventory
from mdmserver.cli.db import db
from mdmserver.cli.declarations import declarations
from mdmserver.cli.demo import demo
from mdmserver.cli.devices import devices
from mdmserver.cli.enroll_token import enroll_token
from mdmserver.cli.init import init
from mdmserver.cli.os_update import os_update
from mdmserver.cli.profiles import profiles
from mdmserver.cli.push_cert import push_cert
from mdmserver.cli.queue import queue
from mdmserver.cli.serve import serve
from mdmserver.cli.simulate import simulate
from mdmserver.cli.users import users
from mdmserver.cli.worker import worker
from mdmserver.config import ConfigError
from mdmserver.storage.sql.migrate import SchemaNotCurrent


def configuration_problem(exc: ConfigError) -> click.ClickException:
    lines = "\n".join(f"  {problem}" for problem in exc.problems)
    return click.ClickException(f"the configuration cannot be used:\n{lines}")


def database_problem(exc: DBAPIError | NoSuchModuleError) -> click.ClickException:
    detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
    return click.ClickException(
        f"the database cannot be used ({detail}); check MDM_DATABASE_URL, and run "
        "`mdmserver db upgrade` if its schema is missing"
    )


class MainGroup(click.Group):
    """Turns the mistakes a user can make into one message each (exit status 1)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ConfigError as exc:
            raise configuration_problem(exc) from None
        except SchemaNotCurrent as exc:
            raise click.ClickException(str(exc)) from None
        except (DBAPIError, NoSuchModuleError) as exc:
            raise database_problem(exc) from None


@click.group(cls=MainGroup)
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
main.add_command(declarations)
main.add_command(os_update)
main.add_command(demo)
main.add_command(simulate)
main.add_command(inventory)
main.add_command(compliance)
main.add_command(users)
main.add_command(backup)
main.add_command(restore)
main.add_command(apps)
