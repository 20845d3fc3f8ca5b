"""The app catalog through the admin API and the CLI, on SQLite and PostgreSQL: App Store
apps, uploaded .ipa and .pkg files with their chunk-hashed manifests, apps referenced by URL,
assignments; and every bad input answered 4xx with nothing stored."""

from __future__ import annotations

import hashlib
import json

import pytest
from click.testing import CliRunner

from mdmserver.apps.manifest import ChunkHashes, hash_stream
from mdmserver.cli import main
from mdmserver.testing.app_packages import make_ipa, make_pkg
from mdmserver.web.runtime import runtime
from tests.api.conftest import last_audit, state
from tests.apps.conftest import ADAM_ID

APPS = "/api/v1/apps"
STORE_APP = {
    "name": "pages",
    "kind": "app_store",
    "bundle_id": "com.apple.Pages",
    "adam_id": ADAM_ID,
}


def _upload(api, data: bytes, **params: str):
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return api.client.post(
        f"{APPS}/upload?{query}", data=data, headers=api.headers(),
        content_type="application/octet-stream",
    )  # fmt: skip


def _files(app) -> list[str]:
    root = runtime(app).config.home / "apps"
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")) if root.exists() else []


def test_an_app_store_app_is_listed_and_audited(app, api):
    reply = api.post(APPS, STORE_APP)
    assert reply.status_code == 201, reply.get_json()
    created = reply.get_json()
    assert (created["kind"], created["adam_id"], created["manifest"]) == (
        "app_store",
        ADAM_ID,
        None,
    )
    entry = last_audit(app)
    assert (entry.action, entry.outcome) == ("app.create", "ok")
    assert [a["name"] for a in api.get(APPS).get_json()["apps"]] == ["pages"]
    assert api.get(f"{APPS}/pages").get_json()["id"] == created["id"]  # by name or id
    assert api.post(APPS, STORE_APP).status_code == 409


def test_an_ipa_is_stored_with_its_manifest(app, api):
    data = make_ipa("com.example.field", "2.1", payload=bytes(range(256)) * 64)
    reply = _upload(api, data, kind="ios_inhouse", name="field")
    assert reply.status_code == 201, reply.get_json()
    created = reply.get_json()
    assert (created["bundle_id"], created["version"]) == ("com.example.field", "2.1")
    assert created["file"]["sha256"] == hashlib.sha256(data).hexdigest()
    [item] = created["manifest"]["items"]
    [asset] = item["assets"]
    assert asset["url"] == f"https://mdm.example.com/mdm/apps/{created['id']}/file"
    assert asset["sha256s"] == [hashlib.sha256(data).hexdigest()]  # one chunk: the whole file
    assert asset["md5s"] == [hashlib.md5(data).hexdigest()]
    assert item["metadata"]["bundle-identifier"] == "com.example.field"
    assert _files(app) == [created["id"], f"{created['id']}/field.ipa"]


def test_a_signed_distribution_pkg_served_from_a_cdn(api):
    data = make_pkg()
    reply = _upload(
        api, data, kind="macos_pkg", name="agent", bundle_id="com.example.agent",
        version="3.0", download_url="https://cdn.example.com/agent.pkg",
    )  # fmt: skip
    assert reply.status_code == 201, reply.get_json()
    asset = reply.get_json()["manifest"]["items"][0]["assets"][0]
    assert asset["url"] == "https://cdn.example.com/agent.pkg"
    assert asset["sha256-size"] == asset["md5-size"] == 10 * 1024 * 1024


def test_chunk_hashes_split_at_the_chunk_size():
    data = bytes(range(256)) * 40  # 10240 bytes: chunks of 4096, 4096, 2048
    hashes = hash_stream([data[:1000], data[1000:]], chunk_size=4096)
    pieces = [data[0:4096], data[4096:8192], data[8192:]]
    assert hashes.sha256s == [hashlib.sha256(p).hexdigest() for p in pieces]
    assert hashes.md5s == [hashlib.md5(p).hexdigest() for p in pieces]
    assert (hashes.size, hashes.whole.hexdigest()) == (10240, hashlib.sha256(data).hexdigest())
    assert ChunkHashes(16).finish().sha256s == [hashlib.sha256(b"").hexdigest()]


