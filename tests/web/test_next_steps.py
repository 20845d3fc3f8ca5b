"""What a device gets next: one ordered list of steps (service/next_command.py).

Over real HTTP on both databases: a feature step that raises does not fail the device's
request and the steps after it still run; a request no feature step has anything to do for
costs no command and no query of the features' stores; every inventory query declares its
reader. (The profile step after a ProfileList answer: tests/profiles/test_reconcile_http.py.)
"""

from __future__ import annotations

import logging

from sqlalchemy import event

from mdmserver.apps.reconcile import AppReconciler
from mdmserver.commands.answers import Readers, ResultEvent
from mdmserver.commands.registry import ANSWERS
from mdmserver.inventory.service import READ_COMMANDS
from mdmserver.protocol.commands import new_command
from mdmserver.service.next_command import build_steps
from mdmserver.storage.base import QueueStatus
from mdmserver.testing.http import command_of, drain, send
from mdmserver.web.runtime import runtime


def _enrolled(live_server, pki):
    device = pki.device()
    send(live_server, device.authenticate())
    send(live_server, device.token_update())
    drain(live_server, device)  # what enrollment itself queued
    return device


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_the_order_is_declared_once_and_the_queue_comes_last(app):
    rt = runtime(app)
    profiles = runtime(app).profiles.service
    apps = rt.hooks.readers.apps
    assert isinstance(apps, AppReconciler)
    names = [s.name for s in build_steps(queue=rt.storage, profiles=profiles, apps=apps)]
    assert names == ["profiles", "apps", "queue"]
    # A feature that is off has no step; the queue is always there, and only it is unshielded.
    (only,) = build_steps(queue=rt.storage)
    assert only.name == "queue" and not only.shielded


def test_failing_step_does_not_fail_the_device_and_the_next_step_runs(
    app, live_server, pki, monkeypatch
):
    rt = runtime(app)
    service = runtime(app).profiles.service

    def broken(*_args, **_kwargs):
        raise RuntimeError("reconciliation bug")

    monkeypatch.setattr(service, "reconcile", broken)
    handler = _Records()
    logger = logging.getLogger("mdmserver.next_command")
    logger.addHandler(handler)
    device = _enrolled(live_server, pki)
    try:
        listing, follow = new_command("ProfileList"), new_command("SecurityInfo")
        rt.storage.enqueue(listing, [device.udid])
        rt.storage.enqueue(follow, [device.udid])
        assert command_of(send(live_server, device.idle()))["CommandUUID"] == listing.command_uuid
        reply = send(
            live_server, device.result("Acknowledged", listing.command_uuid, ProfileList=[])
        )
    finally:
        logger.removeHandler(handler)
    # The device is not failed: its answer is stored and the queue step (after the broken
    # profile step) still hands out the next command.
    assert reply.status_code == 200, reply.text
    assert command_of(reply)["CommandUUID"] == follow.command_uuid
    assert rt.storage.command_targets(listing.command_uuid)[0].status == QueueStatus.ACKNOWLEDGED
    failed = [r for r in handler.records if r.getMessage() == "next_step_failed"]
    assert [r.fields["step"] for r in failed] == ["profiles"]  # type: ignore[attr-defined]


def test_nothing_to_do_costs_no_command_and_no_feature_query(app, live_server, pki):
    rt = runtime(app)
    device = _enrolled(live_server, pki)
    statements: list[str] = []

    def count(_conn, _cursor, statement, *_args) -> None:
        statements.append(statement)

    # The features' stores work through the engine; the hot path through its own pool.
    event.listen(rt.engine, "before_cursor_execute", count)
    try:
        for _ in range(3):
            reply = send(live_server, device.idle())
            assert reply.status_code == 200 and reply.content == b""
    finally:
        event.remove(rt.engine, "before_cursor_execute", count)
    # The engine also serves last seen and the push outbox; the features' tables are untouched.
    feature_tables = ("profile", "app_", "scep_challenges", "inventory", "compliance")
    assert [s for s in statements if any(t in s for t in feature_tables)] == []
    assert rt.storage.queue(device.udid) == []


class _Reader:
    def __init__(self) -> None:
        self.seen: list[str] = []

    def on_result(self, event: ResultEvent) -> None:
        self.seen.append(event.request_type)


def test_every_inventory_query_declares_inventory_as_a_reader():
    """A query inventory queues whose module forgot it would be answered and never read."""
    reader = _Reader()
    for request_type in READ_COMMANDS:
        handlers = list(ANSWERS[request_type].readers(Readers(inventory=reader)))
        assert reader.on_result in handlers, request_type
