"""Running the real server as its operators do, for the demo and the benchmark: ``mdmserver
serve`` and ``mdmserver worker`` as child processes of this checkout's code."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO, Any

import requests

import mdmserver

CODE_ROOT = Path(mdmserver.__file__).resolve().parent.parent
CLI = "from mdmserver.cli import main; main()"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_env(settings: dict[str, Any]) -> dict[str, str]:
    """This environment without its MDM_* settings, plus ``settings`` as MDM_* variables."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MDM_")}
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(CODE_ROOT), os.environ.get("PYTHONPATH", "")) if p
    )
    for name, value in settings.items():
        if isinstance(value, list | tuple):
            value = ",".join(str(v) for v in value)
        env[f"MDM_{name.upper()}"] = str(value)
    return env


def spawn(args: list[str], env: dict[str, str], log: IO[bytes], cwd: Path) -> subprocess.Popen:
    """``mdmserver ARGS...`` with this interpreter, output to ``log``."""
    return subprocess.Popen(
        [sys.executable, "-c", CLI, *args],
        env=env,
        cwd=cwd,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # Ctrl-C in a terminal reaches us, and we stop it in order
    )


def wait_ready(
    base_url: str, verify: str | bool, process: subprocess.Popen, timeout: float = 60.0
) -> float:
    """Seconds until the server answers GetCACaps; raises if it exits or stays silent."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with status {process.returncode}")
        try:
            reply = requests.get(
                f"{base_url}/scep", params={"operation": "GetCACaps"}, verify=verify, timeout=2
            )
            if reply.status_code == 200:
                return time.monotonic() - started
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"the server did not answer within {timeout:.0f}s")


def stop(process: subprocess.Popen, timeout: float = 20.0) -> None:
    """SIGTERM (the server and RQ shut down gracefully on it), then SIGKILL if it hangs."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants, from /proc (the server's supervisor and its workers)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(children.get(current, ()))
    return tree


def memory_kib(pid: int) -> tuple[int, int]:
    """(current RSS, peak RSS) of one process in KiB, from /proc/PID/status; (0, 0) if gone."""
    values = {"VmRSS": 0, "VmHWM": 0}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            name, _, rest = line.partition(":")
            if name in values:
                values[name] = int(rest.split()[0])
    except OSError:
        pass
    return values["VmRSS"], values["VmHWM"]


class MemorySampler:
    """Peak total RSS of some process trees, sampled from /proc in a background thread (the
    kernel's per-process VmHWM cannot add up processes that peak at different moments)."""

    def __init__(self, pids: list[int], every: float = 0.5) -> None:
        self.pids = pids
        self.every = every
        self.peak_total_kib = 0
        self.peak_by_pid: dict[int, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def start(self) -> MemorySampler:
        self._thread.start()
        return self

    def sample(self) -> None:
        total = 0
        for root in self.pids:
            for pid in process_tree(root):
                rss, hwm = memory_kib(pid)
                total += rss
                self.peak_by_pid[pid] = max(self.peak_by_pid.get(pid, 0), hwm)
        self.peak_total_kib = max(self.peak_total_kib, total)

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.sample()

    def stop(self) -> None:
        self.sample()
        self._stop.set()
        self._thread.join(timeout=5)
