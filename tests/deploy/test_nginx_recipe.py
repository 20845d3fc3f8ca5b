"""The production recipe, with real parts: deploy/nginx/mdmserver.conf.template in Debian's
nginx, terminating TLS in front of the Procfile's release and web commands (mdmserver serve) and its
worker (RQ, Redis) on an empty PostgreSQL database. A simulated device enrolls through the
proxy (profile, SCEP, Authenticate, TokenUpdate), is locked through the admin API, and its
acknowledgement is seen; the client certificate reaches the app only from nginx."""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import requests

from mdmserver.config import load_config
from mdmserver.crypto.ca import dump_cert_pem, dump_key_pem
from mdmserver.enrollment.instance import init_instance
from mdmserver.push.instance import install
from mdmserver.simulator import harness
from mdmserver.simulator.admin import AdminClient
from mdmserver.simulator.apple import FakeApple
from mdmserver.simulator.fleet import Fleet, FleetOptions
from mdmserver.testing.nginx import Nginx, render
from mdmserver.testing.scratch import scratch_database
from tests.conftest import POSTGRES_ADMIN_URL
from tests.deploy.conftest import DEPLOY, REPO, procfile, shell

REDIS_URL = "redis://127.0.0.1:6379/0"
HEADER = "X-SSL-Client-Cert"  # what the site file sets; MDM_CLIENT_CERT_HEADER names it


@pytest.fixture
def empty_postgres(postgres_database: str) -> Iterator[str]:
    """An empty PostgreSQL database (no tables at all), dropped afterwards."""
    with scratch_database(POSTGRES_ADMIN_URL, "mdm_recipe") as url:
        yield url


@pytest.fixture
def queue_prefix() -> Iterator[str]:
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except redis.exceptions.ConnectionError as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"Redis not reachable at {REDIS_URL}: {exc}")
    prefix = f"mdmrecipe-{uuid.uuid4().hex[:10]}"
    yield prefix
    client = redis.Redis.from_url(REDIS_URL)
    for key in client.scan_iter(f"*{prefix}*", count=1000):
        client.delete(key)
    client.close()


