"""The first-run demo: a throwaway server, the push stand-in and a few devices, end to end.

What it shows is the loop every MDM runs on: the admin API queues a DeviceLock, the server
pushes through (stand-in) APNs, the device wakes, fetches the command, acknowledges it, and the
server reports the acknowledgement. Everything real except Apple: ``mdmserver serve`` over HTTPS
(SQLite, jobs in-process), SCEP, CMS signatures, HTTP/2 pushes over mutual TLS.
"""

from __future__ import annotations

import shutil
import signal
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import click

from mdmserver.simulator import harness
from mdmserver.simulator.admin import AdminClient
from mdmserver.simulator.apple import FakeApple
from mdmserver.simulator.device import SimDevice
from mdmserver.simulator.fleet import Fleet, FleetOptions
from mdmserver.simulator.instance import Instance, prepare_instance

Echo = Callable[[str], None]


@dataclass
class DemoOptions:
    devices: int = 3
    timeout: float = 120.0
    keep_running: bool = False
    home: Path | None = None
    port: int = 0


class DemoFailed(RuntimeError):
    pass


class DemoInterrupted(RuntimeError):
    """Ctrl-C before the demo finished (everything was stopped and cleaned up)."""


def run_demo(options: DemoOptions, echo: Echo = click.echo) -> None:
    """Run the demo; raises DemoFailed (after cleaning up) when the loop does not close,
    DemoInterrupted on Ctrl-C.

    The instance (CA key, push key, database) lives in a temporary folder removed when the
    demo ends, Ctrl-C included, unless ``home`` was given: then it stays, and is said to.
    """
    home = options.home or Path(tempfile.mkdtemp(prefix="mdmserver-demo-")) / "instance"
    previous = signal.getsignal(signal.SIGINT)
    cleanup = ExitStack()  # undone last-in first-out: devices, server, APNs, folder
    if options.home is None:
        cleanup.callback(_remove, home, echo)
    try:
        _run(options, home, cleanup, echo)
    except KeyboardInterrupt:
        echo("interrupted: stopping the server and the devices")
        raise DemoInterrupted("interrupted") from None
    finally:
        # A second Ctrl-C must not leave the server running or the keys behind.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            cleanup.close()
        finally:
            signal.signal(signal.SIGINT, previous)


def _remove(home: Path, echo: Echo) -> None:
    shutil.rmtree(home.parent, ignore_errors=True)
    echo(f"removed the demo instance {home}")


