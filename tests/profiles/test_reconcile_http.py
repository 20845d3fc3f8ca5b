"""An emulated device over real HTTP gets its profiles without admin action, on both databases.

Enrollment queues what is assigned; the device's ProfileList answer (with the profiles and its
enrollment profile) queues nothing more; unassigning queues the right RemoveProfile; a device
error is kept with its ErrorChain and not retried in a loop; a changed profile is reinstalled.
"""

from __future__ import annotations

import plistlib

from mdmserver.crypto.ca import dump_cert_pem, dump_key_pem
from mdmserver.web.runtime import runtime
from tests.profiles.conftest import openssl, write_signer
from tests.profiles.phone import Phone

PROFILE_COMMANDS = {"InstallProfile", "RemoveProfile", "ProfileList"}


def _kinds(commands: list[dict]) -> list[tuple[str, str]]:
    """The profile commands among those sent (other features queue their own at enrollment)."""
    out = []
    for c in commands:
        body = c["Command"]
        if body["RequestType"] in PROFILE_COMMANDS:
            out.append((body["RequestType"], body.get("Identifier", "")))
    return out


def _pending_profile_commands(app, udid: str) -> list[str]:
    queue = runtime(app).storage.queue(udid)
    return [q.request_type for q in queue if q.request_type in PROFILE_COMMANDS]


def test_enroll_install_list_remove_fail_and_change(app, app_config, live_server, pki):
    write_signer(app_config.home, pki)
    admin = runtime(app).profiles.admin
    admin.from_template("passcode", "pass", {"min_length": 10})
    admin.from_template("webclip", "clip", {})
    admin.assign("pass", "all")
    admin.assign("clip", "tag:sales")
    phone = Phone(live_server, pki.device(serial_number="C02SALES0001"), pki.ca_file)
    phone.enroll(app, tags=("sales",))

    first = phone.run()
    kinds = [k for k, _ in _kinds(first)]
    assert kinds.count("InstallProfile") == 2 and kinds[-1] == "ProfileList"
    assert set(phone.installed) == {
        "com.mdmserver.profile.pass", "com.mdmserver.profile.clip"
    }  # fmt: skip
    clip = phone.installed["com.mdmserver.profile.clip"]["PayloadContent"][0]
    assert clip["URL"] == "https://help.example.com/device/C02SALES0001"  # filled per device

    # The ProfileList answer queued nothing more.
    assert _pending_profile_commands(app, phone.device.udid) == []
    assert runtime(app).profiles.service.reconcile(phone.device.udid).plan.install == []

    # Unassigning queues the RemoveProfile for exactly that profile.
    admin.unassign("clip", "tag:sales")
    assert _kinds(phone.run()) == [("RemoveProfile", "com.mdmserver.profile.clip")]
    status = {s.identifier: s.status for s in admin.status(device=phone.device.udid)}
    assert status["com.mdmserver.profile.clip"] == "removed"

    # A device refusal is kept with its ErrorChain, and not retried on the next ProfileList.
    admin.from_template("restrictions", "restr", {"allow_camera": False})
    admin.assign("restr", "all")
    refused = phone.run(refuse={"com.mdmserver.profile.restr"})
    assert _kinds(refused) == [("InstallProfile", "")]
    (state,) = admin.status("restr")
    assert state.status == "failed"
    assert '"ErrorCode": 4001' in (state.error or "")
    runtime(app).profiles.service.reconcile(phone.device.udid)
    assert _pending_profile_commands(app, phone.device.udid) == []

    # A changed profile gets a new PayloadUUID and is installed again.
    old_uuid = phone.installed["com.mdmserver.profile.pass"]["PayloadUUID"]
    admin.from_template("passcode", "pass", {"min_length": 12}, replace=True)
    again = phone.run()
    assert _kinds(again) == [("InstallProfile", "")]
    new = phone.installed["com.mdmserver.profile.pass"]
    assert new["PayloadUUID"] != old_uuid
    assert new["PayloadContent"][0]["minLength"] == 12


def test_profiles_with_secrets_are_encrypted_to_the_device(
    app, app_config, live_server, pki, template_values, tmp_path
):
    write_signer(app_config.home, pki)
    admin = runtime(app).profiles.admin
    admin.from_template("wifi-eap-tls", "wifi", template_values["wifi-eap-tls"])
    admin.assign("wifi", "all")
    phone = Phone(live_server, pki.device(), pki.ca_file)
    phone.enroll(app)
    commands = phone.run()
    install = next(c for c in commands if c["Command"]["RequestType"] == "InstallProfile")
    profile = phone.profile_of(install)
    assert profile["IsEncrypted"] is True and "PayloadContent" not in profile
    cert, key = tmp_path / "device.pem", tmp_path / "device.key"
    cert.write_bytes(dump_cert_pem(phone.device.certificate))
    key.write_bytes(dump_key_pem(phone.device.key))
    plain = openssl(
        "cms", "-decrypt", "-inform", "DER", "-recip", str(cert), "-inkey", str(key),
        data=profile["EncryptedPayloadContent"],
    )  # fmt: skip
    payloads = plistlib.loads(plain)
    wifi = next(p for p in payloads if p["PayloadType"] == "com.apple.wifi.managed")
    assert wifi["SSID_STR"] == "Corp"
    assert wifi["EAPClientConfiguration"]["AcceptEAPTypes"] == [13]
