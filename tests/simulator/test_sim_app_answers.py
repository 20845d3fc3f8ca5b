"""How a simulated device handles app commands, without a server: the files it is served are
checked against the manifest, the lists carry the keys of Apple's schema, a user removal and
an arranged failure look the way a device reports them."""

from __future__ import annotations

import hashlib
import plistlib
from pathlib import Path
from typing import Any

import yaml
from click.testing import CliRunner

from mdmserver.apps.manifest import build_manifest, hash_stream
from mdmserver.cli import main
from mdmserver.simulator.apps import DeviceApps
from mdmserver.simulator.catalog import make_specs
from mdmserver.testing.app_packages import make_ipa, make_pkg

IOS, MAC = (next(s for s in make_specs(20, seed=1) if s.platform == p) for p in ("iOS", "macOS"))


def _served(bundle_id: str, data: bytes, chunk: int = 1000) -> dict[str, bytes]:
    manifest = build_manifest("https://mdm.example.test/mdm/apps/x/file",
                              hash_stream([data], chunk), bundle_id=bundle_id, version="3.0",
                              title="Example")  # fmt: skip
    return {"/mdm/apps/x/manifest": plistlib.dumps(manifest), "/mdm/apps/x/file": data}


def _fetch(files: dict[str, bytes]) -> Any:
    return lambda path: (200, files[path]) if path in files else (404, b"")


def _response_keys(spec_dir: Path, name: str) -> set[str]:
    """The keys Apple's schema lists for one entry of the answer."""
    found = yaml.safe_load((spec_dir / "mdm" / "commands" / name).read_text())["responsekeys"][0]
    while found.get("subkeys") and found["subkeys"][0]["key"].startswith(("ANY", found["key"])):
        found = found["subkeys"][0]
    return {k["key"] for k in found["subkeys"]}


def test_an_in_house_app_is_downloaded_checked_and_listed(spec_dir):
    apps = DeviceApps(IOS)
    files = _served("com.example.inhouse", make_ipa("com.example.inhouse", payload=b"\5" * 5000))
    command = {"RequestType": "InstallApplication",
               "ManifestURL": "https://mdm.example.test/mdm/apps/x/manifest",
               "ManagementFlags": 1}  # fmt: skip
    reply = apps.answer(command, _fetch(files))
    assert (reply.status, reply.keys["State"]) == ("Acknowledged", "Installing")
    apps.tick()
    managed = apps.answer({"RequestType": "ManagedApplicationList"}, _fetch({})).keys
    entry = managed["ManagedApplicationList"]["com.example.inhouse"]
    assert (entry["Status"], entry["ManagementFlags"]) == ("Managed", 1)
    assert set(entry) <= _response_keys(spec_dir, "application.managed.list.yaml")
    listed = apps.answer({"RequestType": "InstalledApplicationList", "ManagedAppsOnly": True},
                         _fetch({})).keys["InstalledApplicationList"]  # fmt: skip
    assert [a["Identifier"] for a in listed] == ["com.example.inhouse"]
    assert set(listed[0]) <= _response_keys(spec_dir, "application.installed.list.yaml")
    everything = apps.answer({"RequestType": "InstalledApplicationList"}, _fetch({})).keys
    assert len(everything["InstalledApplicationList"]) > 1  # the user's own apps too


def test_a_tampered_file_or_the_wrong_app_is_refused():
    files = _served("com.example.inhouse", make_ipa("com.example.inhouse"))
    files["/mdm/apps/x/file"] += b"tampered"
    command = {"RequestType": "InstallApplication",
               "ManifestURL": "https://mdm.example.test/mdm/apps/x/manifest"}  # fmt: skip
    apps = DeviceApps(IOS)
    reply = apps.answer(command, _fetch(files))
    assert reply.status == "Error" and "does not match" in str(reply.keys["ErrorChain"])
    other = _served("com.example.inhouse", make_ipa("com.example.other"))
    assert apps.answer(command, _fetch(other)).status == "Error"
    assert "com.example.inhouse" not in apps.installed()
    refused = apps.answer(command, _fetch({}))  # 404: nothing to download
    assert "download" in refused.keys["ErrorChain"][0]["LocalizedDescription"]


def test_a_package_is_checked_with_its_sha256_chunks():
    data = make_pkg(payload=b"\1" * 3000)
    manifest = plistlib.loads(_served("com.example.agent", data)["/mdm/apps/x/manifest"])
    asset = manifest["items"][0]["assets"][0]
    assert len(asset["sha256s"]) == 4  # several chunks
    apps = DeviceApps(MAC)
    command = {"RequestType": "InstallEnterpriseApplication", "Manifest": manifest}
    assert apps.answer(command, _fetch({"/mdm/apps/x/file": data})).status == "Acknowledged"
    assert apps.installed()["com.example.agent"].managed is False  # not InstallAsManaged
    asset["sha256s"][2] = hashlib.sha256(b"other").hexdigest()
    assert DeviceApps(MAC).answer(command, _fetch({"/mdm/apps/x/file": data})).status == "Error"


def test_user_removal_arranged_failure_and_removal():
    apps = DeviceApps(IOS)
    pages = {"RequestType": "InstallApplication", "iTunesStoreID": 361309726,
             "ManagementFlags": 1}  # fmt: skip
    apps.fail_install("com.apple.Pages", times=1)
    failed = apps.answer(pages, _fetch({}))
    assert failed.status == "Error" and failed.keys["ErrorChain"][0]["ErrorCode"] == 12064
    assert apps.answer(pages, _fetch({})).status == "Acknowledged"  # once only
    apps.remove_when_installed("com.apple.Pages")
    apps.tick()  # installed
    apps.tick()  # the user deletes it
    status = apps.answer({"RequestType": "ManagedApplicationList",
                          "Identifiers": ["com.apple.Pages"]}, _fetch({})).keys  # fmt: skip
    assert status["ManagedApplicationList"]["com.apple.Pages"]["Status"] == "ManagedButUninstalled"
    assert "com.apple.Pages" not in apps.installed()
    unknown = apps.answer({"RequestType": "InstallApplication", "iTunesStoreID": 1}, _fetch({}))
    assert unknown.status == "Error"
    removed = apps.answer({"RequestType": "RemoveApplication", "Identifier": "com.apple.Pages"},
                          _fetch({}))  # fmt: skip
    assert removed.status == "Acknowledged"
    again = apps.answer({"RequestType": "RemoveApplication", "Identifier": "com.apple.Pages"},
                        _fetch({}))  # fmt: skip
    assert again.status == "Error"


def test_simulate_refuses_a_malformed_app_store_entry():
    result = CliRunner().invoke(
        main, ["simulate", "--token", "t", "--server-url", "https://x", "--app-store", "12"]
    )
    assert result.exit_code == 2 and "ADAM_ID=BUNDLE_ID" in result.output
