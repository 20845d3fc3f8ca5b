"""A private nginx for the proxy recipes' tests: its own prefix folder, ports and pid file.

The site files under ``deploy/nginx/`` are the ones operators install; :func:`render` fills
their ``${NAME}`` placeholders exactly as ``envsubst`` with a variable list would (nginx's own
``$variables`` are left alone), and :class:`Nginx` runs them in a generated ``nginx.conf``
(foreground, unprivileged ports, logs in the prefix) until :meth:`Nginx.stop`.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType

_PLACEHOLDER = re.compile(r"\$\{([A-Z][A-Z0-9_]*)\}")


class NginxMissing(RuntimeError):
    """No nginx binary on this machine (Debian: ``apt-get install -y nginx``)."""


def nginx_binary() -> str:
    found = shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.access(p, os.X_OK)), None
    )
    if found is None:
        raise NginxMissing("nginx is not installed (Debian: apt-get install -y nginx)")
    return found


def render(template: Path | str, values: dict[str, str]) -> str:
    """The template with every ``${NAME}`` replaced; a name without a value is an error."""
    text = Path(template).read_text() if isinstance(template, Path) else template

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            raise KeyError(f"{name} is used by the template but has no value")
        return values[name]

    return _PLACEHOLDER.sub(value, text)


class Nginx:
    """``nginx -p PREFIX`` in the foreground, serving ``sites`` (rendered server blocks)."""

    def __init__(self, prefix: Path, sites: list[str], ports: list[int]) -> None:
        self.prefix = prefix
        self.ports = ports
        self.binary = nginx_binary()
        for name in ("logs", "temp", "sites"):
            (prefix / name).mkdir(parents=True, exist_ok=True)
        for index, site in enumerate(sites):
            (prefix / "sites" / f"{index}.conf").write_text(site)
        temp = prefix / "temp"
        # Run as root (CI containers), nginx would hand its workers to "nobody", who cannot
        # read the test's keys in a private tmp folder.
        user = "user root;\n" if os.geteuid() == 0 else ""
        (prefix / "nginx.conf").write_text(
            f"""{user}daemon off;
worker_processes 1;
pid {prefix / "nginx.pid"};
error_log {prefix / "logs" / "error.log"} info;
events {{ worker_connections 256; }}
http {{
    access_log {prefix / "logs" / "access.log"};
    client_body_temp_path {temp / "body"};
    proxy_temp_path {temp / "proxy"};
    fastcgi_temp_path {temp / "fastcgi"};
    uwsgi_temp_path {temp / "uwsgi"};
    scgi_temp_path {temp / "scgi"};
    default_type text/plain;
    include {prefix / "sites"}/*.conf;
}}
"""
        )
        self.process: subprocess.Popen[bytes] | None = None

    def check(self) -> None:
        """``nginx -t``: the configuration parses (raises with nginx's message if not)."""
        done = subprocess.run(
            self._command("-t"), capture_output=True, text=True, timeout=30, check=False
        )
        if done.returncode != 0:
            raise RuntimeError(f"nginx -t failed:\n{done.stderr}")

    def start(self, timeout: float = 15.0) -> Nginx:
        self.check()
        log = (self.prefix / "logs" / "stderr.log").open("wb")
        self.process = subprocess.Popen(self._command(), stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + timeout
        for port in self.ports:
            while not _listening(port):
                if self.process.poll() is not None:
                    raise RuntimeError(f"nginx exited:\n{self.error_log()}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"nginx is not listening on {port}:\n{self.error_log()}")
                time.sleep(0.05)
        return self

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()  # SIGTERM: fast shutdown of master and workers
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)

    def error_log(self) -> str:
        path = self.prefix / "logs" / "error.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    def access_log(self) -> str:
        path = self.prefix / "logs" / "access.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def _command(self, *extra: str) -> list[str]:
        conf = str(self.prefix / "nginx.conf")
        return [self.binary, "-p", str(self.prefix), "-c", conf, "-e", "stderr", *extra]

    def __enter__(self) -> Nginx:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0
