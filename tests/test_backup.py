"""``mdmserver backup DIR`` / ``mdmserver restore DIR``: a real instance (init, a device, an
API key, a token) copied and restored into a fresh place, on SQLite and on PostgreSQL."""

from __future__ import annotations

import json
import os
import shutil
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from click.testing import CliRunner

from mdmserver.app import create_app
from mdmserver.cli import main
from mdmserver.config import load_config
from mdmserver.web.runtime import runtime
from tests.api.conftest import Api, make_key
from tests.conftest import POSTGRES_ADMIN_URL


def cli(env: dict[str, str], *args: str):
    return CliRunner().invoke(main, list(args), env=env)


@contextmanager
def fresh_database(database_url: str, tmp_path: Path) -> Iterator[str]:
    if database_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'restored.db'}"
        return
    from mdmserver.testing.scratch import scratch_database

    with scratch_database(POSTGRES_ADMIN_URL, "mdm_restore") as url:
        yield url


def test_backup_and_restore_round_trip(tmp_path, database_url):
    if "postgresql" in database_url and not shutil.which("pg_dump") and not os.environ.get("CI"):
        pytest.skip("pg_dump/pg_restore are not installed (Debian: postgresql-client)")
    env = {"MDM_HOME": str(tmp_path / "inst"), "MDM_DATABASE_URL": database_url}
    assert cli(env, "init", "--server-url", "https://mdm.example.test").exit_code == 0
    app = create_app(load_config(environ=env, overrides={"auto_migrate": True}))
    try:
        key = make_key(app, "backup-test")
        udid = Api(app, key).enroll("iOS", serial="BACKUP-1")
    finally:
        runtime(app).close()
    assert cli(env, "enroll-token", "create", "--tag", "kept").exit_code == 0

    folder = tmp_path / "backup"
    made = cli(env, "backup", str(folder))
    assert made.exit_code == 0, made.output
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    files = [p for p in folder.rglob("*") if p.is_file()]
    assert files and all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in files)
    manifest = json.loads((folder / "manifest.json").read_text())
    assert {"home/ca.key", "home/signing.key", "home/tls.key", "home/config.toml"} <= set(
        manifest["files"]
    )
    assert manifest["database"]["kind"] == ("sqlite" if "sqlite" in database_url else "postgresql")
    assert cli(env, "backup", str(folder)).exit_code == 1  # never into a used folder

    with fresh_database(database_url, tmp_path) as target_url:
        target = {"MDM_HOME": str(tmp_path / "restored"), "MDM_DATABASE_URL": target_url}
        restored = cli(target, "restore", str(folder))
        assert restored.exit_code == 0, restored.output
        for name in ("ca.key", "ca.pem", "signing.key", "tls.key", "config.toml"):
            original, copy = tmp_path / "inst" / name, tmp_path / "restored" / name
            assert copy.read_bytes() == original.read_bytes(), name
            assert stat.S_IMODE(copy.stat().st_mode) == 0o600
        again = cli(target, "restore", str(folder))
        assert again.exit_code == 1 and "--force" in again.output
        tokens = cli(target, "enroll-token", "list")
        assert tokens.exit_code == 0 and "kept" in tokens.output
        app = create_app(load_config(environ=target))
        try:
            reply = app.test_client().get(
                "/api/v1/devices", headers={"Authorization": f"Bearer {key}"}
            )
            assert reply.status_code == 200, reply.get_json()
            assert [d["id"] for d in reply.get_json()["devices"]] == [udid]
        finally:
            runtime(app).close()
        forced = cli(target, "restore", str(folder), "--force")
        assert forced.exit_code == 0, forced.output


def test_restore_refuses_a_damaged_or_incomplete_backup(tmp_path):
    env = {"MDM_HOME": str(tmp_path / "inst")}
    assert cli(env, "init", "--server-url", "https://mdm.example.test").exit_code == 0
    folder = tmp_path / "backup"
    org_ca = tmp_path / "org-ca.pem"
    org_ca.write_bytes((tmp_path / "inst" / "ca.pem").read_bytes())
    made = cli({**env, "MDM_DEVICE_CA_FILES": str(org_ca)}, "backup", str(folder))
    assert made.exit_code == 0, made.output
    assert f"warning: {org_ca} is outside MDM_HOME and NOT in this backup" in made.output
    assert json.loads((folder / "manifest.json").read_text())["revisions_applied"] > 1
    target = {"MDM_HOME": str(tmp_path / "elsewhere")}

    key = folder / "home" / "ca.key"
    original = key.read_bytes()
    key.write_bytes(original.replace(b"A", b"B", 1))
    damaged = cli(target, "restore", str(folder))
    assert damaged.exit_code == 1 and "home/ca.key does not match its checksum" in damaged.output
    key.unlink()
    missing = cli(target, "restore", str(folder))
    assert missing.exit_code == 1 and "home/ca.key missing" in missing.output
    assert not (tmp_path / "elsewhere").exists()
    key.write_bytes(original)
    os.chmod(key, 0o600)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["database"]["heads"].append("9999_from_the_future")
    (folder / "manifest.json").write_text(json.dumps(manifest))
    newer = cli(target, "restore", str(folder))
    assert newer.exit_code == 1 and "9999_from_the_future" in newer.output
    assert not (tmp_path / "elsewhere").exists()
