"""``/api/v1/profiles``: templates, managed profiles, assignments and per-device status.

Nested under the admin API blueprint, so the same Bearer API-key check guards every route.
An invalid profile is refused with 422 and the key path of each problem; nothing is stored.
A change that devices cannot be sent yet (no profile signer) is kept and answers with
``warnings`` saying so. Every change is one audit row (``@audited``, the profiles.* actions),
refusals included.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request

from mdmserver.admin.errors import BadRequest, NotFound
from mdmserver.catalog.validate import ValidationError
from mdmserver.profiles.admin import ProfileAdmin, describe, describe_state
from mdmserver.web.api import audited, error, json_body
from mdmserver.web.errors import register_refusals
from mdmserver.web.runtime import runtime

bp = Blueprint("profiles", __name__)
_CREATE_FIELDS = frozenset(
    {"name", "template", "variables", "identifier", "scope", "encrypt", "replace"}
)
_TRUE = {"1", "true", "yes", "on"}


def _admin() -> ProfileAdmin:
    return runtime(current_app).profiles.admin


# The profile services refuse a bad value with a ValueError; their domain errors (a refused
# profile: 422 with its key paths, an unknown one: 404) keep their own status.
register_refusals(bp)


@bp.errorhandler(ValueError)
def _bad_value(exc: ValueError) -> Response:
    return error(400, str(exc))


@bp.get("/profiles/templates")
def templates() -> Response:
    found = _admin().templates()
    return jsonify(
        templates=[
            {
                "name": t.name,
                "display_name": t.display_name,
                "description": t.description,
                "platforms": list(t.platforms),
                "encrypt": t.encrypt,
                "variables": [
                    {
                        "name": v.name,
                        "type": v.type,
                        "required": v.required,
                        "default": None
                        if v.secret or v.type in ("data", "certificate")
                        else v.default,
                        "description": v.description,
                    }
                    for v in t.variables.values()
                ],
            }
            for t in found.values()
        ]
    )


@bp.get("/profiles")
def list_profiles() -> Response:
    admin = _admin()
    return jsonify(profiles=[describe(p, admin.store.assignments(p.id)) for p in admin.list()])


@bp.post("/profiles")
@audited("profiles.create_profile", invalid=(ValueError,))
def create_profile() -> tuple[Response, int]:
    body = json_body()
    if not isinstance(body, Mapping):
        raise BadRequest("the body must be a JSON object")
    unknown = sorted(set(body) - _CREATE_FIELDS)
    if unknown:
        raise BadRequest(f"{unknown[0]}: unknown field; use {', '.join(sorted(_CREATE_FIELDS))}")
    name, template = body.get("name"), body.get("template")
    if not isinstance(name, str) or not isinstance(template, str):
        raise BadRequest("name and template are required strings")
    variables = body.get("variables", {})
    if not isinstance(variables, Mapping):
        raise BadRequest("variables: must be an object")
    saved = _admin().from_template(
        template,
        name,
        variables,
        identifier=_opt_str(body, "identifier"),
        scope=_opt_str(body, "scope") or "System",
        encrypt=body.get("encrypt") if isinstance(body.get("encrypt"), bool) else None,
        replace=body.get("replace") is True,
    )
    return _saved(saved)


@bp.post("/profiles/upload")
@audited("profiles.upload_profile", invalid=(ValueError,))
def upload_profile() -> tuple[Response, int]:
    name = request.args.get("name", "")
    if not name:
        raise BadRequest("name: required query parameter")
    data = request.get_data(cache=False)
    if not data:
        raise BadRequest("the body must be the .mobileconfig file")
    saved = _admin().from_upload(
        name,
        data,
        identifier=request.args.get("identifier") or None,
        encrypt=request.args.get("encrypt", "").lower() in _TRUE,
        replace=request.args.get("replace", "").lower() in _TRUE,
    )
    return _saved(saved)


@bp.get("/profiles/status")
def status_all() -> Response:
    rows = _admin().status(device=request.args.get("device") or None)
    return jsonify(status=[describe_state(s) for s in rows])


@bp.get("/profiles/<key>")
def show_profile(key: str) -> Response:
    admin = _admin()
    profile = admin.get(key)
    return jsonify(describe(profile, admin.store.assignments(profile.id)))


@bp.get("/profiles/<key>/content")
def profile_content(key: str) -> Response:
    """The built, unsigned XML (as stored; device values not filled in)."""
    # Secret template variables are redacted: the real content never leaves the server.
    return Response(_admin().get(key).shown, content_type="application/x-plist")


@bp.delete("/profiles/<key>")
@audited("profiles.delete_profile", invalid=(ValueError,))
def delete_profile(key: str) -> Response:
    done = _admin().delete(key)
    return jsonify(deleted=done.value.id, warnings=_warnings(done.warnings))


@bp.post("/profiles/<key>/assignments")
@audited("profiles.assign", invalid=(ValueError,))
def assign(key: str) -> tuple[Response, int]:
    body = json_body()
    target = body.get("target") if isinstance(body, Mapping) else None
    if not isinstance(target, str):
        raise BadRequest("target: required, 'all' or 'tag:<name>'")
    done = _admin().assign(key, target)
    status = 201 if done.value else 200
    return jsonify(assigned=done.value, warnings=_warnings(done.warnings)), status


@bp.delete("/profiles/<key>/assignments/<path:target>")
@audited("profiles.unassign", invalid=(ValueError,))
def unassign(key: str, target: str) -> Response:
    done = _admin().unassign(key, target)
    if not done.value:
        raise NotFound(f"profile {key!r} is not assigned to {target!r}")
    return jsonify(unassigned=True, warnings=_warnings(done.warnings))


@bp.get("/profiles/<key>/status")
def profile_status(key: str) -> Response:
    rows = _admin().status(key, request.args.get("device") or None)
    return jsonify(status=[describe_state(s) for s in rows])


@bp.post("/profiles/<key>/retry")
@audited("profiles.retry", invalid=(ValueError,))
def retry(key: str) -> Response:
    done = _admin().retry(key)
    return jsonify(retried=done.value, warnings=_warnings(done.warnings))


def _opt_str(body: Mapping[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is not None and not isinstance(value, str):
        raise BadRequest(f"{name}: must be a string")
    return value


def _saved(saved: Any) -> tuple[Response, int]:
    admin = _admin()
    body = describe(saved.profile, admin.store.assignments(saved.profile.id))
    body["warnings"] = _warnings(saved.warnings)
    return jsonify(body), 201


def _warnings(found: list[ValidationError]) -> list[dict[str, str]]:
    return [{"path": w.path, "message": w.message} for w in found]
