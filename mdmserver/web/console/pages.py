"""The console's pages: what people look at. Each page reads through the admin services (or,
for compliance and trust, the inventory runtime) exactly as the API does."""

from __future__ import annotations

import csv
import io
import plistlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography import x509
from flask import (
    Response,
    abort,
    current_app,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)

from mdmserver.admin.audit import console_actor
from mdmserver.admin.console_users import LoginRefused, TooManyAttempts
from mdmserver.admin.devices import parse_filter
from mdmserver.admin.errors import AdminError
from mdmserver.admin.views import INVENTORY_PARTS
from mdmserver.catalog.schema import PLATFORMS
from mdmserver.storage.base import QueueStatus
from mdmserver.storage.sql.fleet_queries import FleetQueries
from mdmserver.storage.sql.inventory_queries import SORTABLE, DeviceFilter
from mdmserver.web.console.apps import device_apps
from mdmserver.web.console.auth import (
    actor,
    admin,
    current_user,
    require,
    sign_in,
    sign_out,
)
from mdmserver.web.console.blueprint import bp
from mdmserver.web.runtime import runtime
from mdmserver.web.trust import inventory_runtime

PAGE_SIZE = 50
LIST_FILTERS = ("platform", "os_version", "tag", "compliance", "supervised")
CSV_COLUMNS = (
    "id",
    "serial_number",
    "device_name",
    "platform",
    "product_name",
    "os_version",
    "enrolled",
    "tags",
    "last_seen_at",
)


# Signing in -------------------------------------------------------------------------------------


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    error, status = None, 200
    if request.method == "POST":
        name = request.form.get("name", "")
        password = request.form.get("password", "")
        try:
            user = admin().console_users.sign_in(name, password, request.remote_addr or "")
        except TooManyAttempts as exc:
            page = render_template("login.html", error=exc.message, name=name)
            return Response(page, 429, {"Retry-After": str(exc.retry_after)})
        except LoginRefused as exc:
            error, status = exc.message, 401
        else:
            sign_in(user)
            return redirect(_safe_next(request.args.get("next")))
    return render_template("login.html", error=error, name=request.form.get("name", "")), status


