"""The admin API as an operator's script uses it (Bearer API key over HTTPS): queue a command,
wake its targets, read how each answered. The demo and the benchmark go through it so that they
exercise the same path as a real console."""

from __future__ import annotations

from typing import Any

import requests


class AdminAPIError(RuntimeError):
    pass


class AdminClient:
    def __init__(self, base_url: str, api_key: str, *, verify: str | bool = True) -> None:
        self.base_url = base_url.rstrip("/") + "/api/v1"
        self.session = requests.Session()
        self.verify = verify  # per request: REQUESTS_CA_BUNDLE would override the session's
        self.session.headers["Authorization"] = f"Bearer {api_key}"

    def _call(self, method: str, path: str, expect: int, **kw: Any) -> Any:
        reply = self.session.request(
            method, self.base_url + path, timeout=120, verify=self.verify, **kw
        )
        if reply.status_code != expect:
            raise AdminAPIError(f"{method} {path}: {reply.status_code} {reply.text[:300]}")
        return reply.json()

    def send_command(
        self,
        command: dict[str, Any],
        *,
        targets: list[str] | None = None,
        filter: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """POST /commands: returns {"command_uuid", "targets": {device: enrollment}, ...}."""
        body: dict[str, Any] = {"command": command}
        body.update({"targets": targets} if targets is not None else {"filter": filter or {}})
        return self._call("POST", "/commands", 201, json=body)

    def push(self, device_id: str) -> list[str]:
        """POST /devices/<id>/push: wake the device now; returns the enrollments pushed."""
        return list(self._call("POST", f"/devices/{device_id}/push", 202)["enrollments"])

    def command_status(self, command_uuid: str) -> dict[str, Any]:
        """GET /commands/<uuid>: {"counts": {status: n}, "targets": [...]}."""
        return dict(self._call("GET", f"/commands/{command_uuid}", 200))

    def devices(self, limit: int = 500) -> list[dict[str, Any]]:
        """GET /devices: the first page of devices, as the API shows them."""
        return list(self._call("GET", "/devices", 200, params={"limit": limit})["devices"])

    def enforce_os_update(self, version: str, by: str, tag: str | None = None) -> dict[str, Any]:
        """POST /os-updates: the DDM enforcement declaration, assigned, and its rule."""
        body = {"version": version, "by": by, **({"tag": tag} if tag else {})}
        return dict(self._call("POST", "/os-updates", 201, json=body))

    def os_update_progress(self, target: str = "all") -> dict[str, Any]:
        return dict(self._call("GET", "/os-updates", 200, params={"target": target}))

    def status_items(self, device_id: str) -> dict[str, Any]:
        """The device channel's latest status items, by name."""
        reply = self._call("GET", f"/devices/{device_id}/status-items", 200)
        return {i["item"]: i["value"] for i in reply["status_items"]}

    # Apps (issue #17) ------------------------------------------------------------------------

    def create_app(self, **fields: Any) -> dict[str, Any]:
        """POST /apps: an App Store app (name, kind, bundle_id, adam_id) or one by URL."""
        return dict(self._call("POST", "/apps", 201, json=fields))

    def upload_app(self, data: bytes, **params: str) -> dict[str, Any]:
        """POST /apps/upload: an .ipa (kind=ios_inhouse) or .pkg (kind=macos_pkg)."""
        return dict(self._call("POST", "/apps/upload", 201, params=params, data=data))

    def assign_app(self, app: str, target: str = "all", behaviour: str = "required") -> None:
        self._call("POST", f"/apps/{app}/assignments", 200,
                   json={"target": target, "behaviour": behaviour})  # fmt: skip

    def unassign_app(self, app: str, target: str = "all") -> None:
        self._call("DELETE", f"/apps/{app}/assignments/{target}", 200)

    def app_states(self, app: str) -> dict[str, dict[str, Any]]:
        """GET /apps/<app>/devices: each device's state of the app, by device id."""
        rows = self._call("GET", f"/apps/{app}/devices", 200)["devices"]
        return {row["device_id"]: row for row in rows}

    def vpp_token(self, token: str) -> dict[str, Any]:
        return dict(self._call("PUT", "/apps/vpp/token", 200, json={"token": token}))

    def assign_licenses(self, app: str, serials: list[str]) -> dict[str, Any]:
        """POST /apps/<app>/licenses: the event, followed until Apple finishes it."""
        reply = self.session.post(
            f"{self.base_url}/apps/{app}/licenses", json={"serials": serials},
            timeout=120, verify=self.verify,
        )  # fmt: skip
        if reply.status_code not in (200, 202):
            raise AdminAPIError(f"POST /apps/{app}/licenses: {reply.status_code} {reply.text}")
        return dict(reply.json())

    def close(self) -> None:
        self.session.close()
