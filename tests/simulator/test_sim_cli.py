"""The commands a newcomer runs: ``mdmserver demo`` (shortened) and ``mdmserver simulate``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from mdmserver.cli import main

REPO = Path(__file__).resolve().parents[2]
DEMO_ARGS = ("--devices", "2", "--timeout", "60")
SIM_ARGS = ("--devices", "3", "--duration", "0.5", "--notnow-rate", "0.1")


def test_demo_shows_the_lock_acknowledged(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("MDM_")}
    env["PYTHONPATH"] = str(REPO)
    done = subprocess.run(
        [sys.executable, "-c", "from mdmserver.cli import main; main()", "demo", *DEMO_ARGS],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "answered Acknowledged" in done.stdout
    assert "lock acknowledged" in done.stdout and "demo OK" in done.stdout


def test_simulate_enrolls_into_a_running_server(sim_server, monkeypatch, tmp_path):
    monkeypatch.setenv("MDM_HOME", str(tmp_path / "elsewhere"))
    result = CliRunner().invoke(
        main,
        [
            "simulate",
            "--token",
            sim_server.instance.token,
            "--server-url",
            sim_server.url,
            *SIM_ARGS,
        ],
    )
    assert result.exit_code == 0, result.output
    assert "enrolled 3/3" in result.output and "failed 0" in result.output
