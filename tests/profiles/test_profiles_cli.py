"""``mdmserver profiles``: tables for people and ``--json`` for scripts, like the other
admin commands."""

from __future__ import annotations

import json

from click.testing import CliRunner

from mdmserver.cli import main
from tests.profiles.conftest import PASSCODE, mobileconfig, write_signer


def test_profiles_commands_print_tables_and_json(app, app_config, pki, tmp_path):
    write_signer(app_config.home, pki)
    env = {"MDM_HOME": str(app_config.home), "MDM_DATABASE_URL": app_config.database_url}

    def cli(*args: str):
        result = CliRunner().invoke(main, list(args), env=env)
        assert result.exit_code == 0, result.output
        return result.stdout

    upload = tmp_path / "custom.mobileconfig"
    upload.write_bytes(mobileconfig({"PayloadType": PASSCODE, "minLength": 8}))
    created = cli("profiles", "upload", "office", str(upload))
    assert "name:" in created and "office" in created and not created.lstrip().startswith("{")
    assert cli("profiles", "assign", "office", "all").strip() == "assigned"

    listed = cli("profiles", "list").splitlines()
    assert listed[0].split() == [
        "NAME",
        "IDENTIFIER",
        "REVISION",
        "SOURCE",
        "PAYLOADS",
        "ASSIGNED",
        "UPDATED",
    ]
    assert listed[1].split()[:2] == ["office", "com.example.custom"] and "all" in listed[1]
    [entry] = json.loads(cli("profiles", "list", "--json"))
    assert entry["name"] == "office" and entry["assignments"] == ["all"]
    assert entry["payload_types"] == [PASSCODE]

    shown = cli("profiles", "show", "office")
    assert "identifier:" in shown and "com.example.custom" in shown
    assert json.loads(cli("profiles", "show", "office", "--json"))["id"] == entry["id"]

    status = cli("profiles", "status", "office").splitlines()
    assert status[0].split()[:3] == ["ENROLLMENT", "IDENTIFIER", "STATUS"]
    assert json.loads(cli("profiles", "status", "office", "--json")) == []
    templates = json.loads(cli("profiles", "templates", "--json"))
    assert {"passcode", "webclip"} <= {t["name"] for t in templates}
