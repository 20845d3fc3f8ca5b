"""A device over real HTTP with real CMS signatures: the whole check-in and command loop."""

from __future__ import annotations

import plistlib
from datetime import UTC, datetime, timedelta

from mdmserver.protocol.commands import new_command
from mdmserver.storage.base import EnrollmentStatus, QueueStatus
from mdmserver.testing.http import command_of, drain, send
from mdmserver.web.runtime import runtime


def enroll(base: str, device) -> None:
    """Enroll, then answer whatever enrollment itself queued (inventory, profiles)."""
    assert send(base, device.authenticate()).status_code == 200
    assert send(base, device.token_update()).status_code == 200
    drain(base, device)


def test_full_loop_authenticate_to_checkout(app, live_server, pki):
    storage = runtime(app).storage
    device = pki.device()

    reply = send(live_server, device.authenticate())
    assert reply.status_code == 200 and reply.content == b""
    assert storage.enrollment(device.udid).status == EnrollmentStatus.PENDING

    assert send(live_server, device.token_update()).status_code == 200
    enrollment = storage.enrollment(device.udid)
    assert enrollment.status == EnrollmentStatus.ACTIVE
    assert enrollment.push_token_hex == device.push_token.hex()
    assert enrollment.push_magic == device.push_magic
    assert enrollment.unlock_token == b"unlock-" + device.udid.encode()

    drain(live_server, device)  # what enrollment itself queued
    idle = send(live_server, device.idle())
    assert idle.status_code == 200 and idle.content == b""

    command = new_command("DeviceInformation", {"Queries": ["UDID", "OSVersion"]})
    storage.enqueue(command, [device.udid])
    received = command_of(send(live_server, device.idle()))
    assert received["CommandUUID"] == command.command_uuid
    assert received["Command"] == {
        "RequestType": "DeviceInformation",
        "Queries": ["UDID", "OSVersion"],
    }

    answer = device.result(
        "Acknowledged",
        command.command_uuid,
        QueryResponses={"UDID": device.udid, "OSVersion": "17.4"},
    )
    reply = send(live_server, answer)
    assert reply.status_code == 200 and reply.content == b""
    [item] = storage.command_targets(command.command_uuid)
    assert item.status == QueueStatus.ACKNOWLEDGED
    assert plistlib.loads(item.result)["QueryResponses"]["OSVersion"] == "17.4"

    assert send(live_server, device.idle()).content == b""

    assert send(live_server, device.check_out()).status_code == 200
    assert storage.enrollment(device.udid).status == EnrollmentStatus.CHECKED_OUT
    # A checked-out device is no longer served (403, never 401).
    assert send(live_server, device.idle()).status_code == 403
    # ...and its history is kept.
    assert storage.command_targets(command.command_uuid)[0].status == QueueStatus.ACKNOWLEDGED


def test_notnow_is_not_resent_in_the_same_session(app, live_server, pki):
    storage = runtime(app).storage
    device = pki.device()
    enroll(live_server, device)
    first, second = new_command("InstallProfile", {"Payload": b"x"}), new_command("ProfileList")
    storage.enqueue(first, [device.udid])
    storage.enqueue(second, [device.udid])

    assert command_of(send(live_server, device.idle()))["CommandUUID"] == first.command_uuid
    # NotNow: the next command is offered, the NotNow'd one is not offered again this session.
    after_notnow = send(live_server, device.result("NotNow", first.command_uuid))
    assert command_of(after_notnow)["CommandUUID"] == second.command_uuid
    end = send(live_server, device.result("Acknowledged", second.command_uuid))
    assert end.status_code == 200 and end.content == b""
    assert storage.command_targets(first.command_uuid)[0].status == QueueStatus.NOTNOW

    # A later session (a new Idle) gets it again, and it can complete.
    assert command_of(send(live_server, device.idle()))["CommandUUID"] == first.command_uuid
    assert send(live_server, device.result("Acknowledged", first.command_uuid)).content == b""
    assert storage.command_targets(first.command_uuid)[0].status == QueueStatus.ACKNOWLEDGED


def test_sent_but_unanswered_command_is_sent_again(app, live_server, pki):
    storage = runtime(app).storage
    device = pki.device()
    enroll(live_server, device)
    command = new_command("SecurityInfo")
    storage.enqueue(command, [device.udid])
    assert command_of(send(live_server, device.idle()))["CommandUUID"] == command.command_uuid
    # The answer never arrived (server died, network dropped): the next Idle re-sends it.
    assert command_of(send(live_server, device.idle()))["CommandUUID"] == command.command_uuid


def test_queue_order_priority_then_age_and_expiry(app, live_server, pki):
    storage = runtime(app).storage
    device = pki.device()
    enroll(live_server, device)
    old, urgent, newer = (
        new_command("ProfileList"),
        new_command("DeviceLock"),
        new_command("SecurityInfo"),
    )
    expired = new_command("CertificateList")
    storage.enqueue(old, [device.udid])
    storage.enqueue(expired, [device.udid], expires_at=datetime.now(UTC) - timedelta(seconds=1))
    storage.enqueue(urgent, [device.udid], priority=10)
    storage.enqueue(newer, [device.udid])

    order = []
    reply = send(live_server, device.idle())
    while reply.content:
        uuid = command_of(reply)["CommandUUID"]
        order.append(uuid)
        reply = send(live_server, device.result("Acknowledged", uuid))
    assert order == [urgent.command_uuid, old.command_uuid, newer.command_uuid]
    assert storage.command_targets(expired.command_uuid)[0].status == QueueStatus.EXPIRED


