"""A fleet of simulated devices in one process: enroll them all, wake them by push, account.

Devices are plain objects; the work runs on a thread pool (HTTP and signing release the GIL
often enough for a few dozen threads to keep a server busy), so a thousand devices cost a
thousand small objects, not a thousand threads. A push accepted by the APNs stand-in for a
device's token wakes it: the fleet runs one poll session for it (a push arriving meanwhile
makes it poll once more). A device whose last session held a NotNow polls again after
``notnow_retry_seconds``, as a device does once it is able to run the command.
"""

from __future__ import annotations

import functools
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa

from mdmserver.logs import get_logger
from mdmserver.simulator.answers import Behaviour
from mdmserver.simulator.apps import APP_STORE, StoreApp
from mdmserver.simulator.catalog import make_specs
from mdmserver.simulator.device import SimDevice
from mdmserver.simulator.stats import Stats
from mdmserver.simulator.transport import Transport, TransportError
from mdmserver.testing.apple_device_pki import AppleDevicePki
from mdmserver.testing.fake_apns import FakeAPNs, PushRecord

log = get_logger("simulator")

Progress = Callable[[int], None]


@dataclass
class FleetOptions:
    devices: int = 10
    macos_share: float = 0.3
    notnow_rate: float = 0.0
    error_rate: float = 0.0
    notnow_retry_seconds: float = 2.0
    threads: int = 16
    seed: int = 0


@dataclass
class EnrollReport:
    enrolled: int
    failed: int
    seconds: float
    failures: Counter[str] = field(default_factory=Counter)

    @property
    def per_second(self) -> float:
        return self.enrolled / self.seconds if self.seconds else 0.0


