"""The push sender used by workers: synchronous calls onto one persistent asyncio loop.

An aioapns client belongs to the event loop it was created on, and RQ runs each async job in a
fresh loop, so a client kept between jobs would hang. Each process therefore owns one loop in a
background thread with one aioapns client on it; callers in any thread hand it batches and wait.
After a fork the child starts its own loop: the parent's thread does not exist there.
"""

from __future__ import annotations

import asyncio
import logging
import os
import tempfile
import threading
from collections import Counter
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from aioapns import APNs, NotificationRequest, PushType
from aioapns.common import NotificationResult
from aioapns.exceptions import ConnectionClosed, MaxAttemptsExceeded
from aioapns.exceptions import ConnectionError as APNsConnectionError

from mdmserver.push.apns_target import ApnsEndpoint, build_apns, current_endpoint
from mdmserver.push.cert import PushCertificate, load_push_certificate
from mdmserver.push.outcome import (
    InvalidPushTarget,
    OutcomeKind,
    PushOutcome,
    PushTarget,
    classify,
)

__all__ = [
    "InvalidPushTarget",
    "OutcomeKind",
    "PushClient",
    "PushClientClosed",
    "PushConfig",
    "PushOutcome",
    "PushTarget",
    "close_clients",
    "get_client",
]

log = logging.getLogger(__name__)
T = TypeVar("T")
_CONNECTION_FAILURES = (MaxAttemptsExceeded, APNsConnectionError, ConnectionClosed, OSError)
_FROM_OVERRIDE: Any = object()


class PushClientClosed(RuntimeError):
    """push_many was called after close()."""


@dataclass(frozen=True)
class PushConfig:
    """What a process needs to push: the push certificate and where APNs is."""

    cert_pem: bytes
    key_pem: bytes
    topic: str
    use_sandbox: bool = False
    max_in_flight: int = 256
    timeout: float = 30.0


class _LoopThread:
    """One event loop running forever in a daemon thread, with the aioapns client living on it."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.loop = asyncio.new_event_loop()
        self.apns: APNs | None = None
        self.thread = threading.Thread(target=self.loop.run_forever, name="push-loop", daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        if threading.current_thread() is self.thread:
            coro.close()
            raise RuntimeError("PushClient methods cannot be called from its own loop thread")
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        if not self.thread.is_alive():
            self.loop.close()


class PushClient:
    """Sends MDM pushes (``{"mdm": PushMagic}``, push type mdm) with one push certificate."""

    def __init__(
        self,
        cert_pem: bytes,
        key_pem: bytes,
        topic: str,
        *,
        use_sandbox: bool = False,
        endpoint: ApnsEndpoint | None = _FROM_OVERRIDE,
        max_in_flight: int = 256,
        timeout: float = 30.0,
        max_connections: int = 4,
        max_connection_attempts: int = 3,
    ) -> None:
        if not isinstance(cert_pem, bytes) or not isinstance(key_pem, bytes):
            raise TypeError("cert_pem and key_pem must be PEM bytes")
        if not isinstance(topic, str) or not topic:
            raise ValueError(f"push topic must be a non-empty string, got {topic!r}")
        if not isinstance(max_in_flight, int) or max_in_flight < 1:
            raise ValueError(f"max_in_flight must be a positive int, got {max_in_flight!r}")
        if not isinstance(timeout, int | float) or timeout <= 0:
            raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
        self._pem = cert_pem.rstrip(b"\n") + b"\n" + key_pem
        load_push_certificate(self._pem)  # a bad certificate fails here, not in the loop thread
        self.topic = topic
        self.use_sandbox = use_sandbox
        # Resolved now, so a client made inside use_apns_endpoint() keeps that target.
        self.endpoint = current_endpoint() if endpoint is _FROM_OVERRIDE else endpoint
        self.max_in_flight = max_in_flight
        self.timeout = float(timeout)
        self._apns_options = {
            "max_connections": max_connections,
            "max_connection_attempts": max_connection_attempts,
        }
        self._lock = threading.Lock()
        self._runner: _LoopThread | None = None
        self._closed = False

    @classmethod
    def from_certificate(cls, certificate: PushCertificate, **options: Any) -> PushClient:
        """A client for a loaded push certificate, pushing on its topic."""
        return cls(certificate.cert_pem, certificate.key_pem, certificate.topic, **options)

    def push_many(self, targets: Sequence[PushTarget]) -> list[PushOutcome]:
        """Push to every target concurrently; one outcome per target, in the same order."""
        batch = list(targets)
        for target in batch:
            if not isinstance(target, PushTarget):
                raise TypeError(f"push_many expects PushTarget items, got {type(target).__name__}")
        if not batch:
            return []
        runner = self._current_runner()
        outcomes = runner.run(self._send_all(runner, batch))
        _report_certificate_errors(outcomes)
        return outcomes

    def close(self) -> None:
        """Close the connections to APNs and stop the loop thread; idempotent."""
        with self._lock:
            runner, self._runner, self._closed = self._runner, None, True
        if runner is None or runner.pid != os.getpid():
            return
        if runner.apns is not None:
            runner.run(_close_apns(runner.apns))
        runner.stop()

    @property
    def closed(self) -> bool:
        return self._closed

    def __enter__(self) -> PushClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _current_runner(self) -> _LoopThread:
        with self._lock:
            if self._closed:
                raise PushClientClosed("this PushClient has been closed")
            if self._runner is None or self._runner.pid != os.getpid():
                # After a fork the parent's loop thread is gone; its objects are left alone.
                self._runner = _LoopThread()
            return self._runner

    def _apns(self, runner: _LoopThread) -> APNs:
        """The loop's aioapns client, created on first use (aioapns reads the cert from a file)."""
        if runner.apns is None:
            fd, path = tempfile.mkstemp(prefix="push-", suffix=".pem")
            try:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(self._pem)
                runner.apns = build_apns(
                    path,
                    self.topic,
                    use_sandbox=self.use_sandbox,
                    endpoint=self.endpoint,
                    err_func=_quiet,
                    **self._apns_options,
                )
            finally:
                os.unlink(path)
        return runner.apns

    async def _send_all(self, runner: _LoopThread, batch: list[PushTarget]) -> list[PushOutcome]:
        apns = self._apns(runner)
        outcomes: list[PushOutcome | None] = [None] * len(batch)
        queue = iter(enumerate(batch))

        async def worker() -> None:
            for index, target in queue:
                outcomes[index] = await self._send_one(apns, target)

        await asyncio.gather(*(worker() for _ in range(min(self.max_in_flight, len(batch)))))
        return outcomes  # type: ignore[return-value]

    async def _send_one(self, apns: APNs, target: PushTarget) -> PushOutcome:
        request = NotificationRequest(
            device_token=target.token_hex,
            message={"mdm": target.push_magic},
            push_type=PushType.MDM,
            apns_topic=target.topic,
        )
        # Shielded: cancelling an aioapns send leaves a cancelled future its protocol later
        # tries to resolve, which breaks the whole connection.
        task = asyncio.ensure_future(apns.send_notification(request))
        try:
            result: NotificationResult = await asyncio.wait_for(asyncio.shield(task), self.timeout)
        except TimeoutError:
            task.add_done_callback(_discard_result)
            return PushOutcome(target, None, "Timeout", None, OutcomeKind.RETRY)
        except _CONNECTION_FAILURES as exc:
            return PushOutcome(target, None, type(exc).__name__, None, OutcomeKind.RETRY)
        status = int(result.status) if str(result.status).isdigit() else None
        reason = result.description or None
        return PushOutcome(target, status, reason, result.notification_id, classify(status, reason))


