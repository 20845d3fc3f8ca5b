"""What people do in the console: actions on one device, bulk commands, enrollment tokens.

Each action is one call to the same admin service the API uses, with the person's name as
the actor, so it is validated against Apple's schema and the device's platform and
supervision, audited, and pushed exactly like an API call. The role is checked here, on the
server, before anything runs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import abort, current_app, redirect, render_template, request, url_for

from mdmserver.admin.devices import parse_filter
from mdmserver.admin.errors import AdminError, BadRequest, NotFound, Unprocessable
from mdmserver.commands.base import CommandRefused
from mdmserver.compliance.policy import PolicyError, policy_from
from mdmserver.compliance.service import preview_policy
from mdmserver.enrollment.links import enrollment_url, qr_svg
from mdmserver.web.console.auth import actor, admin, require
from mdmserver.web.console.blueprint import bp
from mdmserver.web.console.pages import render_device
from mdmserver.web.runtime import runtime
from mdmserver.web.trust import inventory_runtime

TEXT_MAX = 512
POLICY_MAX = 64 * 1024


@dataclass(frozen=True)
class DeviceAction:
    """One button on the device page: who may press it and the command it sends."""

    permission: str
    label: str
    request_type: str | None  # None: not a command (refresh inventory, push now)


DEVICE_ACTIONS: dict[str, DeviceAction] = {
    "lock": DeviceAction("device.lock", "Lock", "DeviceLock"),
    "lost_mode": DeviceAction("device.lost_mode", "Enable lost mode", "EnableLostMode"),
    "disable_lost_mode": DeviceAction("device.lost_mode", "Disable lost mode", "DisableLostMode"),
    "clear_passcode": DeviceAction("device.clear_passcode", "Clear passcode", "ClearPasscode"),
    "restart": DeviceAction("device.restart", "Restart", "RestartDevice"),
    "refresh": DeviceAction("device.refresh", "Refresh inventory", None),
    "push": DeviceAction("device.push", "Push now", None),
    "erase": DeviceAction("device.wipe", "Erase", "EraseDevice"),
}


def _text(name: str) -> str | None:
    value = request.form.get(name, "").strip()
    if len(value) > TEXT_MAX or any(ord(c) < 32 for c in value):
        raise BadRequest(f"{name}: at most {TEXT_MAX} printable characters")
    return value or None


def _payload(action: str, device_name: str | None) -> dict[str, Any]:
    """The command for an action, from the form's fields (only those the form offers)."""
    spec = DEVICE_ACTIONS[action]
    command: dict[str, Any] = {"RequestType": spec.request_type}
    if action == "lock":
        for field, key in (("message", "Message"), ("phone", "PhoneNumber"), ("pin", "PIN")):
            if (value := _text(field)) is not None:
                command[key] = value
    elif action == "lost_mode":
        for field, key in (("message", "Message"), ("phone", "PhoneNumber")):
            if (value := _text(field)) is not None:
                command[key] = value
    elif action == "erase":
        typed = request.form.get("confirm_name", "")
        if not device_name or typed != device_name:
            raise BadRequest(
                "type the device's name exactly to confirm the erase; nothing was sent"
            )
        if (pin := _text("pin")) is not None:
            command["PIN"] = pin
    return command


@bp.post("/devices/<ident>/actions/<action>")
def device_action(ident: str, action: str) -> Any:
    spec = DEVICE_ACTIONS.get(action)
    if spec is None:
        abort(404, f"no device action {action!r}")
    return require(spec.permission)(_run_action)(ident, action)


def _run_action(ident: str, action: str) -> Any:
    spec = DEVICE_ACTIONS[action]
    service = admin()
    try:
        device = service.devices.show(ident).device
        if spec.request_type is not None:
            result = service.commands.send(
                {"targets": [device.id], "command": _payload(action, device.device_name)},
                actor=actor(),
            )
            notice = f"{spec.request_type} queued ({result.command_uuid}); the device was pushed"
        elif action == "refresh":
            with service.audit.record(actor(), "device.refresh_inventory", [device.id]):
                queued = inventory_runtime().inventory.refresh(device.id, datetime.now(UTC))
            notice = (
                "inventory requested"
                if queued
                else "inventory was already requested within the last hour"
            )
        else:
            pusher = runtime(current_app).pusher
            assert pusher is not None
            with service.audit.record(actor(), "device.push", [device.id]):
                channels = pusher.push_device(device.id)
                if not channels:
                    raise NotFound(f"device {device.id!r} has no active enrollment to push to")
            notice = f"push requested for {len(channels)} channel(s)"
    except (AdminError, CommandRefused) as exc:
        return render_device(ident, error=str(exc)), exc.status
    return render_device(device.id, notice=notice)


# Bulk commands ---------------------------------------------------------------------------------

BULK_COMMANDS = (
    "DeviceInformation",
    "SecurityInfo",
    "ProfileList",
    "InstalledApplicationList",
    "RestartDevice",
    "DeviceLock",
    "ShutDownDevice",
)
# What a bulk command carries besides its RequestType (DeviceInformation asks for the basics
# every platform answers; the scheduled inventory asks for everything).
BULK_PAYLOADS: dict[str, dict[str, Any]] = {
    "DeviceInformation": {
        "Queries": ["DeviceName", "OSVersion", "BuildVersion", "ModelName", "SerialNumber"]
    },
}
MAX_SELECTION = 10_000
BULK_FILTERS = ("platform", "os_version", "min_os_version", "tag", "compliance", "supervised")


