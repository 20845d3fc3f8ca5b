"""``mdmserver simulate``: enroll N simulated devices into a running server and keep them alive.

With ``--apns-dir`` the devices are woken by real pushes: the folder holds a stand-in "Apple"
CA, the gateway's certificate and a push certificate; the server must use that gateway
(``MDM_APNS_HOST``/``MDM_APNS_PORT``/``MDM_APNS_CA_FILE``) and have imported its push.pem.
A folder without a push certificate is set up (for the topic of the server's enrollment
profile) and the steps are printed.

With ``--ota`` the devices enroll over the air (Apple's profile service), each with an identity
from a simulated Apple device CA kept in ``--apple-device-ca-dir``; the server must trust its
``apple-device-ca.pem`` (``MDM_APPLE_DEVICE_CA_FILE``). A new folder is set up and the step
printed, as for the APNs stand-in.

Apps: ``--fail-install BUNDLE_ID`` makes every device answer installs of that app with an
ErrorChain; ``--user-removes BUNDLE_ID`` has each device's user delete that app by hand once
it is installed (a required app should come back); ``--app-store ADAM_ID=BUNDLE_ID`` puts an
app in the simulated App Store, so ``InstallApplication`` by that iTunes Store ID works.
"""

from __future__ import annotations

import time
from pathlib import Path

import click

from mdmserver.config import load_config


@click.command()
@click.option("--token", required=True, help="Enrollment token (mdmserver enroll-token create).")
@click.option("--server-url", default=None, help="Base URL the devices dial (default: config).")
@click.option("--devices", default=10, show_default=True, type=click.IntRange(1, 100_000))
@click.option("--macos-share", default=0.3, show_default=True, type=click.FloatRange(0, 1))
@click.option("--notnow-rate", default=0.0, show_default=True, type=click.FloatRange(0, 1))
@click.option("--error-rate", default=0.0, show_default=True, type=click.FloatRange(0, 1))
@click.option("--threads", default=16, show_default=True, type=click.IntRange(1, 512))
@click.option("--seed", default=0, show_default=True, type=int, help="Same seed, same fleet.")
@click.option(
    "--ca-file",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="CA to verify the server's TLS with (default: MDM_HOME/ca.pem if present).",
)
@click.option("--apns-dir", type=click.Path(file_okay=False, path_type=Path), default=None)
@click.option("--apns-port", default=2197, show_default=True, type=int)
@click.option("--ota", is_flag=True, help="Enroll over the air with a simulated Apple identity.")
@click.option(
    "--apple-device-ca-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="The simulated Apple device CA (default: MDM_HOME/simulated-apple-device-ca).",
)
@click.option("--fail-install", multiple=True, metavar="BUNDLE_ID",
              help="Every device fails installs of this app (repeatable).")  # fmt: skip
@click.option("--user-removes", multiple=True, metavar="BUNDLE_ID",
              help="Each device's user deletes this app once installed (repeatable).")  # fmt: skip
@click.option("--app-store", multiple=True, metavar="ADAM_ID=BUNDLE_ID",
              help="An app of the simulated App Store (repeatable).")  # fmt: skip