class Processes:
    """Child processes of one test, each logging to a file; all stopped at teardown."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.started: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(self, name: str, command: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        with (self.folder / f"{name}.log").open("ab") as log:
            process = subprocess.Popen(
                command, env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT
            )
        self.started.append((name, process))
        return process

    def log(self, name: str) -> str:
        path = self.folder / f"{name}.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def stop(self) -> None:
        for _, process in reversed(self.started):
            harness.stop(process)


def _cli(args: list[str], env: dict[str, str]) -> str:
    done = subprocess.run(
        ["sh", "-c", 'exec mdmserver "$@"', "mdmserver", *args],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, f"mdmserver {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def _last_value(output: str) -> str:
    """A printed token or key: the last line (or the token= of a printed enrollment URL)."""
    line = output.strip().splitlines()[-1].strip()
    return line.rsplit("token=", 1)[-1] if "token=" in line else line


@pytest.fixture
def deployment(
    tmp_path: Path, nginx_available: str, empty_postgres: str, queue_prefix: str
) -> Iterator[dict[str, Any]]:
    """The recipe stood up as docs/deployment.md says, on free loopback ports."""
    public_port, web_port = harness.free_port(), harness.free_port()
    server_url = f"https://127.0.0.1:{public_port}"
    home = tmp_path / "instance"
    apple = FakeApple.create(tmp_path / "fake-apple")
    gateway = apple.gateway().start()
    processes = Processes(tmp_path)
    proxy: Nginx | None = None
    try:
        # 1. The instance: CA, profile signer, TLS certificate, config.toml; the push cert.
        init_instance(home, server_url, topic=apple.topic)
        install(load_config(environ={}, overrides={"home": home}), apple.push_file.read_bytes())
        env = harness.server_env(
            {
                "home": home,
                "database_url": empty_postgres,
                "redis_url": REDIS_URL,
                "queue_prefix": queue_prefix,
                "client_cert_header": HEADER,
                "apns_host": "127.0.0.1",
                "apns_port": gateway.port,
                "apns_ca_file": apple.ca_file,
                "log_level": "INFO",
            }
        )
        env["PORT"] = str(web_port)
        env["HOST"] = "127.0.0.1"  # the web process listens on loopback only: nginx is its client
        entries = procfile()
        # 2. The release step, before any web process: the schema of the empty database.
        release = entries.get("release", "mdmserver db upgrade")
        done = subprocess.run(
            shell(release), env=env, cwd=REPO, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, f"release ({release}):\n{done.stdout}\n{done.stderr}"
        # 3. The web and worker processes, exactly as the Procfile runs them.
        web_process = processes.start("web", shell(entries["web"]), env)
        processes.start("worker", shell(entries["worker"]), env)
        # 4. nginx with the shipped site file.
        site = render(
            DEPLOY / "nginx" / "mdmserver.conf.template",
            {
                "PROXY_HOST": "127.0.0.1",
                "PROXY_LISTEN": f"127.0.0.1:{public_port}",
                "PROXY_TLS_CERT": str(home / "tls.pem"),
                "PROXY_TLS_KEY": str(home / "tls.key"),
                "PROXY_UPSTREAM": f"127.0.0.1:{web_port}",
                "PROXY_MAX_BODY": "16m",
            },
        )
        proxy = Nginx(tmp_path / "nginx", [site], [public_port]).start()
        ca = str(home / "ca.pem")
        harness.wait_ready(server_url, ca, web_process, timeout=60)
        # 5. An enrollment token and an admin key, from the CLI.
        token = _last_value(_cli(["enroll-token", "create"], env))
        api_key = _last_value(_cli(["api-key", "create", "--name", "recipe"], env))
        yield {
            "server_url": server_url,
            "web_url": f"http://127.0.0.1:{web_port}",
            "ca": ca,
            "token": token,
            "api_key": api_key,
            "gateway": gateway,
            "nginx": proxy,
            "processes": processes,
            "tmp": tmp_path,
        }
    finally:
        if proxy is not None:
            proxy.stop()
        processes.stop()
        gateway.stop()


def test_a_device_enrolls_through_nginx_and_is_locked_through_the_api(deployment):
    d = deployment
    fleet = Fleet(
        d["server_url"],
        FleetOptions(devices=1, macos_share=0.0, threads=1),
        verify=d["ca"],
        apns=d["gateway"],
    )
    admin = AdminClient(d["server_url"], d["api_key"], verify=d["ca"])
    try:
        report = fleet.enroll_all(d["token"])
        identity = fleet.devices[0].identity
        assert report.enrolled == 1, (report.failures, d["processes"].log("web"))
        [device] = fleet.devices
        listed = admin._call("GET", "/devices", 200)["devices"]
        assert [(x["id"], x["enrolled"]) for x in listed] == [(device.udid, True)]

        sent = admin.send_command(
            {"RequestType": "DeviceLock", "Message": "Locked through the proxy"},
            targets=[device.udid],
        )
        command_uuid = sent["command_uuid"]
        deadline = time.monotonic() + 60
        while command_uuid not in device.answered:
            assert time.monotonic() < deadline, d["processes"].log("worker")
            time.sleep(0.1)
        assert device.answered[command_uuid] == ("DeviceLock", "Acknowledged")
        while True:
            counts = admin.command_status(command_uuid)["counts"]
            if counts.get("acknowledged"):
                break
            assert time.monotonic() < deadline, counts
            time.sleep(0.1)
    finally:
        admin.close()
        fleet.close()
    # Every step went through the proxy: the device protocol, enrollment, SCEP and the API.
    log = d["nginx"].access_log()
    for path in ("/mdm/enroll", "/scep", "/mdm/checkin", "/mdm/connect", "/api/v1/commands"):
        assert f" {path}" in log, path
    _header_mode_only_from_nginx(d, identity)


def _header_mode_only_from_nginx(d: dict[str, Any], identity: Any) -> None:
    """Header mode: the device's TLS identity, forwarded by nginx, authenticates an unsigned
    request; the same header sent by a client is replaced (and so refused)."""
    cert, key = d["tmp"] / "device.pem", d["tmp"] / "device.key"
    cert.write_bytes(dump_cert_pem(identity.certificate))
    key.write_bytes(dump_key_pem(identity.key))
    idle = identity.idle()
    headers = {k: v for k, v in idle.headers.items() if k != "Mdm-Signature"}
    url = d["server_url"] + "/mdm/connect"

    with_tls_identity = requests.put(
        url,
        data=idle.body,
        headers=headers,
        cert=(str(cert), str(key)),
        verify=d["ca"],
        timeout=30,
    )
    assert with_tls_identity.status_code == 200, with_tls_identity.text

    # A client without a certificate sends the header itself: nginx sets it (to nothing).
    forged = requests.put(
        url,
        data=idle.body,
        headers={**headers, HEADER: _escaped(identity.certificate)},
        verify=d["ca"],
        timeout=30,
    )
    assert forged.status_code == 400
    assert "neither" in forged.text

    # /metrics answers loopback without a key; through the proxy everyone is loopback.
    assert requests.get(d["server_url"] + "/metrics", verify=d["ca"], timeout=30).status_code == 404
    # Bodies past the limit are refused by nginx before the app reads them.
    big = requests.put(
        url, data=b"x" * (17 * 1024 * 1024), headers=headers, verify=d["ca"], timeout=60
    )
    assert big.status_code == 413


def _escaped(certificate: Any) -> str:
    from urllib.parse import quote

    return quote(dump_cert_pem(certificate).decode())
