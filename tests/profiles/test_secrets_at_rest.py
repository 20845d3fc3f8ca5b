"""Secret template variables (``secret = true``, e.g. the Wi-Fi identity's PKCS#12 password)
are sealed at rest and never returned by the API or the CLI, while devices still receive them
(issue 13 item 5). Real HTTP, a real signer, a device that decrypts what it is sent."""

from __future__ import annotations

import json
import plistlib
import stat

import requests
from click.testing import CliRunner
from sqlalchemy import select

from mdmserver.cli import main
from mdmserver.crypto.ca import dump_cert_pem, dump_key_pem
from mdmserver.crypto.sealed import is_sealed
from mdmserver.profiles.redact import REDACTED
from mdmserver.storage.sql.schema import profile_shown, profiles
from mdmserver.testing.http import snapshot
from mdmserver.web.runtime import runtime
from tests.api.conftest import make_key
from tests.profiles.conftest import openssl, write_signer
from tests.profiles.phone import Phone

SECRET = "p12-secret"  # the password the PKCS#12 in template_values is encrypted with


def _plaintext_anywhere(app) -> list[str]:
    """Tables holding the secret in the clear, in any column of any row."""
    state = snapshot(runtime(app).engine)
    return [
        table
        for table, rows in state.items()
        if SECRET in repr(rows)
        or SECRET.encode() in b"".join(v for row in rows for v in row if isinstance(v, bytes))
    ]


def _wifi(profile: dict) -> dict:
    return next(
        p for p in profile["PayloadContent"] if p["PayloadType"] == "com.apple.wifi.managed"
    )


def _pkcs12(profile: dict) -> dict:
    return next(
        p for p in profile["PayloadContent"] if p["PayloadType"] == "com.apple.security.pkcs12"
    )


def test_secret_variables_are_sealed_and_never_answered(
    app, app_config, live_server, pki, template_values, tmp_path
):
    write_signer(app_config.home, pki)
    key = make_key(app, "admin")
    headers = {"Authorization": f"Bearer {key}"}
    created = requests.post(
        f"{live_server}/api/v1/profiles",
        json={
            "name": "wifi",
            "template": "wifi-eap-tls",
            "variables": template_values["wifi-eap-tls"],
        },
        headers=headers,
        timeout=30,
    )
    assert created.status_code == 201, created.text
    assert SECRET not in created.text

    # At rest: the row's content is sealed, and no table holds the password in the clear.
    with runtime(app).engine.connect() as conn:
        row = conn.execute(select(profiles.c.content).where(profiles.c.name == "wifi")).one()
        shown = conn.execute(select(profile_shown.c.content)).scalar_one()
    assert is_sealed(bytes(row.content))
    assert SECRET.encode() not in bytes(row.content) and b"Corp" not in bytes(row.content)
    assert SECRET.encode() not in bytes(shown)
    assert _plaintext_anywhere(app) == []
    secrets_key = app_config.home / "secrets.key"
    assert stat.S_IMODE(secrets_key.stat().st_mode) == 0o600 and len(secrets_key.read_bytes()) == 32

    # Answers: the content is shown redacted; no route gives the secret back.
    content = requests.get(
        f"{live_server}/api/v1/profiles/wifi/content", headers=headers, timeout=30
    )
    assert content.status_code == 200
    assert SECRET.encode() not in content.content
    answered = plistlib.loads(content.content)
    assert _pkcs12(answered)["Password"] == REDACTED
    assert _wifi(answered)["SSID_STR"] == "Corp"  # the rest is as built
    for path in ("/profiles", "/profiles/wifi", "/profiles/templates", "/profiles/wifi/status"):
        reply = requests.get(f"{live_server}/api/v1{path}", headers=headers, timeout=30)
        assert reply.status_code == 200 and SECRET not in reply.text, path

    # The device still gets the real password, encrypted to its identity.
    requests.post(
        f"{live_server}/api/v1/profiles/wifi/assignments",
        json={"target": "all"},
        headers=headers,
        timeout=30,
    ).raise_for_status()
    phone = Phone(live_server, pki.device(), pki.ca_file)
    phone.enroll(app)
    install = next(c for c in phone.run() if c["Command"]["RequestType"] == "InstallProfile")
    profile = phone.profile_of(install)
    cert, device_key = tmp_path / "device.pem", tmp_path / "device.key"
    cert.write_bytes(dump_cert_pem(phone.device.certificate))
    device_key.write_bytes(dump_key_pem(phone.device.key))
    plain = openssl(
        "cms", "-decrypt", "-inform", "DER", "-recip", str(cert), "-inkey", str(device_key),
        data=profile["EncryptedPayloadContent"],
    )  # fmt: skip
    assert _pkcs12({"PayloadContent": plistlib.loads(plain)})["Password"] == SECRET
    assert _plaintext_anywhere(app) == []  # nor after sending it (queue, signature cache)


def test_unencrypted_secret_profile_keeps_no_signature_in_the_clear(
    app, app_config, live_server, pki, template_values
):
    """--no-encrypt overrides the template: the device gets it signed, and the signature (which
    holds the content) is not cached."""
    write_signer(app_config.home, pki)
    admin = runtime(app).profiles.admin
    admin.from_template("wifi-eap-tls", "wifi", template_values["wifi-eap-tls"], encrypt=False)
    admin.assign("wifi", "all")
    phone = Phone(live_server, pki.device(), pki.ca_file)
    phone.enroll(app)
    phone.run()
    assert _pkcs12(phone.installed["com.mdmserver.profile.wifi"])["Password"] == SECRET
    state = snapshot(runtime(app).engine)
    assert state["profile_signatures"] == []
    assert "profiles" not in _plaintext_anywhere(app)


def test_cli_shows_secret_variables_redacted(app, app_config, pki, template_values):
    write_signer(app_config.home, pki)
    env = {"MDM_HOME": str(app_config.home), "MDM_DATABASE_URL": app_config.database_url}
    values = template_values["wifi-eap-tls"]
    args = ["profiles", "create", "wifi", "--template", "wifi-eap-tls"]
    for name, value in values.items():
        for item in value if isinstance(value, list) else [value]:
            args += ["-v", f"{name}={item}"]
    runner = CliRunner()
    created = runner.invoke(main, args, env=env, catch_exceptions=False)
    assert created.exit_code == 0, created.output
    assert SECRET not in created.output
    shown = runner.invoke(main, ["profiles", "show", "wifi", "--content"], env=env)
    assert shown.exit_code == 0, shown.output
    assert SECRET not in shown.output and REDACTED in shown.output
    assert _pkcs12(plistlib.loads(shown.output.encode()))["Password"] == REDACTED
    described = runner.invoke(main, ["profiles", "show", "wifi", "--json"], env=env)
    assert SECRET not in described.output and json.loads(described.output)["name"] == "wifi"
    assert _plaintext_anywhere(app) == []