def _run(options: DemoOptions, home: Path, cleanup: ExitStack, echo: Echo) -> None:
    started = time.monotonic()
    deadline = started + options.timeout
    port = options.port or harness.free_port()
    base_url = f"https://127.0.0.1:{port}"
    echo(f"mdmserver demo: a throwaway server, an APNs stand-in and {options.devices} devices")
    fate = "kept (--home)" if options.home else "removed when the demo ends"
    echo(f"  instance  {home} (SQLite, jobs in-process; {fate})")
    apple = FakeApple.create(home / "fake-apple")
    instance = prepare_instance(home, base_url, apple, key_name="demo")
    gateway = apple.gateway().start()
    cleanup.callback(gateway.stop)
    echo(f"  apns      stand-in on 127.0.0.1:{gateway.port}, topic {apple.topic}")
    log_path = home / "server.log"
    env = harness.server_env(
        {
            "home": home,
            "apns_host": "127.0.0.1",
            "apns_port": gateway.port,
            "apns_ca_file": apple.ca_file,
            "repush_interval_seconds": 8,  # commands queued from the CLI get pushed within ~10s
            "log_level": "WARNING",
        }
    )
    with log_path.open("ab") as log:
        server = harness.spawn(
            ["serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
            env,
            log,
            home.parent,
        )
    cleanup.callback(harness.stop, server)
    try:
        ready = harness.wait_ready(base_url, str(instance.ca_file), server, _left(deadline))
        echo(f"  server    {base_url} ready in {ready:.1f}s (mdmserver serve, pid {server.pid})")
        fleet = Fleet(
            base_url,
            FleetOptions(devices=options.devices, threads=min(8, options.devices)),
            verify=str(instance.ca_file),
            apns=gateway,
        )
        cleanup.callback(fleet.close)
        _enroll(fleet, instance, echo)
        admin = AdminClient(base_url, instance.api_key, verify=str(instance.ca_file))
        cleanup.callback(admin.close)
        _declarative(fleet, admin, deadline, echo)
        _lock_one(fleet, admin, deadline, echo)
        echo(f"demo OK: the lock was acknowledged {time.monotonic() - started:.1f}s after start")
        if options.keep_running:
            _keep_running(instance, fleet, echo, kept=options.home is not None)
    except Exception as exc:
        echo(f"demo FAILED: {exc}")
        echo(f"server log ({log_path}), last lines:")
        for line in log_path.read_text(errors="replace").splitlines()[-15:]:
            echo(f"  | {line}")
        raise DemoFailed(str(exc)) from exc


def _left(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("the demo ran out of time (--timeout)")
    return left


def _enroll(fleet: Fleet, instance: Instance, echo: Echo) -> None:
    with click.progressbar(length=len(fleet.devices), label="  enrolling") as bar:
        report = fleet.enroll_all(instance.token, progress=bar.update)
    if report.failed:
        raise RuntimeError(f"{report.failed} device(s) failed to enroll: {dict(report.failures)}")
    echo(
        f"  enrolled  {report.enrolled} devices in {report.seconds:.1f}s "
        "(token -> signed profile -> SCEP -> Authenticate -> TokenUpdate)"
    )
    for device in fleet.devices:
        s = device.spec
        echo(f"            {s.platform:<5} {s.os_version:<7} {s.marketing_name:<28} {s.udid}")


def _declarative(fleet: Fleet, admin: AdminClient, deadline: float, echo: Echo) -> None:
    """The first sessions: inventory, and DDM (enabled at enrollment) synced and reported."""
    fleet.wake_all()
    if not fleet.wait_quiet(_left(deadline)):
        raise TimeoutError("devices did not finish their first session")
    synced = fleet.stats.events["ddm_synced"]
    echo(
        f"  ddm       {synced} devices synced their declarations (tokens -> declaration-items ->"
        " each declaration) and sent a status report"
    )
    device = next((d for d in fleet.devices if d.spec.platform == "iOS"), fleet.devices[0])
    items = admin.status_items(device.udid)
    echo(
        f"            {device.udid}: OS {items.get('device.operating-system.version')},"
        f" passcode compliant {items.get('passcode.is-compliant')}"
        " (GET /api/v1/devices/<id>/status-items)"
    )


def _lock_one(fleet: Fleet, admin: AdminClient, deadline: float, echo: Echo) -> None:
    device = _pick(fleet.devices)
    command = {"RequestType": "DeviceLock", "Message": "Locked by the mdmserver demo"}
    if device.spec.platform == "macOS":
        command["PIN"] = "123456"
    sent = admin.send_command(command, targets=[device.udid])
    uuid = sent["command_uuid"]
    echo(f"  queued    DeviceLock {uuid} for {device.spec.device_name} (POST /api/v1/commands)")
    admin.push(device.udid)
    echo(f"  pushed    POST /api/v1/devices/{device.udid}/push -> APNs stand-in -> device")
    woke = time.monotonic()
    while uuid not in device.answered:
        _left(deadline)
        time.sleep(0.05)
    status = device.answered[uuid][1]
    echo(
        f"  device    {device.spec.device_name} woke, fetched DeviceLock and answered {status} "
        f"({time.monotonic() - woke:.1f}s after the push request)"
    )
    while True:
        counts = admin.command_status(uuid)["counts"]
        if counts.get("acknowledged") or counts.get("Acknowledged"):
            break
        if set(counts) - {"queued", "sent"}:
            raise RuntimeError(f"DeviceLock was not acknowledged: {counts}")
        _left(deadline)
        time.sleep(0.1)
    echo(f"  server    GET /api/v1/commands/{uuid} -> {counts}: lock acknowledged")


def _pick(devices: list[SimDevice]) -> SimDevice:
    """An iPhone if there is one (no PIN needed), else the first device."""
    return next((d for d in devices if d.spec.platform == "iOS"), devices[0])


def _keep_running(instance: Instance, fleet: Fleet, echo: Echo, *, kept: bool) -> None:
    """Until Ctrl-C, which is the normal way to end this mode (not an interruption)."""
    try:
        _show_what_to_try(instance, fleet, echo, kept)
        seen = 0
        while True:
            time.sleep(1)
            answers = fleet.stats.answers
            total = sum(answers.values())
            if total != seen:
                seen = total
                echo(f"  devices answered so far: {dict(answers)}")
    except KeyboardInterrupt:
        echo("stopping")


def _show_what_to_try(instance: Instance, fleet: Fleet, echo: Echo, kept: bool) -> None:
    udid = _pick(fleet.devices).udid
    echo("")
    echo("The server and the devices keep running (Ctrl-C stops them). Try, in another shell:")
    echo(f"  export MDM_HOME={instance.home}")
    echo(f"  mdmserver devices list && mdmserver lock {udid}")
    echo(f"  curl --cacert {instance.ca_file} -H 'Authorization: Bearer {instance.api_key}' \\")
    echo(f"       {instance.server_url}/api/v1/devices")
    if not kept:
        echo(f"The instance in {instance.home} is removed on Ctrl-C (--home DIR keeps one).")