async def _quiet(request: NotificationRequest, result: NotificationResult) -> None:
    """Stops aioapns logging each failure; push_many reports them per batch instead."""


async def _close_apns(apns: APNs) -> None:
    apns.pool.close()
    await asyncio.sleep(0)


def _discard_result(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()


def _report_certificate_errors(outcomes: list[PushOutcome]) -> None:
    reasons = Counter(o.reason for o in outcomes if o.kind is OutcomeKind.CERTIFICATE_ERROR)
    if reasons:
        topics = sorted(
            {o.target.topic for o in outcomes if o.kind is OutcomeKind.CERTIFICATE_ERROR}
        )
        log.error(
            "APNs refused %d pushes for certificate reasons %s (topics %s): check the push "
            "certificate, its topic and its environment; no device will wake until it is fixed",
            reasons.total(),
            dict(reasons),
            topics,
        )


_clients: dict[tuple[PushConfig, ApnsEndpoint | None], PushClient] = {}
_clients_pid = os.getpid()
_clients_lock = threading.Lock()


def get_client(config: PushConfig) -> PushClient:
    """This process's PushClient for ``config`` (one per process, rebuilt after a fork)."""
    global _clients_pid
    if not isinstance(config, PushConfig):
        raise TypeError(f"get_client expects a PushConfig, got {type(config).__name__}")
    key = (config, current_endpoint())
    with _clients_lock:
        if _clients_pid != os.getpid():
            _clients.clear()  # the parent's clients and loop threads are not ours to touch
            _clients_pid = os.getpid()
        client = _clients.get(key)
        if client is None or client.closed:
            client = PushClient(
                config.cert_pem,
                config.key_pem,
                config.topic,
                use_sandbox=config.use_sandbox,
                max_in_flight=config.max_in_flight,
                timeout=config.timeout,
            )
            _clients[key] = client
        return client


def close_clients() -> None:
    """Close every cached client of this process (worker shutdown, tests)."""
    with _clients_lock:
        clients = list(_clients.values()) if _clients_pid == os.getpid() else []
        _clients.clear()
    for client in clients:
        client.close()
