"""The deployment recipes (deploy/) run for real: Debian's nginx in front of the server.

Each test gets its own nginx (prefix folder, ports, pid file), stopped at teardown. Without an
nginx binary the tests skip with the reason; in CI (CI=true) they fail instead, so a green CI
means the recipes were exercised (.ci/run installs nginx when it is absent).
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path

import pytest

from mdmserver.testing.nginx import NginxMissing, nginx_binary

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"


@pytest.fixture
def nginx_available() -> str:
    try:
        return nginx_binary()
    except NginxMissing as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(str(exc))


def procfile() -> dict[str, str]:
    """The Procfile's process types and their commands."""
    entries: dict[str, str] = {}
    for line in (REPO / "Procfile").read_text().splitlines():
        name, sep, command = line.partition(":")
        if sep and name.strip() and not line.lstrip().startswith("#"):
            entries[name.strip()] = command.strip()
    return entries


def shell(command: str) -> list[str]:
    """A Procfile command as a process: through sh, so ${PORT:-8443} expands as on a PaaS."""
    shlex.split(command)  # a malformed line fails here with a clear error
    return ["sh", "-c", f"exec {command}"]
