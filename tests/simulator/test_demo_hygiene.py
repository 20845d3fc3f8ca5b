"""``mdmserver demo --keep-running`` stopped with Ctrl-C, as a user stops it in a terminal:
it says where its instance is, removes it (CA key, push key, database), and prints no
traceback."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _start_demo(tmp_path: Path, *extra: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MDM_")}
    env.update(PYTHONPATH=str(REPO), TMPDIR=str(tmp_path / "tmp"), PYTHONUNBUFFERED="1")
    (tmp_path / "tmp").mkdir()
    return subprocess.Popen(
        [sys.executable, "-c", "from mdmserver.cli import main; main()", "demo", *extra],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group, as a terminal's foreground job
    )


def _read_until(process: subprocess.Popen[str], marker: str, timeout: float = 90) -> str:
    assert process.stdout is not None
    seen = ""
    deadline = time.monotonic() + timeout
    while marker not in seen:
        assert time.monotonic() < deadline, seen
        line = process.stdout.readline()
        assert line, f"the demo ended early:\n{seen}"
        seen += line
    return seen


def _ctrl_c(process: subprocess.Popen[str]) -> tuple[int, str]:
    os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C does: the whole foreground group
    rest, _ = process.communicate(timeout=60)
    return process.returncode, rest


def test_ctrl_c_removes_the_temporary_instance_without_a_traceback(tmp_path):
    demo = _start_demo(tmp_path, "--devices", "1", "--timeout", "60", "--keep-running")
    try:
        before = _read_until(demo, "Ctrl-C stops them")
        home = Path(re.search(r"instance\s+(\S+)", before).group(1))
        assert "removed when the demo ends" in before
        assert (home / "ca.key").is_file() and (home / "mdmserver.db").is_file()
        before += _read_until(demo, "removed on Ctrl-C")
        code, after = _ctrl_c(demo)
    finally:
        if demo.poll() is None:
            os.killpg(demo.pid, signal.SIGKILL)
    output = before + after
    assert code == 0, output
    assert "Traceback" not in output
    assert f"removed the demo instance {home}" in after
    assert not home.exists() and not home.parent.exists()
    assert list((tmp_path / "tmp").iterdir()) == []


def test_an_instance_given_with_home_is_kept(tmp_path):
    home = tmp_path / "mine"
    demo = _start_demo(
        tmp_path, "--devices", "1", "--timeout", "60", "--keep-running", "--home", str(home)
    )
    try:
        before = _read_until(demo, "Ctrl-C stops them")
        assert "kept (--home)" in before
        code, after = _ctrl_c(demo)
    finally:
        if demo.poll() is None:
            os.killpg(demo.pid, signal.SIGKILL)
    assert code == 0 and "Traceback" not in before + after, before + after
    assert (home / "ca.key").is_file() and (home / "mdmserver.db").is_file()


@pytest.mark.parametrize("moment", ["  instance ", "ready in"])
def test_ctrl_c_in_the_middle_stops_cleanly(tmp_path, moment):
    """While the instance is made (before the server runs), and once the server is up."""
    demo = _start_demo(tmp_path, "--devices", "2", "--timeout", "60")
    try:
        before = _read_until(demo, moment)
        home = Path(re.search(r"instance\s+(\S+)", before).group(1))
        code, after = _ctrl_c(demo)
    finally:
        if demo.poll() is None:
            os.killpg(demo.pid, signal.SIGKILL)
    assert code == 130, before + after
    assert "Traceback" not in before + after
    assert "demo OK" not in after and not home.parent.exists()