def test_error_result_stores_error_chain(app, live_server, pki):
    storage = runtime(app).storage
    device = pki.device()
    enroll(live_server, device)
    command = new_command("RemoveProfile", {"Identifier": "com.example.missing"})
    storage.enqueue(command, [device.udid])
    command_of(send(live_server, device.idle()))
    chain = [
        {
            "ErrorCode": 89,
            "ErrorDomain": "MCProfileErrorDomain",
            "LocalizedDescription": "Profile not found",
            "USEnglishDescription": "Profile not found",
        }
    ]
    assert (
        send(
            live_server, device.result("Error", command.command_uuid, ErrorChain=chain)
        ).status_code
        == 200
    )
    [item] = storage.command_targets(command.command_uuid)
    assert item.status == QueueStatus.ERROR
    assert plistlib.loads(item.result)["ErrorChain"][0]["ErrorCode"] == 89


def test_reauthenticate_clears_the_old_queue(app, live_server, pki):
    storage = runtime(app).storage
    device = pki.device()
    enroll(live_server, device)
    command = new_command("ProfileList")
    storage.enqueue(command, [device.udid])
    enroll(live_server, device)  # the device enrolled again
    assert storage.command_targets(command.command_uuid)[0].status == QueueStatus.CANCELLED
    assert send(live_server, device.idle()).content == b""


def test_user_channel_token_update_creates_user_enrollment(app, live_server, pki):
    storage = runtime(app).storage
    device = pki.device()
    enroll(live_server, device)
    user_id = "A522C2FB-D0BA-487E-BBC6-BE0DB2DC7883"
    reply = send(
        live_server,
        device.token_update(UserID=user_id, UserShortName="cjoe", UserLongName="Commando Joe"),
    )
    assert reply.status_code == 200, reply.text
    user = storage.enrollment(f"{device.udid}:{user_id}")
    assert user is not None and user.status == EnrollmentStatus.ACTIVE
    assert user.user_short_name == "cjoe"

    command = new_command("ProfileList")
    storage.enqueue(command, [user.id])
    assert send(live_server, device.idle()).content == b""  # the device channel has nothing
    user_idle = send(live_server, device.result("Idle", UserID=user_id))
    assert command_of(user_idle)["CommandUUID"] == command.command_uuid


def test_awaiting_configuration_absent_means_unchanged(app, live_server, pki):
    storage = runtime(app).storage
    device = pki.device()
    send(live_server, device.authenticate())
    send(live_server, device.token_update(AwaitingConfiguration=True))
    assert storage.enrollment(device.udid).awaiting_configuration is True
    update = device.token_update()
    message = plistlib.loads(update.body)
    del message["AwaitingConfiguration"]
    assert send(live_server, device.checkin(message)).status_code == 200
    assert storage.enrollment(device.udid).awaiting_configuration is True


def test_bootstrap_token_round_trip(app, live_server, pki):
    device = pki.device()
    enroll(live_server, device)
    get = {"MessageType": "GetBootstrapToken", "UDID": device.udid}
    empty = send(live_server, device.checkin(get))
    assert empty.status_code == 200 and empty.content == b""
    token = b"\x00bootstrap\xff" * 4
    put = {"MessageType": "SetBootstrapToken", "UDID": device.udid, "BootstrapToken": token}
    assert send(live_server, device.checkin(put)).status_code == 200
    reply = send(live_server, device.checkin(get))
    assert plistlib.loads(reply.content) == {"BootstrapToken": token}


def test_unhandled_checkins_get_a_clear_4xx(app, live_server, pki):
    device = pki.device()
    enroll(live_server, device)
    user_auth = {
        "MessageType": "UserAuthenticate",
        "UDID": device.udid,
        "UserID": "U1",
        "DigestResponse": "x",
    }
    declined = send(live_server, device.checkin(user_auth))
    assert declined.status_code == 410
    get_token = {"MessageType": "GetToken", "UDID": device.udid, "TokenServiceType": "x.y"}
    reply = send(live_server, device.checkin(get_token))
    assert reply.status_code == 400
    assert "not supported" in reply.text


def test_authenticate_with_foreign_topic_is_refused(app, live_server, pki, topic):
    device = pki.device(topic="com.apple.mgmt.External.someone-else")
    reply = send(live_server, device.authenticate())
    assert reply.status_code == 400
    assert "push topic" in reply.text
    assert runtime(app).storage.enrollment(device.udid) is None
    assert topic not in reply.text  # the server's own topics are not disclosed


def test_every_notnow_command_returns_in_the_next_session(app, live_server, pki):
    storage = runtime(app).storage
    device = pki.device()
    enroll(live_server, device)
    drain(live_server, device)  # whatever enrollment itself queued
    first, second = new_command("ProfileList"), new_command("CertificateList")
    storage.enqueue(first, [device.udid])
    storage.enqueue(second, [device.udid])

    assert command_of(send(live_server, device.idle()))["CommandUUID"] == first.command_uuid
    reply = send(live_server, device.result("NotNow", first.command_uuid))
    assert command_of(reply)["CommandUUID"] == second.command_uuid
    assert send(live_server, device.result("NotNow", second.command_uuid)).content == b""

    # The next session offers both again, in queue order, one after the other.
    assert command_of(send(live_server, device.idle()))["CommandUUID"] == first.command_uuid
    reply = send(live_server, device.result("Acknowledged", first.command_uuid))
    assert command_of(reply)["CommandUUID"] == second.command_uuid
    assert send(live_server, device.result("Acknowledged", second.command_uuid)).content == b""
