"""Back up an instance to a folder, and restore it: database, keys and configuration.

The database copy is consistent while the server runs: SQLite's online backup API copies a
snapshot page by page, ``pg_dump`` reads PostgreSQL in one transaction. Beside it go every
file of MDM_HOME (CA, signing, TLS and push keys, config.toml, policies, templates). Every
file is written 0600 in a 0700 folder — the keys are the instance — and ``manifest.json``
records each file's SHA-256 and the schema revisions, so ``restore`` refuses a copy that is
damaged, incomplete, or from a newer mdmserver than the one restoring it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from mdmserver.config import Config
from mdmserver.logs import get_logger
from mdmserver.push.instance import write_private
from mdmserver.storage.sql import migrate
from mdmserver.storage.sql.engine import make_engine, normalise_url

log = get_logger("backup")

FORMAT = 1
MANIFEST = "manifest.json"
SQLITE_COPY = "database.sqlite3"
POSTGRES_DUMP = "database.pgdump"
HOME = "home"  # MDM_HOME's files, under this folder of the backup

Progress = Callable[[str], None]


class BackupError(RuntimeError):
    """A backup or restore that cannot be done as asked; the message says why."""


@dataclass(frozen=True)
class Summary:
    folder: Path
    database: str  # "sqlite" or "postgresql"
    files: int
    revisions: int


def _sqlite_path(config: Config) -> Path | None:
    url = make_url(normalise_url(config.resolved_database_url))
    if url.get_backend_name() != "sqlite":
        return None
    if not url.database or url.database == ":memory:":
        raise BackupError("an in-memory SQLite database cannot be backed up")
    return Path(url.database)


def _libpq_url(config: Config) -> str:
    """The URL pg_dump and pg_restore understand (no SQLAlchemy driver suffix)."""
    url = make_url(normalise_url(config.resolved_database_url)).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise BackupError(f"{name} is not installed (Debian: apt-get install postgresql-client)")
    return found


def _run(args: list[str], what: str) -> None:
    done = subprocess.run(args, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip().splitlines()
        raise BackupError(f"{what} failed: {detail[-1] if detail else done.returncode}")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _private_file(path: Path) -> None:
    """Create PATH empty with mode 0600 (before anything is written into it)."""
    path.unlink(missing_ok=True)
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def _home_files(config: Config, skip: set[Path]) -> list[Path]:
    home = config.home.resolve()
    found = []
    for path in sorted(home.rglob("*")):
        if not path.is_file() or path.is_symlink() or path.resolve() in skip:
            continue
        if path.name.startswith(".") and path.name.endswith(".tmp"):
            continue  # a half-written file of write_private
        found.append(path)
    return found


def _version() -> str:
    try:
        return metadata.version("mdmserver")
    except metadata.PackageNotFoundError:
        return "unknown"


def backup(config: Config, folder: Path, progress: Progress = lambda _: None) -> Summary:
    """Write a consistent copy of the instance into FOLDER (which must be new or empty)."""
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise BackupError(f"{folder} is not an empty folder: back up into a new one")
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    folder.chmod(0o700)
    engine = make_engine(config.resolved_database_url)
    try:
        status = migrate.schema_status(engine)
        heads = sorted(migrate.current_revisions(engine))
    finally:
        engine.dispose()
    database = _sqlite_path(config)
    skip: set[Path] = set()
    if database is not None:
        if not database.is_file():
            raise BackupError(f"the database {database} does not exist")
        skip = {database.resolve(), *(Path(f"{database.resolve()}{s}") for s in ("-wal", "-shm"))}
        progress(f"copying the SQLite database {database}")
        target = folder / SQLITE_COPY
        _private_file(target)
        source = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
        copy = sqlite3.connect(target)
        try:
            source.backup(copy, pages=1024)
        finally:
            copy.close()
            source.close()
        kind = "sqlite"
    else:
        progress("dumping the PostgreSQL database (pg_dump)")
        target = folder / POSTGRES_DUMP
        _private_file(target)
        _run(
            [
                _tool("pg_dump"),
                "--format=custom",
                "--no-owner",
                f"--file={target}",
                f"--dbname={_libpq_url(config)}",
            ],
            "pg_dump",
        )
        target.chmod(0o600)
        kind = "postgresql"
    files: dict[str, dict[str, Any]] = {target.name: {"sha256": _sha256(target)}}
    home = config.home.resolve()
    sources = _home_files(config, skip) if home.is_dir() else []
    progress(f"copying {len(sources)} files of {home}")
    for path in sources:
        relative = path.relative_to(home)
        destination = folder / HOME / relative
        _private_folder(destination.parent, folder)
        write_private(destination, path.read_bytes())
        files[f"{HOME}/{relative.as_posix()}"] = {"sha256": _sha256(destination)}
    for outside in _files_outside_home(config):
        progress(f"warning: {outside} is outside MDM_HOME and NOT in this backup: copy it too")
    manifest = {
        "format": FORMAT,
        "mdmserver_version": _version(),
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "database": {"kind": kind, "file": target.name, "heads": heads},
        "revisions_applied": status.applied,
        "files": files,
    }
    write_private(folder / MANIFEST, json.dumps(manifest, indent=2, sort_keys=True).encode())
    log.info(
        "backup_written",
        extra={"fields": {"folder": str(folder), "database": kind, "files": len(files)}},
    )
    return Summary(folder, kind, len(files), status.applied)


def _files_outside_home(config: Config) -> list[Path]:
    """Key and CA files the settings place outside MDM_HOME (the backup copies MDM_HOME)."""
    home = config.home.resolve()
    named = [
        config.ca_cert_file,
        config.push_cert_file,
        config.push_key_file,
        config.apns_ca_file,
        config.compliance_policy_file,
        *config.device_ca_files,
    ]
    paths = [Path(value).resolve() for value in named if value]
    return [p for p in paths if p.is_file() and home not in p.parents]


def _private_folder(path: Path, root: Path) -> None:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    while path != root and root in path.parents:
        path.chmod(0o700)
        path = path.parent


def read_manifest(folder: Path) -> dict[str, Any]:
    """The backup's manifest, after checking every file against it (and nothing extra)."""
    path = folder / MANIFEST
    if not path.is_file():
        raise BackupError(f"{folder} is not an mdmserver backup (no {MANIFEST})")
    try:
        manifest = json.loads(path.read_text())
    except ValueError as exc:
        raise BackupError(f"{path} is damaged: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BackupError(f"{path}: unknown backup format {manifest.get('format')!r}")
    listed = manifest.get("files")
    if not isinstance(listed, dict):
        raise BackupError(f"{path} lists no files")
    present = {
        p.relative_to(folder).as_posix()
        for p in folder.rglob("*")
        if p.is_file() and p.name != MANIFEST
    }
    missing, extra = sorted(set(listed) - present), sorted(present - set(listed))
    if missing:
        raise BackupError(f"the backup is incomplete: {', '.join(missing)} missing")
    if extra:
        raise BackupError(f"the backup holds {', '.join(extra)}, which its manifest does not list")
    for name, entry in sorted(listed.items()):
        if _sha256(folder / name) != entry.get("sha256"):
            raise BackupError(f"the backup is damaged: {name} does not match its checksum")
    known = migrate.known_revisions()
    unknown = sorted(set(manifest["database"]["heads"]) - known)
    if unknown:
        raise BackupError(
            f"the backup's database has revision(s) {', '.join(unknown)} this mdmserver does "
            f"not know (made by version {manifest.get('mdmserver_version')}): restore it with "
            "that version or a newer one"
        )
    return manifest


def restore(
    config: Config,
    folder: Path,
    *,
    exists: bool,
    force: bool = False,
    progress: Progress = lambda _: None,
) -> Summary:
    """Restore the backup in FOLDER as the instance CONFIG names (MDM_HOME, database).

    ``exists`` says whether an instance is there already: it is replaced only with ``force``.
    """
    manifest = read_manifest(folder)
    if exists and not force:
        raise BackupError(
            f"an instance exists at MDM_HOME={config.home.resolve()}: restoring would replace "
            "its keys and data; restore into a new place, or give --force"
        )
    kind = manifest["database"]["kind"]
    database = _sqlite_path(config)
    if (database is None) != (kind == "postgresql"):
        target_kind = "SQLite" if database is not None else "PostgreSQL"
        raise BackupError(
            f"the backup holds a {kind} database but the configured one is {target_kind}: "
            "set MDM_DATABASE_URL to the same kind of database"
        )
    home = config.home
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    files = [name for name in manifest["files"] if name.startswith(f"{HOME}/")]
    progress(f"restoring {len(files)} files into {home.resolve()}")
    for name in files:
        destination = home / name[len(HOME) + 1 :]
        destination.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        write_private(destination, (folder / name).read_bytes())
    source = folder / manifest["database"]["file"]
    if database is not None:
        progress(f"restoring the SQLite database into {database}")
        for suffix in ("-wal", "-shm"):
            Path(f"{database}{suffix}").unlink(missing_ok=True)
        database.parent.mkdir(parents=True, exist_ok=True)
        write_private(database, source.read_bytes())
    else:
        progress("restoring the PostgreSQL database (pg_restore)")
        args = [_tool("pg_restore"), "--no-owner", "--exit-on-error", "--single-transaction"]
        if force:
            args += ["--clean", "--if-exists"]
        else:
            _refuse_non_empty(config)
        _run([*args, f"--dbname={_libpq_url(config)}", str(source)], "pg_restore")
    engine = make_engine(config.resolved_database_url)
    try:
        if config.migrate_on_start:
            migrate.upgrade(engine)  # a backup from an older release catches up
        status = migrate.schema_status(engine)
    finally:
        engine.dispose()
    log.info(
        "backup_restored",
        extra={"fields": {"folder": str(folder), "database": kind, "files": len(files)}},
    )
    return Summary(folder, kind, len(files), status.applied)


def _refuse_non_empty(config: Config) -> None:
    from sqlalchemy import inspect

    engine = make_engine(config.resolved_database_url)
    try:
        tables = inspect(engine).get_table_names()
    finally:
        engine.dispose()
    if tables:
        raise BackupError(
            f"the configured PostgreSQL database already has {len(tables)} tables: restore "
            "into an empty database, or give --force to replace its contents"
        )