def test_an_app_referenced_by_url_stores_no_file(app, api):
    body = {"name": "tool", "kind": "macos_pkg", "bundle_id": "com.example.tool",
            "manifest_url": "https://cdn.example.com/tool.plist"}  # fmt: skip
    reply = api.post(APPS, body)
    assert reply.status_code == 201 and reply.get_json()["file"] is None
    assert _files(app) == []


def test_assign_unassign_and_delete(app, api):
    app_id = api.post(APPS, STORE_APP).get_json()["id"]
    assigned = api.post(
        f"{APPS}/{app_id}/assignments", {"target": "tag:sales", "behaviour": "available"}
    )
    assert assigned.get_json()["assignments"] == [
        {"target": "tag:sales", "behaviour": "available", "management_flags": 1,
         "configuration": None}
    ]  # fmt: skip
    refused = api.delete(f"{APPS}/{app_id}")
    assert refused.status_code == 409 and "unassign it first" in refused.get_json()["error"]
    assert api.delete(f"{APPS}/{app_id}/assignments/tag:sales").status_code == 200
    assert api.delete(f"{APPS}/{app_id}/assignments/tag:sales").status_code == 404
    ipa = _upload(api, make_ipa("com.example.gone"), kind="ios_inhouse", name="gone").get_json()
    assert api.delete(f"{APPS}/{ipa['id']}").status_code == 200
    assert _files(app) == [] and api.get(f"{APPS}/gone").status_code == 404


BAD_CREATE = [
    ({"kind": "app_store", "bundle_id": "com.a.b", "adam_id": "1"}, 400, "name"),
    ({**STORE_APP, "kind": "windows"}, 400, "kind"),
    ({**STORE_APP, "bundle_id": "no dots"}, 400, "bundle_id"),
    ({**STORE_APP, "adam_id": "12ab"}, 400, "adam_id"),
    ({**STORE_APP, "adam_id": None}, 400, "adam_id"),
    ({**STORE_APP, "colour": "red"}, 400, "unknown fields"),
    ({**STORE_APP, "name": "vpp"}, 400, "reserved"),
    ({**STORE_APP, "name": "../etc"}, 400, "name"),
    ({**STORE_APP, "manifest_url": "https://x.example.com/m"}, 400, "manifest_url"),
    ({"name": "t", "kind": "macos_pkg", "bundle_id": "com.a.b"}, 400, "manifest_url"),
    (
        {
            "name": "t",
            "kind": "macos_pkg",
            "bundle_id": "com.a.b",
            "manifest_url": "http://x.example.com/m",
        },
        400,
        "https",
    ),
    (["a list"], 400, "JSON object"),
]
BAD_UPLOADS = [
    (b"", {"kind": "ios_inhouse", "name": "x"}, 400, "empty"),
    (b"not a zip", {"kind": "ios_inhouse", "name": "x"}, 422, "zip"),
    (make_ipa("com.a.b"), {"kind": "app_store", "name": "x"}, 400, "uploaded"),
    (
        make_ipa("com.a.b"),
        {"kind": "ios_inhouse", "name": "x", "bundle_id": "com.c.d"},
        422,
        "says",
    ),
    (make_ipa("com.a.b"), {"kind": "ios_inhouse", "name": "x", "colour": "y"}, 400, "unknown"),
    (
        make_pkg(signed=False),
        {"kind": "macos_pkg", "name": "x", "bundle_id": "com.a.b"},
        422,
        "not signed",
    ),
    (
        make_pkg(distribution=False),
        {"kind": "macos_pkg", "name": "x", "bundle_id": "com.a.b"},
        422,
        "distribution",
    ),
    (b"xar!" + b"\0" * 40, {"kind": "macos_pkg", "name": "x", "bundle_id": "com.a.b"}, 422, "xar"),
    (make_pkg(), {"kind": "macos_pkg", "name": "x"}, 400, "bundle_id"),
    (
        make_pkg(),
        {"kind": "macos_pkg", "name": "x", "bundle_id": "com.a.b", "download_url": "ftp://cdn/x"},
        400,
        "download_url",
    ),
]


