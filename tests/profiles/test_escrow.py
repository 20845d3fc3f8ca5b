"""FileVault recovery keys reported in SecurityInfo are stored as received, and decrypt with
the escrow key (the CLI's escrow-cert makes one)."""

from __future__ import annotations

from click.testing import CliRunner

from mdmserver.cli.profiles import make_escrow_cert, profiles
from mdmserver.protocol.commands import new_command
from mdmserver.testing.http import command_of, send
from mdmserver.web.runtime import runtime
from tests.profiles.conftest import openssl


def test_escrowed_key_is_stored_and_decrypts(app, app_config, live_server, pki):
    escrow_pem, _ = make_escrow_cert(app_config.home)
    cms = openssl(
        "cms", "-encrypt", "-binary", "-outform", "DER", "-aes256", str(escrow_pem),
        data=b"ABCD-EFGH-IJKL-MNOP-QRST-UVWX",
    )  # fmt: skip
    device = pki.device(serial_number="C02MAC000001")
    send(live_server, device.authenticate())
    send(live_server, device.token_update())
    command = new_command("SecurityInfo")
    runtime(app).storage.enqueue(command, [device.udid], priority=100)  # before others'
    command_of(send(live_server, device.idle()))
    info = {"FDE_PersonalRecoveryKeyCMS": cms, "FDE_PersonalRecoveryKeyDeviceKey": "C02MAC000001"}
    send(live_server, device.result("Acknowledged", command.command_uuid, SecurityInfo=info))
    ((device_id, key, envelope, _),) = runtime(app).profiles.store.escrowed("C02MAC000001")
    assert (device_id, key, envelope) == (device.udid, "C02MAC000001", cms)
    env = {"MDM_HOME": str(app_config.home), "MDM_DATABASE_URL": app_config.database_url}
    shown = CliRunner().invoke(profiles, ["escrowed-key", "C02MAC000001"], env=env)
    assert shown.exit_code == 0, shown.output
    assert shown.output.splitlines()[-1] == "ABCD-EFGH-IJKL-MNOP-QRST-UVWX"
