"""The device-trust API for relying services, and the compliance policy for admins.

Trust routes need ``Authorization: Bearer <key>`` with a key of scope ``trust`` (issue #5's
key store, ``mdmserver api-key create --scope trust``); an admin key is refused with 403, and a
trust key is refused on the admin API. The policy routes need an ``admin`` key. The JWKS is
public: an access proxy fetches it to verify assertions offline.

    GET /api/v1/trust/devices/<udid-or-serial>[/assertion]
    GET /api/v1/trust/certificate/<sha256-hex>[/assertion]
    GET /api/v1/trust/certificate[/assertion]      the cert in MDM_CLIENT_CERT_HEADER
    GET /api/v1/trust/jwks.json
    GET|PUT|DELETE /api/v1/compliance/policy
    GET /api/v1/compliance/devices/<device-id>
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request

from mdmserver.admin.errors import BadRequest, Unprocessable
from mdmserver.compliance.policy import PolicyError
from mdmserver.compliance.trust import UNMANAGED, TrustAnswer
from mdmserver.crypto.ca import fingerprint_sha256
from mdmserver.crypto.certheader import parse_client_cert_header
from mdmserver.crypto.errors import CertificateFormatError
from mdmserver.inventory.setup import InventoryRuntime
from mdmserver.logs import get_logger
from mdmserver.web.api import actor, admin, audited, json_body
from mdmserver.web.api.keys import ADMIN, TRUST, is_public, public, require_scope
from mdmserver.web.runtime import device_authenticator, runtime

log = get_logger("trust")


bp = Blueprint("trust", __name__, url_prefix="/api/v1")


def inventory_runtime() -> InventoryRuntime:
    return runtime(current_app).inventory


REASON_HEADER = "X-MDM-Trust-Reason"
NOT_MANAGED = (
    "this certificate is not the access identity of a managed device"
    " (unknown, revoked or expired, or the device was unenrolled)"
)


# Authentication ----------------------------------------------------------------------------------


def _error(status: int, message: str) -> Response:
    response = jsonify({"error": message})
    response.status_code = status
    return response


@bp.before_request
def _authenticate() -> Response | None:
    """Trust routes take a ``trust`` key, the compliance routes an ``admin`` one."""
    if is_public():
        return None
    if request.path.startswith("/api/v1/trust/"):
        return require_scope(TRUST, cached=True)
    return require_scope(ADMIN)


# Trust -------------------------------------------------------------------------------------------


@bp.get("/trust/jwks.json")
@public
def jwks() -> Response:
    response = jsonify(inventory_runtime().signer.jwks())
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


@bp.get("/trust/devices/<key>")
def device(key: str) -> Response:
    return _plain(inventory_runtime().trust.by_device(key))


@bp.get("/trust/devices/<key>/assertion")
def device_assertion(key: str) -> Response:
    return _assertion(inventory_runtime().trust.by_device(key))


@bp.get("/trust/certificate/<fingerprint>")
def certificate(fingerprint: str) -> Response:
    return _plain(inventory_runtime().trust.by_fingerprint(fingerprint))


@bp.get("/trust/certificate/<fingerprint>/assertion")
def certificate_assertion(fingerprint: str) -> Response:
    return _assertion(inventory_runtime().trust.by_fingerprint(fingerprint))


@bp.get("/trust/certificate")
def presented() -> Response:
    answer = _presented()
    return answer if isinstance(answer, Response) else _plain(answer)


@bp.get("/trust/certificate/assertion")
def presented_assertion() -> Response:
    answer = _presented()
    return answer if isinstance(answer, Response) else _assertion(answer)


@bp.get("/trust/access")
def access() -> Response:
    """The access proxy's question (nginx ``auth_request``): may the holder of the forwarded
    client certificate in? 200 for a managed, compliant device; 403 otherwise, with the
    reasons in the body and, for the proxy's refusal page, in ``X-MDM-Trust-Reason``."""
    answer = _presented()
    if isinstance(answer, Response):
        return answer
    allowed = answer.managed and answer.compliant
    reasons = answer.reasons or ["not compliant"] if answer.managed else [NOT_MANAGED]
    response = _plain(answer)
    if not allowed:
        response.status_code = 403
        response.headers[REASON_HEADER] = _header_text("; ".join(reasons))
    return response


