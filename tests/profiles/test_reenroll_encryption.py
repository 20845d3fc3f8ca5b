"""What a re-enrollment keeps (issue 12, item 8): nothing encrypted to the old identity is
handed to the new one. A wiped device enrolls again with a new identity; the InstallProfile
encrypted to its old identity (sent, never answered) is cancelled, and the profile it receives
is encrypted again, to the new identity, which alone can read it."""

from __future__ import annotations

import subprocess
from dataclasses import replace

from mdmserver.crypto.ca import dump_cert_pem, dump_key_pem
from mdmserver.protocol.commands import new_command
from mdmserver.storage.base import QueueStatus
from mdmserver.testing.http import command_of, send
from mdmserver.web.runtime import runtime
from tests.profiles.conftest import write_signer
from tests.profiles.phone import Phone


def _can_decrypt(envelope: bytes, cert, key, tmp_path, name: str) -> bool:
    cert_file, key_file = tmp_path / f"{name}.pem", tmp_path / f"{name}.key"
    cert_file.write_bytes(dump_cert_pem(cert))
    key_file.write_bytes(dump_key_pem(key))
    done = subprocess.run(
        ["openssl", "cms", "-decrypt", "-inform", "DER", "-recip", str(cert_file),
         "-inkey", str(key_file)],
        input=envelope, capture_output=True, check=False,
    )  # fmt: skip
    return done.returncode == 0 and b"com.apple.wifi.managed" in done.stdout


def test_profiles_encrypted_to_the_old_identity_are_not_handed_to_the_new_one(
    app, app_config, live_server, pki, template_values, tmp_path
):
    write_signer(app_config.home, pki)
    admin = runtime(app).profiles.admin
    admin.from_template("wifi-eap-tls", "wifi", template_values["wifi-eap-tls"])
    admin.assign("wifi", "all")
    phone = Phone(live_server, pki.device(), pki.ca_file)
    phone.enroll(app)
    storage = runtime(app).storage
    [old_install] = [
        q for q in storage.queue(phone.device.udid) if q.request_type == "InstallProfile"
    ]

    # The device is wiped before it installs the profile: it takes the EraseDevice, then the
    # InstallProfile goes out with the acknowledgement and is never answered.
    erase = new_command("EraseDevice", {"PIN": "123456"})
    storage.enqueue(erase, [phone.device.udid], priority=10)
    assert command_of(send(live_server, phone.device.idle()))["CommandUUID"] == erase.command_uuid
    reply = send(live_server, phone.device.result("Acknowledged", erase.command_uuid))
    handed = [command_of(reply)]
    while handed[-1]["CommandUUID"] != old_install.command_uuid:
        command = handed[-1]
        handed.append(command_of(send(live_server, phone.answer(command, set()))))
    old = phone.device

    cert, key = pki.identity("wiped and enrolled again")
    phone.device = replace(old, certificate=cert, key=key)
    phone.enroll(app)
    assert storage.command_targets(old_install.command_uuid)[0].status == QueueStatus.CANCELLED
    commands = phone.run()
    assert old_install.command_uuid not in {c["CommandUUID"] for c in commands}
    [install] = [c for c in commands if c["Command"]["RequestType"] == "InstallProfile"]
    profile = phone.profile_of(install)
    assert profile["IsEncrypted"] is True
    envelope = profile["EncryptedPayloadContent"]
    assert _can_decrypt(envelope, cert, key, tmp_path, "new")
    assert not _can_decrypt(envelope, old.certificate, old.key, tmp_path, "old")