def _safe_next(target: str | None) -> str:
    """Only a path on this server: never an open redirect."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return url_for("console.dashboard")


@bp.post("/logout")
def logout() -> Any:
    sign_out()
    return redirect(url_for("console.login"))


@bp.route("/account/password", methods=["GET", "POST"])
def password() -> Any:
    user = current_user()
    assert user is not None
    error, status = None, 200
    if request.method == "POST":
        new, again = request.form.get("password", ""), request.form.get("confirm", "")
        current = request.form.get("current", "")
        try:
            admin().console_users.sign_in(user.name, current, request.remote_addr or "")
            if new != again:
                raise AdminError("the two new passwords differ")
            admin().console_users.change_password(user.name, new, actor=console_actor(user.name))
        except TooManyAttempts as exc:
            return Response(render_template("password.html", error=exc.message), 429)
        except AdminError as exc:
            error, status = exc.message, exc.status if exc.status != 401 else 400
        else:
            refreshed = admin().console_users.store.by_id(user.id)
            assert refreshed is not None
            sign_in(refreshed)
            return redirect(url_for("console.dashboard"))
    return render_template("password.html", error=error), status


# Dashboard --------------------------------------------------------------------------------------


@bp.get("/")
@require("view")
def dashboard() -> str:
    rt = runtime(current_app)
    summary = FleetQueries(rt.engine).summary()
    return render_template(
        "dashboard.html",
        summary=summary,
        push_days_left=_push_days_left(),
        compliance_chart=_bars(
            [(day[5:], up, down) for day, up, down in summary.compliance_changes]
        ),
    )


def _push_days_left() -> int | None:
    path = runtime(current_app).config.resolved_push_cert_file
    if path is None or not path.is_file():
        return None
    try:
        cert = x509.load_pem_x509_certificate(path.read_bytes())
    except ValueError:
        return None
    return int((cert.not_valid_after_utc - datetime.now(UTC)).total_seconds() // 86400)


def _bars(days: list[tuple[str, int, int]]) -> dict[str, Any]:
    """Two bar series on one scale, for a server-drawn SVG."""
    peak = max([1, *(max(up, down) for _, up, down in days)])
    return {"days": days, "peak": peak}


# Devices ----------------------------------------------------------------------------------------


def _list_filter() -> tuple[DeviceFilter, dict[str, str]]:
    chosen = {k: request.args[k] for k in LIST_FILTERS if request.args.get(k)}
    raw: dict[str, Any] = dict(chosen)
    query = request.args.get("q", "").strip()
    if query:
        raw["search"] = query
        chosen["q"] = query
    seen = request.args.get("not_seen_days", "")
    if seen:
        try:
            days = int(seen)
        except ValueError:
            abort(400, "not_seen_days: a whole number of days")
        if not 1 <= days <= 3650:
            abort(400, "not_seen_days: between 1 and 3650")
        raw["last_seen_before"] = (datetime.now(UTC) - timedelta(days=days)).isoformat()
        chosen["not_seen_days"] = seen
    try:
        return parse_filter(raw), chosen
    except AdminError as exc:
        abort(exc.status, exc.message)


@bp.get("/devices")
@require("view")
def devices() -> str:
    flt, chosen = _list_filter()
    sort = request.args.get("sort", "name")
    if sort not in SORTABLE:
        abort(400, f"sort: one of {', '.join(SORTABLE)}")
    descending = request.args.get("order") == "desc"
    try:
        page = max(1, int(request.args.get("page", "1")))
    except ValueError:
        abort(400, "page: a page number")
    if page > 100_000:
        abort(400, "page: too far")
    rows, total = admin().devices.inventory.page(
        flt, sort=sort, descending=descending, offset=(page - 1) * PAGE_SIZE, limit=PAGE_SIZE
    )
    return render_template(
        "devices.html",
        rows=rows,
        total=total,
        page=page,
        pages=max(1, -(-total // PAGE_SIZE)),
        sort=sort,
        descending=descending,
        chosen=chosen,
        platforms=PLATFORMS,
        sortable=SORTABLE,
    )


@bp.get("/devices.csv")
@require("export")
def devices_csv() -> Response:
    flt, _ = _list_filter()
    queries = admin().devices.inventory

    def rows() -> Iterator[str]:
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(CSV_COLUMNS)
        cursor = None
        while True:
            page = queries.list_devices(flt, 1000, cursor)
            for d in page.devices:
                writer.writerow(
                    [
                        d.id,
                        d.serial_number,
                        d.device_name,
                        d.platform,
                        d.product_name,
                        d.os_version,
                        d.enrolled,
                        " ".join(d.tags),
                        d.last_seen_at.isoformat() if d.last_seen_at else "",
                    ]
                )
            yield out.getvalue()
            out.seek(0)
            out.truncate()
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    with admin().audit.record(actor(), "console.export.devices", []):
        pass
    return Response(
        rows(),
        content_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="devices.csv"'},
    )


@bp.get("/devices/<ident>")
@require("view")
def device(ident: str) -> str:
    return render_device(ident)


def render_device(ident: str, *, error: str | None = None, notice: str | None = None) -> str:
    try:
        detail = admin().devices.show(ident)
        device_id, facts, answered = admin().devices.inventory_of(detail.device.id)
        _, history = admin().queues.show(device_id, include_done=True)
    except AdminError as exc:
        abort(exc.status, exc.message)
    built = inventory_runtime()
    state = built.compliance_store.state(device_id)
    commands = sorted(history, key=lambda item: item.created_at, reverse=True)
    return render_template(
        "device.html",
        detail=detail,
        d=detail.device,
        facts=facts or {},
        reported={
            part: max((answered[s] for s in sources if s in answered), default=None)
            for part, (_, sources) in INVENTORY_PARTS.items()
        },
        parts=INVENTORY_PARTS,
        compliance=state,
        compliance_history=built.compliance_store.history(device_id, 20),
        trust=built.trust.by_device(device_id).to_dict(),
        profiles=_profile_states(detail),
        declarations=_declaration_states(detail),
        apps=device_apps(device_id),
        pending=[c for c in commands if c.status.value in ("queued", "sent", "notnow")],
        done=[(c, _result(c.result)) for c in commands if c.result is not None][:50],
        error=error,
        notice=notice,
    )


def _declaration_states(detail: Any) -> list[dict[str, Any]]:
    """Each channel's declarations and their state on the device (declarative management)."""
    service = runtime(current_app).ddm.service
    return [service.device_declarations(e.id) for e in detail.enrollments]