def _header_text(text: str, limit: int = 1000) -> str:
    """Printable ASCII only: a header value (and the proxy's page) never carries markup or
    line breaks from a reason."""
    clean = "".join(c if " " <= c <= "~" and c not in '<>&"' else " " for c in text)
    return clean[:limit]


def _presented() -> TrustAnswer | Response:
    rt = runtime(current_app)
    header = rt.config.client_cert_header
    if not header:
        return _error(400, "no client certificate header is configured (MDM_CLIENT_CERT_HEADER)")
    value = request.headers.get(header)
    if not value:
        return UNMANAGED
    if not device_authenticator(current_app).trusted_proxy(request.remote_addr or ""):
        return _error(403, f"{header} is only accepted from a trusted proxy (MDM_TRUSTED_PROXIES)")
    try:
        cert = parse_client_cert_header(value)
    except CertificateFormatError as exc:
        return _error(400, f"{header}: {exc}")
    return inventory_runtime().trust.by_fingerprint(fingerprint_sha256(cert))


def _plain(answer: TrustAnswer) -> Response:
    response = jsonify(answer.to_dict())
    response.headers["Cache-Control"] = "no-store"
    return response


def _assertion(answer: TrustAnswer) -> Response:
    body: dict[str, Any] = answer.to_dict()
    if answer.managed:
        signer = inventory_runtime().signer
        body["assertion"] = signer.sign(answer, datetime.now(UTC))
        body["expires_in"] = signer.ttl
    response = jsonify(body)
    response.headers["Cache-Control"] = "no-store"
    return response


# Compliance (admin) ------------------------------------------------------------------------------


@bp.get("/compliance/policy")
def get_policy() -> Response:
    policies = inventory_runtime().policies
    return jsonify({"source": policies.source(), "policy": policies.current().to_dict()})


# Changes are audited like the admin API's (one row, refusals included: a malformed body too);
# the row's target is the policy, and a set keeps the policy as sent in its detail.
_POLICY = ("policy",)


@bp.put("/compliance/policy")
@audited("compliance.policy.set", _POLICY)
def put_policy() -> Response:
    data = json_body()
    if not isinstance(data, dict):
        raise BadRequest("expected a JSON object (the policy)")
    with admin().audit.record(actor(), "compliance.policy.set") as entry:  # joins the route's
        entry.detail["policy"] = data  # the policy as sent, kept with the outcome
        try:
            policy = inventory_runtime().policies.set(data, actor())
        except PolicyError as exc:
            raise Unprocessable(str(exc)) from None
    return jsonify({"source": "api", "policy": policy.to_dict()})


@bp.delete("/compliance/policy")
@audited("compliance.policy.reset", _POLICY)
def delete_policy() -> Response:
    policies = inventory_runtime().policies
    try:
        policy = policies.set(None, actor())
    except PolicyError as exc:
        raise Unprocessable(f"the file policy is invalid: {exc}") from None
    return jsonify({"source": policies.source(), "policy": policy.to_dict()})


@bp.get("/compliance/devices/<device_id>")
def device_detail(device_id: str) -> Response:
    built = inventory_runtime()
    facts = built.inventory.store.facts(device_id)
    state = built.compliance_store.state(device_id)
    if facts is None and state is None:
        return _error(404, f"no inventory or compliance state for device {device_id!r}")
    return jsonify(
        {
            "device_id": device_id,
            "inventory": facts,
            "compliance": _state(state),
            "history": built.compliance_store.history(device_id, 20),
            "inventory_history": built.inventory.store.history(device_id, 50),
            "remediations": built.compliance_store.remediations(device_id),
        }
    )


def _state(state: Any) -> dict[str, Any] | None:
    if state is None:
        return None
    return {
        "state": state.state,
        "reasons": state.reasons,
        "results": state.results,
        "evaluated_at": state.evaluated_at,
        "changed_at": state.changed_at,
        "noncompliant_since": state.noncompliant_since,
    }
