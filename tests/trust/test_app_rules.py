"""Apps in compliance over real HTTP, on SQLite and PostgreSQL: a required app (at a minimum
version) and a forbidden app, judged on the app lists the device sends, with reasons in the
trust answer; remediation reinstalls the required app through the apps reconciler and removes
a forbidden app MDM manages (one the user installed is only reported: MDM cannot remove it)."""

from __future__ import annotations

from typing import Any

from mdmserver.protocol.commands import new_command
from mdmserver.web.runtime import runtime
from tests.trust.conftest import CLEAN, POLICY, Client, drive, enroll

VPN = "com.example.vpn"
GAME = "com.example.game"


def _answers(installed: list[dict[str, Any]], managed: dict[str, str]) -> dict[str, Any]:
    return {
        **CLEAN,
        "InstalledApplicationList": {"InstalledApplicationList": installed},
        "ManagedApplicationList": {
            "ManagedApplicationList": {b: {"Status": s} for b, s in managed.items()}
        },
    }


def _ask_lists(app: Any, udid: str) -> None:
    for request_type in ("InstalledApplicationList", "ManagedApplicationList"):
        runtime(app).storage.enqueue(new_command(request_type), [udid])


def _trust(trust: Client, udid: str) -> dict[str, Any]:
    return trust.get(f"/api/v1/trust/devices/{udid}").json()


def _remediations(app: Any, udid: str) -> list[tuple[str, str, str]]:
    rows = runtime(app).inventory.compliance_store.remediations(udid)
    return sorted((r["kind"], r["detail"], r["status"]) for r in rows)


def _policy(admin: Client, **extra: Any) -> None:
    reply = admin.put("/api/v1/compliance/policy", {**POLICY, **extra})
    assert reply.status_code == 200, reply.text


def test_a_required_app_missing_then_reinstalled(app, live_server, pki, trust, admin):
    _policy(admin, required_apps=[{"bundle_id": VPN, "min_version": "3.0"}])
    vpn = requests_post(admin, "/api/v1/apps", {
        "name": "vpn", "kind": "ios_inhouse", "bundle_id": VPN,
        "manifest_url": "https://apps.example.com/vpn.plist",
    })["id"]  # fmt: skip
    device = pki.device(os_version="17.1")
    seen = enroll(live_server, device, _answers([{"Identifier": "com.apple.Pages"}], {}))
    body = _trust(trust, device.udid)
    assert body["compliant"] is False
    assert f"required app {VPN} is not installed" in body["reasons"]
    # Not in the catalog for this device yet: remediation can only ask an admin.
    assert "InstallApplication" not in seen
    assert _remediations(app, device.udid) == [("install_app", VPN, "requested")]

    # Assigned and installed, but too old.
    requests_post(admin, f"/api/v1/apps/{vpn}/assignments", {"target": "all"})
    _ask_lists(app, device.udid)
    old = [{"Identifier": VPN, "ShortVersion": "2.9"}]
    drive(live_server, device, _answers(old, {VPN: "Managed"}))
    body = _trust(trust, device.udid)
    assert body["compliant"] is False
    assert f"required app {VPN} 2.9 is older than 3.0" in body["reasons"]

    # Current version: compliant, and the open remediation is resolved.
    _ask_lists(app, device.udid)
    drive(live_server, device, _answers([{"Identifier": VPN, "ShortVersion": "3.1"}], {}))
    assert _trust(trust, device.udid) == {**_trust(trust, device.udid), "compliant": True,
                                          "reasons": []}  # fmt: skip

    # The user removes it: non-compliant, and remediation has the reconciler install it.
    _ask_lists(app, device.udid)
    answered = drive(live_server, device, _answers([], {VPN: "ManagedButUninstalled"}))
    body = _trust(trust, device.udid)
    assert body["compliant"] is False and f"required app {VPN} is not installed" in body["reasons"]
    pending = [q.request_type for q in runtime(app).storage.queue(device.udid)]
    assert "InstallApplication" in answered + pending
    assert ("install_app", VPN, "queued") in _remediations(app, device.udid)
    # Reinstalled: compliant again.
    _ask_lists(app, device.udid)
    drive(live_server, device, _answers([{"Identifier": VPN, "ShortVersion": "3.1"}],
                                        {VPN: "Managed"}))  # fmt: skip
    body = _trust(trust, device.udid)
    assert body["compliant"] is True and body["reasons"] == []


def test_a_forbidden_app_installed_then_removed(app, live_server, pki, trust, admin):
    _policy(admin, forbidden_apps=[GAME])
    device = pki.device(os_version="17.1")
    # Installed by the user (not managed): non-compliant, and MDM says it cannot remove it.
    user_installed = [{"Identifier": "com.apple.Pages"}, {"Identifier": GAME, "Name": "Game"}]
    enroll(live_server, device, _answers(user_installed, {}))
    body = _trust(trust, device.udid)
    assert body["compliant"] is False
    assert (
        f"forbidden apps installed: {GAME} [not managed: MDM cannot remove it, the user must]"
        in body["reasons"]
    )
    assert _remediations(app, device.udid) == [("remove_unmanaged_app", GAME, "requested")]
    assert "RemoveApplication" not in [q.request_type for q in runtime(app).storage.queue(
        device.udid)]  # fmt: skip

    # The user removes it: compliant again (the request is resolved).
    _ask_lists(app, device.udid)
    drive(live_server, device, _answers([{"Identifier": "com.apple.Pages"}], {}))
    assert _trust(trust, device.udid)["compliant"] is True
    assert [s for _, _, s in _remediations(app, device.udid)] == ["resolved"]

    # Managed by MDM this time: remediation sends RemoveApplication, and once the device has
    # removed it, it is compliant.
    _ask_lists(app, device.udid)
    seen = drive(live_server, device, _answers(user_installed, {GAME: "Managed"}))
    assert "RemoveApplication" in seen
    assert ("remove_app", GAME, "queued") in _remediations(app, device.udid)
    # An app MDM manages is one it can remove: the user is not asked.
    _ask_lists(app, device.udid)
    drive(live_server, device, _answers([{"Identifier": "com.apple.Pages"}], {}))
    body = _trust(trust, device.udid)
    assert body["compliant"] is True and body["reasons"] == []


def test_required_apps_policy_is_validated(admin):
    for bad in (
        {"required_apps": "com.example.vpn"},
        {"required_apps": [{"bundle_id": VPN, "min_version": "latest"}]},
        {"required_apps": [{"bundle": VPN}]},
    ):
        reply = admin.put("/api/v1/compliance/policy", {**POLICY, **bad})
        assert reply.status_code == 422, reply.text  # as every policy refusal
        assert "required_apps" in reply.json()["error"]
    ok = admin.put(
        "/api/v1/compliance/policy",
        {**POLICY, "required_apps": [VPN, {"bundle_id": "com.example.mail", "min_version": "2"}]},
    )
    assert ok.json()["policy"]["required_apps"] == [
        VPN,
        {"bundle_id": "com.example.mail", "min_version": "2"},
    ]


def requests_post(admin: Client, path: str, body: Any) -> dict[str, Any]:
    import requests

    reply = requests.post(
        admin.base_url + path,
        json=body,
        headers={"Authorization": f"Bearer {admin.key}"},
        timeout=10,
    )
    assert reply.status_code in (200, 201), reply.text
    found: dict[str, Any] = reply.json()
    return found
