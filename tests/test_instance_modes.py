"""The instance folder is 0700 and every file the server creates in it 0600, whichever command
created it (issue 13 item 5): keys, certificates, config.toml, the SQLite database and its
-wal/-shm. Each command runs as a real process with the usual umask 022."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.test_serve_cli import REPO, free_port

MAIN = "from mdmserver.cli import main; main()"


def _env(home: Path) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "MDM_LOG_LEVEL": "WARNING", "MDM_HOME": str(home)}
    env.pop("MDM_DATABASE_URL", None)
    return env


def _mdmserver(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = " ".join([f"exec {sys.executable!s} -c '{MAIN}'", *args])
    return subprocess.run(
        ["sh", "-c", f"umask 022; {command}"],
        env=_env(home),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def modes(home: Path) -> dict[str, str]:
    """The folder's mode and every file's, as octal strings by path relative to the folder."""
    found = {".": oct(stat.S_IMODE(home.stat().st_mode))}
    for path in home.rglob("*"):
        found[str(path.relative_to(home))] = oct(stat.S_IMODE(path.stat().st_mode))
    return found


def assert_private(home: Path, expected: set[str]) -> None:
    found = modes(home)
    assert expected <= set(found), f"missing {expected - set(found)}: {found}"
    loose = {
        name: mode for name, mode in found.items() if mode != ("0o700" if name == "." else "0o600")
    }
    assert loose == {}, f"too open: {loose}"


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
def test_serve_on_a_fresh_home(tmp_path):
    home = tmp_path / "fresh"
    port = free_port()
    server = subprocess.Popen(
        [
            "sh",
            "-c",
            f"umask 022; exec {sys.executable} -c '{MAIN}' serve --port {port} --workers 1",
        ],
        env=_env(home),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                reply = requests.get(
                    f"https://127.0.0.1:{port}/scep",
                    params={"operation": "GetCACaps"},
                    verify=False,
                    timeout=2,
                )
                break
            except requests.ConnectionError:
                assert time.monotonic() < deadline, "server did not come up"
                time.sleep(0.3)
        assert reply.status_code == 200
        assert_private(
            home,
            {
                "ca.pem", "ca.key", "signing.pem", "signing.key", "tls.pem", "tls.key",
                "config.toml", "mdmserver.db", "mdmserver.db-wal", "mdmserver.db-shm",
            },
        )  # fmt: skip
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_init(tmp_path):
    home = tmp_path / "made-by-init"
    done = _mdmserver(home, "init", "--server-url", "https://mdm.example.test")
    assert done.returncode == 0, done.stderr
    assert_private(home, {"ca.pem", "ca.key", "signing.pem", "tls.pem", "config.toml"})


def test_a_cli_command_on_a_new_instance(tmp_path):
    """The database is created by the first command that needs it, here a CLI command."""
    home = tmp_path / "made-by-the-cli"
    made = _mdmserver(home, "init", "--server-url", "https://mdm.example.test")
    assert made.returncode == 0, made.stderr
    assert not (home / "mdmserver.db").exists()
    done = _mdmserver(home, "enroll-token", "create", "--uses", "1")
    assert done.returncode == 0, done.stderr
    assert_private(home, {"mdmserver.db", "ca.key", "config.toml"})


def test_a_cli_command_refuses_a_home_that_holds_no_instance(tmp_path):
    home = tmp_path / "nothing-here"
    done = _mdmserver(home, "enroll-token", "create", "--uses", "1")
    assert done.returncode == 1
    assert "no mdmserver instance" in done.stderr
    assert not home.exists()


def test_an_existing_loose_home_is_tightened(tmp_path):
    home = tmp_path / "loose"
    home.mkdir(mode=0o755)
    os.chmod(home, 0o755)
    (home / "mdmserver.db").touch(mode=0o644)
    os.chmod(home / "mdmserver.db", 0o644)
    done = _mdmserver(home, "enroll-token", "list")
    assert done.returncode == 0, done.stderr
    assert_private(home, {"mdmserver.db"})
