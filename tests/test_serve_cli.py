"""The README's main command: `mdmserver serve` on a fresh folder runs a working HTTPS server."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_first_run_initialises_and_serves_https(tmp_path):
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO), "MDM_LOG_LEVEL": "WARNING"}
    env.pop("MDM_HOME", None)
    server = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from mdmserver.cli import main; main()",
            "serve",
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        ca = tmp_path / "instance" / "ca.pem"
        deadline = time.monotonic() + 60
        reply = None
        while time.monotonic() < deadline:
            try:
                reply = requests.get(
                    f"https://127.0.0.1:{port}/scep",
                    params={"operation": "GetCACaps"},
                    verify=False,
                    timeout=2,
                )
                break
            except requests.ConnectionError:
                time.sleep(0.3)
        assert reply is not None, "server did not come up"
        assert reply.status_code == 200 and "POSTPKIOperation" in reply.text
        assert ca.is_file() and (tmp_path / "instance" / "mdmserver.db").is_file()
        assert (tmp_path / "instance" / "ca.key").stat().st_mode & 0o777 == 0o600
        # Unsigned device traffic is refused, never with a 401.
        refused = requests.put(
            f"https://127.0.0.1:{port}/mdm/connect",
            data=b"<plist/>",
            headers={"Content-Type": "application/x-apple-aspen-mdm"},
            verify=False,
            timeout=5,
        )
        assert refused.status_code == 400
    finally:
        server.terminate()
        server.wait(timeout=30)


def run_serve(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "MDM_HOME": str(tmp_path / "instance")}
    return subprocess.run(
        [sys.executable, "-c", "from mdmserver.cli import main; main()", "serve", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_busy_port_fails_at_once_with_one_line(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        started = time.monotonic()
        result = run_serve(tmp_path, "--port", str(port), "--no-init")
        elapsed = time.monotonic() - started
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        f"Error: port {port} on 127.0.0.1 is already in use (is another server running?)"
    ]
    assert "listening" not in result.stderr + result.stdout
    assert elapsed < 15  # no retries (gunicorn tried five times)


def test_certfile_without_keyfile_is_refused_at_start(tmp_path):
    for args in (("--certfile", "tls.pem"), ("--keyfile", "tls.key")):
        result = run_serve(tmp_path, "--port", str(free_port()), *args)
        assert result.returncode != 0
        assert result.stderr.strip().splitlines() == [
            "Error: --certfile and --keyfile go together: give both or neither"
        ]
    assert not (tmp_path / "instance").exists()  # refused before anything was created