@bp.get("/commands")
@require("command.send")
def commands_form() -> str:
    selection = "\n".join(request.args.getlist("target"))
    return render_template(
        "commands.html", commands=BULK_COMMANDS, preview=None, chosen={}, selection=selection
    )


@bp.post("/commands")
@require("command.send")
def commands_send() -> Any:
    """Two steps: a preview that says how many devices the command reaches, then the send,
    which only goes ahead when the count confirmed is still the count (the fleet may move)."""
    request_type = request.form.get("request_type", "")
    if request_type not in BULK_COMMANDS:
        abort(400, f"request_type: one of {', '.join(BULK_COMMANDS)}")
    chosen = {k: request.form[k] for k in BULK_FILTERS if request.form.get(k)}
    selection = request.form.get("targets", "").split()
    service = admin()
    try:
        if len(selection) > MAX_SELECTION:
            raise BadRequest(f"targets: at most {MAX_SELECTION} devices; use a filter")
        if selection:
            found, missing = service.commands.inventory.resolve(selection)
            if missing:
                raise NotFound(f"unknown device(s): {', '.join(missing[:5])}")
            targets = list({row.device_id: row for row in found.values()}.values())
        else:
            targets = list(service.commands.inventory.matching_targets(parse_filter(chosen)))
        reach = sum(1 for t in targets if t.enrollment_status in ("active", "pending"))
        if request.form.get("confirm") != str(reach) or reach == 0:
            preview = {"request_type": request_type, "reach": reach, "matched": len(targets)}
            page = render_template(
                "commands.html",
                commands=BULK_COMMANDS,
                preview=preview,
                chosen=chosen,
                selection="\n".join(selection),
            )
            return page, (200 if reach else 422)
        command = {"RequestType": request_type, **BULK_PAYLOADS.get(request_type, {})}
        body: dict[str, Any] = {"command": command}
        if selection:
            body["targets"] = [t.device_id for t in targets]
        else:
            body["filter"] = chosen
        result = service.commands.send(body, actor=actor())
    except (AdminError, CommandRefused) as exc:
        page = render_template(
            "commands.html",
            commands=BULK_COMMANDS,
            preview=None,
            chosen=chosen,
            selection="\n".join(selection),
            error=str(exc),
        )
        return page, exc.status
    return redirect(url_for("console.command", command_uuid=result.command_uuid))


# Enrollment tokens -----------------------------------------------------------------------------


@bp.post("/enrollment")
@require("tokens.manage")
def enrollment_create() -> Any:
    service = admin()
    try:
        uses = _optional_int("uses", 1, 1_000_000)
        days = _optional_int("expires_days", 1, 3650)
        tags = tuple(t for t in request.form.get("tags", "").replace(",", " ").split() if t)
        new = service.tokens.create(
            uses=uses,
            lifetime=timedelta(days=days) if days else None,
            tags=tags,
            actor=actor(),
        )
    except AdminError as exc:
        return render_template(
            "enrollment.html", tokens=service.tokens.list(), created=None, error=exc.message
        ), exc.status
    url = enrollment_url(runtime(current_app).config.server_url or request.host_url, new.token)
    return render_template(
        "enrollment.html",
        tokens=service.tokens.list(),
        created={"url": url, "qr": qr_svg(url), "info": new.info},
    )


@bp.post("/enrollment/<token_id>/revoke")
@require("tokens.manage")
def enrollment_revoke(token_id: str) -> Any:
    try:
        admin().tokens.revoke(token_id, actor=actor())
    except AdminError as exc:
        abort(exc.status, exc.message)
    return redirect(url_for("console.enrollment"))


def _optional_int(name: str, low: int, high: int) -> int | None:
    raw = request.form.get(name, "").strip()
    if not raw:
        return None
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise BadRequest(f"{name}: a whole number from {low} to {high}")
    return int(raw)


# Compliance policy -----------------------------------------------------------------------------


@bp.get("/compliance")
@require("view")
def compliance() -> str:
    policies = inventory_runtime().policies
    text = json.dumps(policies.current().to_dict(), indent=2, sort_keys=True)
    return render_template("compliance.html", text=text, source=policies.source(), preview=None)


@bp.post("/compliance")
@require("policy.edit")
def compliance_change() -> Any:
    built = inventory_runtime()
    text = request.form.get("policy", "")
    saving = request.form.get("go") == "save"
    try:
        if len(text) > POLICY_MAX:
            raise Unprocessable(f"the policy is longer than {POLICY_MAX} characters")
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise Unprocessable(f"the policy is not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise Unprocessable("the policy must be a JSON object")
        if saving:
            with admin().audit.record(actor(), "compliance.policy.set", ["policy"]) as entry:
                entry.detail["policy"] = data
                try:
                    built.policies.set(data, actor())
                except PolicyError as exc:
                    raise Unprocessable(str(exc)) from None
            return redirect(url_for("console.compliance"))
        try:
            candidate = policy_from(data)
        except PolicyError as exc:
            raise Unprocessable(str(exc)) from None
        preview = preview_policy(built.inventory.store, candidate)
    except AdminError as exc:
        page = render_template(
            "compliance.html",
            text=text,
            source=built.policies.source(),
            preview=None,
            error=exc.message,
        )
        return page, exc.status
    return render_template(
        "compliance.html", text=text, source=built.policies.source(), preview=preview
    )
