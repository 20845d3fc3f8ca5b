"""The listening socket, the worker processes that share it, and their supervision.

The parent binds the socket (so a busy port fails at once, before anything says "listening"),
forks the workers, restarts one that dies, and forwards SIGTERM / SIGINT for a graceful stop.
Each worker builds its own app after the fork (database connections must not be shared
between processes) and runs one asyncio loop in front of ``threads`` WSGI threads.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import signal
import socket
import ssl
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from types import FrameType
from typing import TYPE_CHECKING

from mdmserver.logs import get_logger
from mdmserver.server.addresses import AddressTable
from mdmserver.server.http import Connection, Limits, Worker

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication

log = get_logger("server")

BACKLOG = 2048
GRACE_SECONDS = 10.0  # how long busy requests may finish after SIGTERM
BOOT_SECONDS = 5.0  # a worker that dies sooner than this failed to start: stop, do not loop


class ServeError(Exception):
    """A reason the server cannot start, in one line for the operator."""


@dataclass(frozen=True)
class ServerOptions:
    workers: int
    threads: int
    limits: Limits
    max_connections_per_address: int


def tls_context(certfile: str, keyfile: str) -> ssl.SSLContext:
    """The server's TLS context, or a ServeError naming the file that does not work."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(certfile, keyfile)
    except FileNotFoundError as exc:
        raise ServeError(f"TLS file {exc.filename or certfile} does not exist") from None
    except (ssl.SSLError, OSError) as exc:
        raise ServeError(
            f"cannot use --certfile {certfile} with --keyfile {keyfile}: {exc}"
        ) from None
    return context


def bind(host: str, port: int) -> socket.socket:
    """The listening socket, or a ServeError when the address is taken or unusable."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ServeError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise ServeError(
                f"port {port} on {host} is already in use (is another server running?)"
            ) from None
        raise ServeError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.listen(BACKLOG)
    sock.setblocking(False)
    return sock


def run(
    app_factory: Callable[[], WSGIApplication],
    options: ServerOptions,
    sock: socket.socket,
    tls: ssl.SSLContext | None,
) -> int:
    """Run the workers until SIGTERM / SIGINT; the exit status."""
    addresses = AddressTable(options.workers, options.max_connections_per_address)
    children: dict[int, tuple[int, float]] = {}  # pid -> (worker index, start time)
    stopping = False

    def spawn(index: int) -> None:
        pid = os.fork()
        if pid == 0:
            status = 1
            try:
                status = _worker(index, app_factory, options, sock, tls, addresses)
            except BaseException:
                log.exception("worker_failed", extra={"fields": {"worker": index}})
            finally:
                os._exit(status)
        children[pid] = (index, time.monotonic())

    def stop(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        for index in range(options.workers):
            spawn(index)
        status = 0
        while children:
            try:
                pid, _ = os.wait()
            except ChildProcessError:
                break
            index, started = children.pop(pid, (-1, 0.0))
            if stopping or index < 0:
                continue
            if time.monotonic() - started < BOOT_SECONDS:
                log.error("worker_failed_to_start", extra={"fields": {"worker": index}})
                status = 1
                stop(signal.SIGTERM, None)
                continue
            log.warning("worker_restarted", extra={"fields": {"worker": index}})
            spawn(index)
        return status
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        sock.close()


def _worker(
    index: int,
    app_factory: Callable[[], WSGIApplication],
    options: ServerOptions,
    sock: socket.socket,
    tls: ssl.SSLContext | None,
    addresses: AddressTable,
) -> int:
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, signal.SIG_DFL)
    addresses.become(index)
    app = app_factory()
    executor = ThreadPoolExecutor(options.threads, thread_name_prefix="wsgi")
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    worker = Worker(
        app,
        options.limits,
        executor,
        addresses,
        tls,
        server_port=sock.getsockname()[1],
        multiprocess=options.workers > 1,
    )
    try:
        loop.run_until_complete(_serve(loop, worker, sock))
    finally:
        executor.shutdown(wait=True, cancel_futures=True)
        loop.close()
    return 0


async def _serve(loop: asyncio.AbstractEventLoop, worker: Worker, sock: socket.socket) -> None:
    stopped = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopped.set)
    server = await loop.create_server(lambda: Connection(worker), sock=sock, backlog=BACKLOG)
    await stopped.wait()
    server.close()
    worker.shutdown()
    deadline = loop.time() + GRACE_SECONDS
    while worker.connections and loop.time() < deadline:
        await asyncio.sleep(0.05)
        worker.shutdown()
