"""``mdmserver backup DIR`` and ``mdmserver restore DIR``: the instance, copied and checked."""

from __future__ import annotations

from pathlib import Path

import click

from mdmserver.backup import BackupError
from mdmserver.backup import backup as write_backup
from mdmserver.backup import restore as restore_backup
from mdmserver.cli._instance import instance_config, instance_files_exist, open_database
from mdmserver.config import load_config


def _progress(step: str) -> None:
    click.echo(f"... {step}", err=True)


@click.command()
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
def backup(folder: Path) -> None:
    """Write a consistent copy of the instance (database, keys, config) into FOLDER.

    Safe while the server runs. Every file is readable by you only: it holds the CA and push
    keys, so keep the copy as safe as the instance itself.
    """
    config = instance_config()
    open_database(config).dispose()  # migrated (embedded default) or refused when behind
    try:
        done = write_backup(config, folder, progress=_progress)
    except BackupError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(
        f"backed up the {done.database} database ({done.revisions} revisions) and "
        f"{done.files - 1} instance files into {folder}"
    )


@click.command()
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Replace the instance that exists at MDM_HOME.")
def restore(folder: Path, force: bool) -> None:
    """Check the backup in FOLDER (checksums, versions) and restore it as MDM_HOME."""
    config = load_config()
    try:
        done = restore_backup(
            config, folder, exists=instance_files_exist(config), force=force, progress=_progress
        )
    except BackupError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(
        f"restored the {done.database} database ({done.revisions} revisions) and "
        f"{done.files} instance files into {config.home.resolve()}"
    )
