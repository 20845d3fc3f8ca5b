"""The step from the quick start to running it for real (issue 18): the CLI and the web
process fail clearly — a bad setting, a missing instance or CA file, a schema behind the code —
and ``--help`` does nothing but help. Run as a user runs them: subprocesses in a folder."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner, Result

from mdmserver.cli import main

REPO = Path(__file__).resolve().parent.parent
FLASK_ONLY = ("run", "shell", "routes", "--env-file", "--app", "--debug")


def mdm(cwd: Path, *args: str, timeout: float = 60, **env: str) -> subprocess.CompletedProcess[str]:
    """``mdmserver ARGS`` in CWD with only the MDM_* variables given."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MDM_")}
    clean.update(PYTHONPATH=str(REPO), **env)
    return subprocess.run(
        [sys.executable, "-c", "from mdmserver.cli import main; main()", *args],
        cwd=cwd,
        env=clean,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def run_cli(cwd: Path, *args: str, **env: str) -> Result:
    """The same in this process (click's CliRunner), in CWD: stdout and stderr apart."""
    unset: dict[str, str | None] = {k: None for k in os.environ if k.startswith("MDM_")}
    previous = Path.cwd()
    os.chdir(cwd)
    try:
        return CliRunner().invoke(main, list(args), env={**unset, **env})
    finally:
        os.chdir(previous)


def listing(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def test_help_in_an_empty_folder_creates_nothing_and_shows_only_our_commands(tmp_path):
    top = mdm(tmp_path, "--help")
    send = mdm(tmp_path, "command", "send", "--help")
    for done in (top, send):
        assert done.returncode == 0, done.stderr
        assert done.stderr == "" and "warning" not in done.stdout.lower()
    assert listing(tmp_path) == []  # no ./instance, no database
    listed = top.stdout.split("Commands:")[1].splitlines()
    commands = {line.split()[0] for line in listed if line.strip()}
    assert {"serve", "init", "demo", "backup", "restore", "db", "devices"} <= commands
    for flask_only in FLASK_ONLY:
        assert flask_only not in commands and f" {flask_only} " not in top.stdout
    # command send --help lists the request types.
    assert "Request types" in send.stdout
    for request_type in ("DeviceLock", "EraseDevice", "InstallProfile", "DeviceInformation"):
        assert request_type in send.stdout


@pytest.mark.parametrize(
    "args",
    [
        ("devices", "list"),
        ("enroll-token", "create"),
        ("api-key", "list"),
        ("db", "current"),
        ("db", "upgrade"),
        ("push-cert", "show"),
        ("profiles", "list"),
        ("backup", "out"),
    ],
)
def test_commands_refuse_an_instance_that_does_not_exist(tmp_path, args):
    """MDM_HOME forgotten: no new empty database, a message naming MDM_HOME instead."""
    done = run_cli(tmp_path, *args)
    assert done.exit_code == 1, done.output
    assert f"MDM_HOME={tmp_path / 'instance'}" in done.stderr
    assert "mdmserver init" in done.stderr
    assert isinstance(done.exception, SystemExit)  # a clean exit, not an exception
    assert listing(tmp_path) == []


def test_configuration_mistakes_are_one_line_each_naming_the_setting(tmp_path):
    done = run_cli(
        tmp_path,
        "devices",
        "list",
        MDM_MAX_BODY_BYTES="16MB",
        MDM_LOG_LEVEL="LOUD",
        MDM_DATABASE_URL="mysql://db/mdm",
        MDM_REDIS_URL="http://redis:6379",
        MDM_METRICS_ALLOW="10.0.0.0/8,not-a-net",
        MDM_APNS_PORT="70000",
    )
    assert done.exit_code == 1 and isinstance(done.exception, SystemExit), done.output
    lines = done.stderr.strip().splitlines()
    assert lines[0] == "Error: the configuration cannot be used:"
    problems = {line.split("=")[0].strip(): line for line in lines[1:]}
    assert set(problems) == {
        "MDM_MAX_BODY_BYTES",
        "MDM_LOG_LEVEL",
        "MDM_DATABASE_URL",
        "MDM_REDIS_URL",
        "MDM_METRICS_ALLOW",
        "MDM_APNS_PORT",
    }
    assert "positive integer" in problems["MDM_MAX_BODY_BYTES"]
    assert "DEBUG, INFO, WARNING, ERROR, CRITICAL" in problems["MDM_LOG_LEVEL"]
    assert "postgresql://" in problems["MDM_DATABASE_URL"]
    assert "redis://host:6379" in problems["MDM_REDIS_URL"]
    assert "'not-a-net' is not an address" in problems["MDM_METRICS_ALLOW"]
    assert "1 to 65535" in problems["MDM_APNS_PORT"]
    assert listing(tmp_path) == []


def test_serve_refuses_a_bad_log_level_before_starting(tmp_path):
    """LOUD used to be accepted, then killed every gunicorn worker."""
    done = mdm(tmp_path, "serve", "--port", "1", MDM_LOG_LEVEL="LOUD")
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "MDM_LOG_LEVEL='LOUD': expected one of" in done.stderr
    assert "listening" not in done.stderr and listing(tmp_path) == []


@pytest.fixture
def instance(tmp_path: Path) -> Path:
    home = tmp_path / "inst"
    done = mdm(tmp_path, "init", "--server-url", "https://mdm.example.test", MDM_HOME=str(home))
    assert done.returncode == 0, done.stderr
    return home


def test_a_missing_ca_file_on_an_existing_instance_is_named_never_a_first_run(tmp_path, instance):
    before = {p.name: p.read_bytes() for p in instance.iterdir()}
    done = mdm(
        tmp_path, "serve", "--port", "1", MDM_HOME=str(instance), MDM_CA_CERT_FILE="/nonexistent"
    )
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "MDM_CA_CERT_FILE='/nonexistent': file /nonexistent does not exist" in done.stderr
    assert "--force" not in done.stderr and "first run" not in done.stderr
    # The instance's own CA gone (a botched copy): still no new CA over the old instance.
    (instance / "ca.pem").unlink()
    gone = mdm(tmp_path, "serve", "--port", "1", MDM_HOME=str(instance))
    assert gone.returncode == 1 and "Traceback" not in gone.stderr
    assert f"the device CA {instance / 'ca.pem'} is missing" in gone.stderr
    assert "first run" not in gone.stderr and "--force" not in gone.stderr
    after = {p.name: p.read_bytes() for p in instance.iterdir()}
    assert after == {k: v for k, v in before.items() if k != "ca.pem"}


def test_enroll_token_create_prints_the_enrollment_url_and_a_qr_code(tmp_path, instance):
    import io

    import qrcode

    done = mdm(tmp_path, "enroll-token", "create", "--qr", MDM_HOME=str(instance))
    assert done.returncode == 0, done.stderr
    token = done.stdout.strip().splitlines()[-1]
    url = f"https://mdm.example.test/mdm/enroll?token={token}"
    assert f"url:     {url}\n" in done.stdout and "<server_url>" not in done.stdout
    code = qrcode.QRCode(border=2)
    code.add_data(url)
    code.make(fit=True)
    expected = io.StringIO()
    code.print_ascii(out=expected, invert=True)
    assert expected.getvalue().rstrip("\n") in done.stdout  # the QR code of exactly that URL


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def procfile() -> dict[str, str]:
    lines = (REPO / "Procfile").read_text().splitlines()
    return dict(line.split(": ", 1) for line in lines if line.strip())


def test_web_process_refuses_a_schema_behind_until_the_release_step(tmp_path, empty_database_url):
    """The Procfile's own lines, on an empty database (SQLite told not to migrate itself, as
    a shared database is): web refuses with one line; release migrates; then web serves."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MDM_")}
    env.update(
        PYTHONPATH=str(REPO),
        PORT=str(port),
        MDM_HOME=str(tmp_path / "inst"),
        MDM_DATABASE_URL=empty_database_url,
        MDM_AUTO_MIGRATE="false",
        MDM_LOG_LEVEL="WARNING",
    )
    made = subprocess.run(  # the deployment's first step (docs/deployment.md)
        ["mdmserver", "init", "--server-url", "https://mdm.example.test"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert made.returncode == 0, made.stderr
    lines = procfile()
    assert lines["release"] == "mdmserver db upgrade"

    def run(line: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            ["sh", "-c", line],  # verbatim, as a Procfile runner runs it
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # sh, gunicorn and its workers: one group to stop
        )

    refused = run(lines["web"])
    output, _ = refused.communicate(timeout=60)
    assert refused.returncode == 4, output  # before any worker started
    [ours] = [line for line in output.splitlines() if line.startswith("mdmserver:")]
    assert ours.startswith("mdmserver: the database is empty (0 of "), output
    assert ours.endswith("revisions applied): run `mdmserver db upgrade`"), output
    assert "Traceback" not in output

    release = run(lines["release"])
    said, _ = release.communicate(timeout=120)
    assert release.returncode == 0, said
    web = run(lines["web"])
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                reply = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=2)
                break
            except requests.ConnectionError:
                assert web.poll() is None and time.monotonic() < deadline, web.stdout.read()
                time.sleep(0.3)
        assert reply.status_code == 200 and "mdm_push_outbox_pending" in reply.text  # DB read
    finally:
        os.killpg(web.pid, signal.SIGTERM)
        try:
            web.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(web.pid, signal.SIGKILL)
            web.wait(timeout=10)


def test_cli_on_a_database_behind_says_run_db_upgrade(tmp_path, empty_database_url):
    env = {
        "MDM_HOME": str(tmp_path / "inst"),
        "MDM_DATABASE_URL": empty_database_url,
        "MDM_AUTO_MIGRATE": "false",
    }
    behind = run_cli(tmp_path, "devices", "list", **env)
    assert behind.exit_code == 1 and isinstance(behind.exception, SystemExit), behind.output
    assert "run `mdmserver db upgrade`" in behind.stderr
    worker = run_cli(tmp_path, "worker", "--burst", MDM_REDIS_URL="redis://127.0.0.1:6379/0", **env)
    assert worker.exit_code == 1 and "run `mdmserver db upgrade`" in worker.stderr
    status = run_cli(tmp_path, "db", "current", **env)
    assert status.exit_code == 0, status.output
    assert status.stdout.startswith("current: the database is empty (0 of ")
    assert run_cli(tmp_path, "db", "upgrade", **env).exit_code == 0
    current = run_cli(tmp_path, "db", "current", **env)
    lines = current.stdout.splitlines()
    assert len(lines) == 2 and lines[0].startswith("current: up to date (")
    applied, total = lines[0].split("(")[1].split(" revisions")[0].split(" of ")
    assert applied == total and lines[1].startswith(f"latest:  {total} revisions")
    assert run_cli(tmp_path, "devices", "list", **env).exit_code == 0


def test_an_unreachable_database_is_one_message_not_a_traceback(tmp_path):
    done = run_cli(
        tmp_path,
        "devices",
        "list",
        MDM_HOME=str(tmp_path),
        MDM_DATABASE_URL=f"postgresql://postgres@127.0.0.1:{free_port()}/mdm",
    )
    assert done.exit_code == 1 and isinstance(done.exception, SystemExit), done.output
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("Error: the database cannot be used (") and "MDM_DATABASE_URL" in line


def test_serve_names_a_missing_tls_file(tmp_path, instance):
    missing = ("--certfile", str(tmp_path / "nope.pem"), "--keyfile", str(tmp_path / "nope.key"))
    done = run_cli(tmp_path, "serve", *missing, MDM_HOME=str(instance))
    assert done.exit_code != 0 and isinstance(done.exception, SystemExit)
    assert "--certfile" in done.stderr and "does not exist" in done.stderr


def test_serve_on_a_used_database_with_an_empty_home_makes_no_new_ca(tmp_path, postgres_database):
    """MDM_HOME lost or mistyped beside a database with devices: no fresh CA over them."""
    home = tmp_path / "fresh"
    done = run_cli(
        tmp_path, "serve", "--port", "1", MDM_HOME=str(home), MDM_DATABASE_URL=postgres_database
    )
    assert done.exit_code == 1 and isinstance(done.exception, SystemExit), done.output
    assert f"the device CA {home / 'ca.pem'} is missing" in done.stderr
    assert not home.exists() and "first run" not in done.output
