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
from collections.abc import Coroutine, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, TypeVar

from aioapns import APNs, NotificationRequest, PushType
from aioapns.common import NotificationResult
from aioapns.exceptions import ConnectionClosed, MaxAttemptsExceeded
from aioapns.exceptions import ConnectionError as APNsConnectionError

from mdmserver.push.aioapns_protocol import STREAMS_PER_CONNECTION
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
        return self.submit(coro).result()

    def submit(self, coro: Coroutine[Any, Any, T]) -> Future[T]:
        if threading.current_thread() is self.thread:
            coro.close()
            raise RuntimeError("PushClient methods cannot be called from its own loop thread")
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

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
            # Enough connections for max_in_flight at STREAMS_PER_CONNECTION each; fewer would
            # leave aioapns' pool polling for a free stream every 10 ms.
            "max_connections": max(max_connections, -(-max_in_flight // STREAMS_PER_CONNECTION)),
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
        outcomes: list[PushOutcome] = []
        for chunk in self.push_in_chunks(batch, max(1, len(batch))):
            outcomes.extend(chunk)
        return outcomes

    def push_in_chunks(
        self, targets: Sequence[PushTarget], chunk_size: int
    ) -> Iterator[list[PushOutcome]]:
        """Push to every target as one stream; yield the outcomes ``chunk_size`` at a time, in
        order, each chunk as soon as all of it is answered.

        So a caller stores one chunk's outcomes while the later ones are still in flight, and
        APNs (another process or machine) keeps working meanwhile instead of waiting for it.
        A caller that stops early leaves the rest to finish unseen.
        """
        batch = list(targets)
        for target in batch:
            if not isinstance(target, PushTarget):
                raise TypeError(f"push_many expects PushTarget items, got {type(target).__name__}")
        if not isinstance(chunk_size, int) or chunk_size < 1:
            raise ValueError(f"chunk_size must be a positive int, got {chunk_size!r}")
        if not batch:
            return iter(())
        runner = self._current_runner()
        chunks = [Future[list[PushOutcome]]() for _ in range(0, len(batch), chunk_size)]
        finished = runner.submit(self._send_all(runner, batch, chunk_size, chunks))
        return _collect(chunks, finished)

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

    async def _send_all(
        self,
        runner: _LoopThread,
        batch: list[PushTarget],
        chunk_size: int,
        chunks: list[Future[list[PushOutcome]]],
    ) -> None:
        apns = self._apns(runner)
        await _Batch(apns, batch, self.max_in_flight, self.timeout, chunk_size, chunks).run()


def _collect(
    chunks: list[Future[list[PushOutcome]]], finished: Future[None]
) -> Iterator[list[PushOutcome]]:
    refused: list[PushOutcome] = []
    for chunk in chunks:
        outcomes = chunk.result()
        refused += (o for o in outcomes if o.kind is OutcomeKind.CERTIFICATE_ERROR)
        yield outcomes
    finished.result()
    _report_certificate_errors(refused)


class _Batch:
    """One stream of pushes on the loop: at most ``limit`` in flight, each with a deadline.

    Each send is one task whose done-callback records the outcome and starts the next send;
    one watchdog timer per batch gives up on sends past their deadline. This replaces
    ``wait_for(shield(task))`` in a worker coroutine per push, which cost two more futures, a
    timer and two coroutine switches per push (about a tenth of the client's CPU). A send that
    timed out is never cancelled: cancelling an aioapns send leaves a cancelled future that its
    protocol later tries to resolve, which breaks the whole connection; its answer is dropped.
    """

    def __init__(
        self,
        apns: APNs,
        targets: list[PushTarget],
        limit: int,
        timeout: float,
        chunk_size: int,
        chunks: list[Future[list[PushOutcome]]],
    ) -> None:
        self.loop = asyncio.get_running_loop()
        self.apns = apns
        self.targets = targets
        self.limit = limit
        self.timeout = timeout
        self.outcomes: list[PushOutcome | None] = [None] * len(targets)
        self.ids = _apns_ids(len(targets))
        self.next = 0
        self.in_flight: dict[asyncio.Task[NotificationResult], tuple[int, float]] = {}
        self.chunk_size = chunk_size
        self.chunks = chunks  # one per chunk_size targets, resolved from the loop thread
        self.unanswered = [
            min(chunk_size, len(targets) - i) for i in range(0, len(targets), chunk_size)
        ]
        self.done: asyncio.Future[None] = self.loop.create_future()
        self.watchdog: asyncio.TimerHandle | None = None

    async def run(self) -> None:
        """Send everything; hand each chunk's outcomes to its future once all are in."""
        try:
            for _ in range(min(self.limit, len(self.targets))):
                self._start_next()
            self._arm_watchdog()
            await self.done
        except BaseException as exc:
            self._fail(exc)
            raise
        finally:
            if self.watchdog is not None:
                self.watchdog.cancel()

    def _start_next(self) -> None:
        index = self.next
        self.next = index + 1
        target = self.targets[index]
        request = NotificationRequest(
            device_token=target.token_hex,
            message={"mdm": target.push_magic},
            notification_id=self.ids[index],
            push_type=PushType.MDM,
            apns_topic=target.topic,
        )
        task = self.loop.create_task(self.apns.send_notification(request))
        self.in_flight[task] = (index, self.loop.time() + self.timeout)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[NotificationResult]) -> None:
        entry = self.in_flight.pop(task, None)
        if entry is None:  # timed out (or the batch failed) before the answer came
            _discard_result(task)
            return
        index = entry[0]
        try:
            outcome = _outcome(self.targets[index], task.result())
        except _CONNECTION_FAILURES as exc:
            outcome = _no_answer(self.targets[index], type(exc).__name__)
        except BaseException as exc:  # a bug, not APNs: push_many raises it, as before
            self._fail(exc)
            return
        self._settle(index, outcome)

    def _settle(self, index: int, outcome: PushOutcome) -> None:
        if self.done.done():
            return
        self.outcomes[index] = outcome
        chunk = index // self.chunk_size
        self.unanswered[chunk] -= 1
        if not self.unanswered[chunk]:
            start = chunk * self.chunk_size
            self.chunks[chunk].set_result(self.outcomes[start : start + self.chunk_size])  # type: ignore[arg-type]
        if self.next < len(self.targets):
            self._start_next()
        elif not any(self.unanswered):
            self.done.set_result(None)

    def _fail(self, exc: BaseException) -> None:
        self.in_flight.clear()  # their answers are dropped as they come (see _finished)
        for chunk in self.chunks:
            if not chunk.done():
                chunk.set_exception(exc)
        if not self.done.done():
            self.done.set_exception(exc)
            self.done.exception()  # retrieved: run() raises it

    def _arm_watchdog(self) -> None:
        self.watchdog = self.loop.call_later(min(self.timeout, _WATCH_SECONDS), self._expire)

    def _expire(self) -> None:
        now = self.loop.time()
        expired = [task for task, (_, deadline) in self.in_flight.items() if deadline <= now]
        for task in expired:
            index, _ = self.in_flight.pop(task)
            self._settle(index, _no_answer(self.targets[index], "Timeout"))
        if not self.done.done():
            self._arm_watchdog()


def _outcome(target: PushTarget, result: NotificationResult) -> PushOutcome:
    status = int(result.status) if str(result.status).isdigit() else None
    reason = result.description or None
    return PushOutcome(target, status, reason, result.notification_id, classify(status, reason))


def _no_answer(target: PushTarget, reason: str) -> PushOutcome:
    return PushOutcome(target, None, reason, None, OutcomeKind.RETRY)


def _apns_ids(count: int) -> list[str]:
    """``count`` random UUIDs (version 4) as apns-id values, from one read of the OS's RNG.

    aioapns calls ``uuid4()`` per request, a system call and a UUID object each (~5 us).
    """
    raw = os.urandom(16 * count).hex()
    ids = []
    for start in range(0, 32 * count, 32):
        h = raw[start : start + 32]
        variant = _VARIANT[h[16]]
        ids.append(f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{variant}{h[17:20]}-{h[20:]}")
    return ids


# RFC 4122 variant: the top two bits of the 17th hex digit are 10 (8, 9, a or b).
_VARIANT = {digit: "89ab"[int(digit, 16) & 3] for digit in "0123456789abcdef"}
_WATCH_SECONDS = 0.5  # how often a batch looks for sends past their deadline


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
