"""A misspelled command key ("Mesage" in DeviceLock) is refused, by the API (422) and the CLI,
with nothing queued; sending it anyway takes an explicit flag."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from mdmserver.cli import main
from mdmserver.web.runtime import runtime
from tests.api.conftest import state


@pytest.fixture
def cli(app, app_config):
    env = {"MDM_HOME": str(app_config.home), "MDM_DATABASE_URL": app_config.database_url}

    def run(*args: str):
        return CliRunner().invoke(main, list(args), env=env)

    return run


def test_api_refuses_an_unknown_key_unless_allowed(app, api):
    phone = api.enroll("iOS")
    body = {"targets": [phone], "command": {"RequestType": "DeviceLock", "Mesage": "Hello"}}
    before = state(app)
    refused = api.post("/api/v1/commands", body)
    assert refused.status_code == 422, refused.get_json()
    text = json.dumps(refused.get_json())
    assert "Mesage" in text and "did you mean 'Message'" in text and "allow_unknown_keys" in text
    assert state(app) == before and runtime(app).storage.queue(phone) == []
    wrong = api.post("/api/v1/commands", {**body, "allow_unknown_keys": "yes"})
    assert wrong.status_code == 400 and "allow_unknown_keys" in wrong.get_json()["error"]
    sent = api.post("/api/v1/commands", {**body, "allow_unknown_keys": True})
    assert sent.status_code == 201, sent.get_json()
    assert any("Mesage" in w["path"] for w in sent.get_json()["warnings"])
    [item] = runtime(app).storage.queue(phone)
    assert item.request_type == "DeviceLock"


def test_cli_refuses_an_unknown_key_unless_allowed(app, api, cli):
    phone = api.enroll("iOS")
    args = ("command", "send", "DeviceLock", "--target", phone, "--set", "Mesage=Hello")
    refused = cli(*args)
    assert refused.exit_code == 1, refused.output
    assert "Mesage" in refused.output and "--allow-unknown-keys" in refused.output
    assert runtime(app).storage.queue(phone) == []
    sent = cli(*args, "--allow-unknown-keys")
    assert sent.exit_code == 0, sent.output
    assert "queued DeviceLock to 1 device(s)" in sent.output
    assert "warning: command.Mesage" in sent.output