def test_bad_input_is_refused_and_nothing_is_stored(app, api):
    assert api.post(APPS, STORE_APP).status_code == 201
    before = state(app)
    wrong = []
    for body, status, words in BAD_CREATE:
        reply = api.post(APPS, body)
        if reply.status_code != status or words not in reply.get_json()["error"]:
            wrong.append((body, reply.status_code, reply.get_json()))
    for data, params, status, words in BAD_UPLOADS:
        reply = _upload(api, data, **params)
        if reply.status_code != status or words not in reply.get_json()["error"]:
            wrong.append((params, reply.status_code, reply.get_json()))
    taken = _upload(api, make_ipa("com.a.b"), kind="ios_inhouse", name="pages")
    if taken.status_code != 409:
        wrong.append(("taken", taken.status_code))
    assert wrong == []
    assert state(app) == before and _files(app) == []


@pytest.fixture
def cli(app, app_config):
    env = {
        "MDM_HOME": str(app_config.home),
        "MDM_DATABASE_URL": app_config.database_url,
        "MDM_VPP_URL": app_config.vpp_url,
        "MDM_SERVER_URL": app_config.server_url,
    }

    def run(*args: str):
        return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)

    return run


def test_the_cli_manages_the_catalog_and_licenses(app, cli, tmp_path, stoken, fake_vpp):
    added = cli("apps", "add", "--name", "pages", "--kind", "app_store",
                "--bundle-id", "com.apple.Pages", "--adam-id", ADAM_ID)  # fmt: skip
    assert added.exit_code == 0, added.output
    package = tmp_path / "agent.pkg"
    package.write_bytes(make_pkg())
    uploaded = cli("apps", "upload", str(package), "--name", "agent", "--kind", "macos_pkg",
                   "--bundle-id", "com.example.agent", "--json")  # fmt: skip
    assert uploaded.exit_code == 0, uploaded.output
    assert json.loads(uploaded.output)["file"]["size"] == len(make_pkg())
    assert cli("apps", "assign", "agent", "--tag", "mac").exit_code == 0
    listed = cli("apps", "list")
    assert "agent" in listed.output and "tag:mac=required" in listed.output
    bad = cli("apps", "add", "--name", "x", "--kind", "app_store", "--bundle-id", "bad")
    assert bad.exit_code != 0 and "bundle_id" in bad.output

    token_file = tmp_path / "org.vpptoken"
    token_file.write_text(stoken)
    shown = cli("apps", "vpp-token", str(token_file))
    assert shown.exit_code == 0 and "Example Org" in shown.output and "days left" in shown.output
    assert stoken not in shown.output
    license_run = cli("apps", "license", "pages", "C02AAA")
    assert license_run.exit_code == 0, license_run.output
    assert "COMPLETE" in license_run.output and "PENDING" in license_run.output  # progress shown
    assert "C02AAA" in cli("apps", "licenses", "pages").output
    assert fake_vpp.assets[ADAM_ID].assigned == {"C02AAA"}
    entries = runtime(app).admin.store.audit_entries(limit=4)
    assert [(e.action, e.outcome.split(":")[0]) for e in entries] == [
        ("app.licenses.assign", "ok"),
        ("vpp.token", "ok"),
        ("app.create", "refused 400"),  # the bad bundle id
        ("app.assign", "ok"),
    ]


def test_the_cli_warns_of_a_token_near_expiry(cli, tmp_path, fake_vpp):
    from mdmserver.testing.fake_vpp import make_token

    soon = make_token(days=5)
    fake_vpp.token = soon
    token_file = tmp_path / "soon.vpptoken"
    token_file.write_text(soon)
    shown = cli("apps", "vpp-token", str(token_file))
    assert shown.exit_code == 0 and "warning: the content token expires in" in shown.output