def _profile_states(detail: Any) -> list[Any]:
    store = runtime(current_app).profiles.store
    states: list[Any] = []
    for enrollment in detail.enrollments:
        states.extend(store.states(enrollment.id).values())
    return states


def _result(raw: bytes | None) -> dict[str, Any]:
    """A command's answer as people read it: the status and the ErrorChain, one line each."""
    if raw is None:
        return {}
    try:
        answer = plistlib.loads(raw)
    except Exception:
        return {"status": "unreadable"}
    chain = []
    for link in answer.get("ErrorChain") or []:
        if isinstance(link, dict):
            text = link.get("USEnglishDescription") or link.get("LocalizedDescription") or ""
            chain.append(f"{link.get('ErrorDomain', '?')} {link.get('ErrorCode', '?')}: {text}")
    return {"status": answer.get("Status"), "errors": chain}


# Commands, enrollment, audit ------------------------------------------------------------------


@bp.get("/commands/<command_uuid>")
@require("view")
def command(command_uuid: str) -> str:
    try:
        request_type, targets = admin().commands.status(command_uuid)
    except AdminError as exc:
        abort(exc.status, exc.message)
    return render_template(
        "command.html",
        command_uuid=command_uuid,
        request_type=request_type,
        progress=progress_counts(targets),
        targets=targets[:200],
        total=len(targets),
    )


# How a bulk command's targets are counted on its progress page.
PROGRESS_OF = {
    QueueStatus.ACKNOWLEDGED: "acknowledged",
    QueueStatus.ERROR: "error",
    QueueStatus.COMMAND_FORMAT_ERROR: "error",
    QueueStatus.NOTNOW: "notnow",
    QueueStatus.QUEUED: "pending",
    QueueStatus.SENT: "pending",
    QueueStatus.CANCELLED: "ended",
    QueueStatus.EXPIRED: "ended",
}


def progress_counts(targets: list[Any]) -> dict[str, int]:
    counts = dict.fromkeys(("acknowledged", "error", "notnow", "pending", "ended"), 0)
    for target in targets:
        counts[PROGRESS_OF[target.item.status]] += 1
    return counts


@bp.get("/commands/<command_uuid>/progress.json")
@require("view")
def command_progress(command_uuid: str) -> Response:
    try:
        _, targets = admin().commands.status(command_uuid)
    except AdminError as exc:
        abort(exc.status, exc.message)
    counts = progress_counts(targets)
    return jsonify({**counts, "total": len(targets)})


@bp.get("/enrollment")
@require("view")
def enrollment() -> str:
    return render_template("enrollment.html", tokens=admin().tokens.list(), created=None)


@bp.get("/audit")
@require("view")
def audit() -> str:
    actor_filter = request.args.get("actor", "").strip()[:128] or None
    action_filter = request.args.get("action", "").strip()[:64] or None
    entries = admin().store.audit_entries(200, actor=actor_filter, action=action_filter)
    return render_template(
        "audit.html", entries=entries, actor=actor_filter or "", action=action_filter or ""
    )