class Fleet:
    def __init__(
        self,
        server_url: str,
        options: FleetOptions,
        *,
        verify: str | bool = True,
        apns: FakeAPNs | None = None,
        apple: AppleDevicePki | None = None,
    ) -> None:
        """With `apple` (a simulated Apple device CA the server trusts through
        apple_device_ca_file), devices enroll over the air."""
        self.options = options
        self.apple = apple
        self.stats = Stats()
        self.transport = Transport(server_url, verify=verify, stats=self.stats)
        self.apns = apns
        behaviour = Behaviour(options.notnow_rate, options.error_rate)
        specs = make_specs(options.devices, macos_share=options.macos_share, seed=options.seed)
        self.app_store: dict[int, StoreApp] = dict(APP_STORE)  # one App Store for the fleet
        self.devices = [
            SimDevice(spec, behaviour, seed=options.seed, app_store=self.app_store)
            for spec in specs
        ]
        self._pool = ThreadPoolExecutor(options.threads, thread_name_prefix="sim-device")
        self._active = 0
        self._idle = threading.Condition()
        self._timers: set[threading.Timer] = set()
        self._closed = False

    # Enrollment ------------------------------------------------------------------------------

    def enroll_all(
        self,
        token: str,
        *,
        keys: list[rsa.RSAPrivateKey] | None = None,
        progress: Progress | None = None,
    ) -> EnrollReport:
        """Enroll every device not enrolled yet, concurrently; each one registers for pushes."""
        todo = [d for d in self.devices if not d.enrolled]
        report = EnrollReport(0, 0, 0.0)
        started = time.perf_counter()
        futures: list[Future[None]] = []
        for index, device in enumerate(todo):
            key = keys[index] if keys and index < len(keys) else None
            futures.append(self._pool.submit(self._enroll_one, device, token, key))
        for future in futures:
            try:
                future.result()
                report.enrolled += 1
            except Exception as exc:  # reported, never fatal for the rest of the fleet
                report.failed += 1
                report.failures[f"{type(exc).__name__}: {str(exc)[:120]}"] += 1
            if progress is not None:
                progress(1)
        report.seconds = time.perf_counter() - started
        return report

    def _enroll_one(self, device: SimDevice, token: str, key: rsa.RSAPrivateKey | None) -> None:
        device.enroll(self.transport, token, key, apple=self.apple)
        self.stats.event("enrolled")
        if self.apns is not None and device.push_token_hex:
            self.apns.on_push(device.push_token_hex, functools.partial(self._pushed, device))

    # Waking ----------------------------------------------------------------------------------

    def _pushed(self, device: SimDevice, record: PushRecord) -> None:
        if record.token != device.push_token_hex:
            return  # a wiped device no longer has the token this push was sent to
        self.stats.event("push_received")
        self.wake(device)

    def wake(self, device: SimDevice) -> None:
        """Run a poll session for ``device`` soon (or once more, if one is running)."""
        with device.guard:
            if device.busy:
                device.again = True
                return
            device.busy = True
        with self._idle:
            self._active += 1
        self._pool.submit(self._run_sessions, device)

    def wake_all(self) -> None:
        for device in self.devices:
            if device.enrolled:
                self.wake(device)

    def _run_sessions(self, device: SimDevice) -> None:
        try:
            while True:
                try:
                    device.session(self.transport, self.stats)
                    self.stats.event("sessions")
                except Exception as exc:
                    if not isinstance(exc, TransportError):  # those are counted already
                        self.stats.error(f"session: {type(exc).__name__}")
                    log.warning(
                        "simulated_session_failed",
                        extra={"fields": {"udid": device.udid, "error": str(exc)[:200]}},
                    )
                with device.guard:
                    if not device.again:
                        device.busy = False
                        break
                    device.again = False
            if device.notnow_pending and device.enrolled:
                self._later(device)
        finally:
            with self._idle:
                self._active -= 1
                self._idle.notify_all()

    def _later(self, device: SimDevice) -> None:
        with self._idle:
            if self._closed:
                return
            timer = threading.Timer(self.options.notnow_retry_seconds, self._retry, (device,))
            timer.daemon = True
            self._timers.add(timer)
            self._active += 1  # a retry still to come counts as work in progress
        timer.start()

    def _retry(self, device: SimDevice) -> None:
        with self._idle:
            self._timers = {
                t for t in self._timers if t.is_alive() and t is not threading.current_thread()
            }
            self._active -= 1
            self._idle.notify_all()
        if not self._closed:
            self.wake(device)

    # Apps ------------------------------------------------------------------------------------

    def publish_app(self, adam_id: int | str, app: StoreApp) -> None:
        """Put an app in the fleet's App Store, so InstallApplication by that Adam ID works."""
        self.app_store[int(adam_id)] = app

    def fail_installs(
        self, bundle_id: str, chain: list[dict[str, Any]] | None = None, *,
        times: int | None = None,
    ) -> None:  # fmt: skip
        """Every device fails installs of ``bundle_id`` (see DeviceApps.fail_install)."""
        for device in self.devices:
            device.apps.fail_install(bundle_id, chain, times=times)

    def remove_when_installed(self, bundle_id: str) -> None:
        """On every device the user deletes ``bundle_id`` by hand once it is installed."""
        for device in self.devices:
            device.apps.remove_when_installed(bundle_id)

    def device(self, udid: str) -> SimDevice:
        return next(d for d in self.devices if d.udid == udid)

    # Observing -------------------------------------------------------------------------------

    @property
    def active(self) -> int:
        """Sessions running or queued, plus NotNow retries still to come."""
        with self._idle:
            return self._active

    def wait_quiet(self, timeout: float) -> bool:
        """Block until no session runs and no retry is pending; False on timeout."""
        with self._idle:
            return self._idle.wait_for(lambda: self._active == 0, timeout)

    def answered(self, request_type: str | None = None) -> dict[str, tuple[str, str]]:
        """Every command each device answered last: CommandUUID:UDID -> (type, status)."""
        found = {}
        for device in self.devices:
            for uuid, (kind, status) in list(device.answered.items()):
                if request_type is None or kind == request_type:
                    found[f"{uuid}:{device.udid}"] = (kind, status)
        return found

    def close(self) -> None:
        with self._idle:
            self._closed = True
            timers, self._timers = self._timers, set()
        for timer in timers:
            timer.cancel()
        self._pool.shutdown(wait=True, cancel_futures=True)