@click.option("--duration", default=0.0, type=float, help="Seconds to run (0: until Ctrl-C).")
@click.option("--poll-every", default=0.0, type=float, help="Also wake every device this often.")
def simulate(
    token: str,
    server_url: str | None,
    devices: int,
    macos_share: float,
    notnow_rate: float,
    error_rate: float,
    threads: int,
    seed: int,
    ca_file: str | None,
    apns_dir: Path | None,
    apns_port: int,
    ota: bool,
    apple_device_ca_dir: Path | None,
    fail_install: tuple[str, ...],
    user_removes: tuple[str, ...],
    app_store: tuple[str, ...],
    duration: float,
    poll_every: float,
) -> None:
    """Enroll simulated iOS and macOS devices and answer the server's commands."""
    from mdmserver.cli.demo import need_simulator

    need_simulator()
    from mdmserver.simulator.apple import FakeApple
    from mdmserver.simulator.apps import StoreApp
    from mdmserver.simulator.fleet import Fleet, FleetOptions

    published = []
    for entry in app_store:
        adam_id, _, bundle_id = entry.partition("=")
        if not adam_id.isdigit() or not bundle_id:
            raise click.BadParameter(
                f"{entry!r}: expected ADAM_ID=BUNDLE_ID", param_hint="--app-store"
            )
        published.append(
            (int(adam_id), StoreApp(bundle_id, bundle_id.rsplit(".", 1)[-1], "1.0", int(adam_id)))
        )

    config = load_config()
    base_url = (server_url or config.server_url or "").rstrip("/")
    if not base_url:
        raise click.UsageError("give --server-url (no server_url in the configuration)")
    verify: str | bool = ca_file or (
        str(config.resolved_ca_cert_file) if config.resolved_ca_cert_file.is_file() else True
    )
    apple = None
    if ota:
        from mdmserver.testing.apple_device_pki import BUNDLE_FILE, AppleDevicePki

        folder = apple_device_ca_dir or config.home / "simulated-apple-device-ca"
        apple, created = AppleDevicePki.load_or_create(folder)
        if created:
            click.echo(f"created a simulated Apple device CA in {folder}")
            click.echo("make the server trust it, restart it, then run this command again:")
            click.echo(f"  export MDM_APPLE_DEVICE_CA_FILE={(folder / BUNDLE_FILE).resolve()}")
            return
    gateway = None
    if apns_dir is not None:
        if not (apns_dir / "push.pem").is_file():
            _set_up_apns(apns_dir, base_url, token, verify, apns_port)
            return
        gateway = FakeApple.load(apns_dir).gateway(apns_port).start()
        click.echo(f"APNs stand-in on 127.0.0.1:{gateway.port}", err=True)
    options = FleetOptions(
        devices=devices,
        macos_share=macos_share,
        notnow_rate=notnow_rate,
        error_rate=error_rate,
        threads=threads,
        seed=seed,
    )
    fleet = Fleet(base_url, options, verify=verify, apns=gateway, apple=apple)
    for adam, store_app in published:
        fleet.publish_app(adam, store_app)
    for bundle_id in fail_install:
        fleet.fail_installs(bundle_id)
    for bundle_id in user_removes:
        fleet.remove_when_installed(bundle_id)
    try:
        with click.progressbar(length=devices, label="enrolling", file=None) as bar:
            report = fleet.enroll_all(token, progress=bar.update)
        click.echo(
            f"enrolled {report.enrolled}/{devices} in {report.seconds:.1f}s "
            f"({report.per_second:.1f}/s); failed {report.failed}"
        )
        for reason, count in report.failures.most_common(5):
            click.echo(f"  {count} x {reason}", err=True)
        _run(fleet, duration, poll_every)
    except KeyboardInterrupt:
        click.echo("stopping", err=True)
    finally:
        fleet.close()
        if gateway is not None:
            gateway.stop()
        _summary(fleet)


def _run(fleet: object, duration: float, poll_every: float) -> None:
    """A status line every few seconds until the duration ends."""
    from mdmserver.simulator.fleet import Fleet

    assert isinstance(fleet, Fleet)
    started = last_poll = time.monotonic()
    while duration <= 0 or time.monotonic() - started < duration:
        time.sleep(min(2.0, duration) if duration > 0 else 2.0)
        if poll_every and time.monotonic() - last_poll >= poll_every:
            last_poll = time.monotonic()
            fleet.wake_all()
        events = fleet.stats.events
        click.echo(
            f"\r{time.monotonic() - started:6.0f}s  pushes {events['push_received']}  "
            f"sessions {events['sessions']}  answers {sum(fleet.stats.answers.values())}  "
            f"errors {fleet.stats.total_errors()}  ",
            nl=False,
            err=True,
        )


def _summary(fleet: object) -> None:
    from mdmserver.simulator.fleet import Fleet

    assert isinstance(fleet, Fleet)
    click.echo("", err=True)
    latency = fleet.stats.summary("connect", "authenticate", "token_update")
    click.echo(
        f"requests {latency['count']}  p50 {latency['p50_ms']} ms  p99 {latency['p99_ms']} ms  "
        f"errors {fleet.stats.total_errors()}"
    )
    for answer, count in sorted(fleet.stats.answers.items()):
        click.echo(f"  {answer}: {count}")
    for reason, count in fleet.stats.errors.most_common(10):
        click.echo(f"  error {reason}: {count}", err=True)


def _set_up_apns(folder: Path, base_url: str, token: str, verify: str | bool, port: int) -> None:
    """Make the stand-in's PKI for the server's topic, and say how to point the server at it."""
    import requests

    from mdmserver.simulator.apple import FakeApple
    from mdmserver.testing.enrollment import payload, unwrap_profile

    reply = requests.get(
        f"{base_url}/mdm/enroll", params={"token": token}, verify=verify, timeout=30
    )
    if reply.status_code != 200:
        raise click.ClickException(f"cannot read the enrollment profile: {reply.status_code}")
    topic = payload(unwrap_profile(reply.content), "com.apple.mdm")["Topic"]
    apple = FakeApple.create(folder, topic)
    click.echo(f"created the APNs stand-in's certificates in {folder} (topic {topic})")
    click.echo("point the server at it, restart it, then run this command again:")
    click.echo(f"  mdmserver push-cert import {apple.push_file} --force")
    click.echo(f"  export MDM_APNS_HOST=127.0.0.1 MDM_APNS_PORT={port}")
    click.echo(f"  export MDM_APNS_CA_FILE={apple.ca_file.resolve()}")
