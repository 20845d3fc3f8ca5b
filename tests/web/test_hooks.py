"""Features plug into the core through hooks: on enrollment and on each first answer."""

from __future__ import annotations

from mdmserver.protocol.commands import new_command
from mdmserver.storage.base import QueueStatus
from mdmserver.testing.http import command_of, drain, send
from mdmserver.web.runtime import runtime


def test_enrolled_hook_fires_once_per_enrollment(app, live_server, pki):
    seen = []
    runtime(app).hooks.on_enrolled(lambda event: seen.append(event.identity.id))
    device = pki.device()
    send(live_server, device.authenticate())
    send(live_server, device.token_update())
    send(live_server, device.token_update())  # a token refresh is not a new enrollment
    assert seen == [device.udid]
    send(live_server, device.authenticate())  # re-enrollment
    send(live_server, device.token_update())
    assert seen == [device.udid, device.udid]


def test_result_hook_sees_the_answer_and_can_queue_the_next_command(app, live_server, pki):
    rt = runtime(app)
    follow_up = new_command("InstallProfile", {"Payload": b"profile"})
    answers = []

    def on_profile_list(event):
        answers.append((event.request_type, event.result.raw["ProfileList"]))
        rt.storage.enqueue(follow_up, [event.identity.id])

    device = pki.device()
    send(live_server, device.authenticate())
    send(live_server, device.token_update())
    drain(live_server, device)  # what enrollment itself queued
    rt.hooks.on_result("ProfileList", on_profile_list)
    listing = new_command("ProfileList")
    rt.storage.enqueue(listing, [device.udid])
    command_of(send(live_server, device.idle()))
    reply = send(
        live_server,
        device.result("Acknowledged", listing.command_uuid, ProfileList=[{"PayloadUUID": "x"}]),
    )
    assert answers == [("ProfileList", [{"PayloadUUID": "x"}])]
    # The hook's command is handed out in the same session, no push needed.
    assert command_of(reply)["CommandUUID"] == follow_up.command_uuid
    # A duplicate answer is not announced again.
    send(live_server, device.result("Acknowledged", listing.command_uuid, ProfileList=[]))
    assert len(answers) == 1


def test_failing_hook_does_not_fail_the_device(app, live_server, pki):
    rt = runtime(app)

    def broken(event):
        raise RuntimeError("feature bug")

    rt.hooks.on_result("*", broken)
    device = pki.device()
    send(live_server, device.authenticate())
    send(live_server, device.token_update())
    drain(live_server, device)
    command = new_command("SecurityInfo")
    rt.storage.enqueue(command, [device.udid])
    command_of(send(live_server, device.idle()))
    reply = send(live_server, device.result("Acknowledged", command.command_uuid))
    assert reply.status_code == 200
    assert rt.storage.command_targets(command.command_uuid)[0].status == QueueStatus.ACKNOWLEDGED
