"""Driving the device endpoints over real HTTP, and proving a refusal changed nothing.

Shared by the tests and the benchmarks (``requests`` is a dev dependency).
"""

from __future__ import annotations

import plistlib
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import requests
from sqlalchemy import select
from sqlalchemy.engine import Engine

from mdmserver.storage.sql.schema import metadata
from mdmserver.testing.device import SignedRequest
from mdmserver.testing.wsgi_server import serve_wsgi


def send(base_url: str, request: SignedRequest, **overrides: Any) -> requests.Response:
    headers = {**request.headers, **overrides.pop("headers", {})}
    body = overrides.pop("body", request.body)
    return requests.put(base_url + request.path, data=body, headers=headers, timeout=30)


def command_of(response: requests.Response) -> dict[str, Any]:
    """The command plist a device received; fails the test if the body is empty."""
    assert response.status_code == 200, response.text
    assert response.content, "expected a command, got an empty body"
    return plistlib.loads(response.content)


# Not state a request changes: counters of requests (a refused request is counted there on
# purpose), and what background threads write for earlier, accepted requests (the push outbox
# and push outcomes, last seen written in batches). Tests of those read them directly
# (tests/web/test_last_seen.py, tests/jobs).
NOT_STATE = frozenset({"rate_limits", "push_outbox", "push_status"})
BACKGROUND_COLUMNS = {"devices": {"last_seen_at"}, "enrollments": {"last_seen_at"}}


def snapshot(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table (NOT_STATE and BACKGROUND_COLUMNS aside), to prove a refused
    request changed nothing."""
    state: dict[str, list[tuple[Any, ...]]] = {}
    with engine.connect() as conn:
        for table in metadata.sorted_tables:
            if table.name in NOT_STATE:
                continue
            skipped = BACKGROUND_COLUMNS.get(table.name, set())
            columns = [c for c in table.columns if c.name not in skipped]
            rows = conn.execute(select(*columns)).all()
            state[table.name] = sorted((tuple(row) for row in rows), key=repr)
    return state


def settled_snapshot(
    engine: Engine,
    flush: Callable[[], object] | None = None,
    *,
    quiet: float = 0.15,
    timeout: float = 15.0,
) -> dict[str, list[tuple[Any, ...]]]:
    """A snapshot once the background writes of earlier requests have landed.

    Push requests are dispatched and answered by threads, last seen is written in batches
    (``flush`` writes what is pending): take snapshots until one stays the same for ``quiet``
    seconds, so "a refused request changed nothing" compares like with like.
    """
    deadline = time.monotonic() + timeout
    if flush is not None:
        flush()
    state = snapshot(engine)
    while time.monotonic() < deadline:
        time.sleep(quiet)
        if flush is not None:
            flush()
        again = snapshot(engine)
        if again == state:
            return state
        state = again
    raise AssertionError(f"the database kept changing for {timeout} s")


@contextmanager
def serve(app: Any) -> Iterator[str]:
    """Serve a WSGI app over real HTTP on an ephemeral loopback port; yields its base URL."""
    with serve_wsgi(app) as port:
        yield f"http://127.0.0.1:{port}"


def drain(base_url: str, device: Any) -> list[str]:
    """Run one session: Idle, then acknowledge each command until the server has none left.

    Enrollment makes features queue work (inventory, profiles); a test of something else
    starts from an empty queue by draining first. Returns the RequestTypes handed out.
    """
    handed_out: list[str] = []
    reply = send(base_url, device.idle())
    while reply.content:
        command = command_of(reply)
        handed_out.append(command["Command"]["RequestType"])
        reply = send(base_url, device.result("Acknowledged", command["CommandUUID"]))
    assert reply.status_code == 200, reply.text
    return handed_out
