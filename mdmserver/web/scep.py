"""``/scep``: the SCEP endpoint (public contract: enrollment profiles in the field point here).

GetCACaps and GetCACert by GET; PKIOperation by POST (DER body) or GET (base64 ``message``).
Answers are CertReps; only a message too broken to answer gets a plain-text 400, and too many
PKIOperations from one address, or with one challenge or renewing certificate, a 429.
``GET /scep/crl`` publishes the device CA's CRL (DER, signed by the CA); a GetCRL
PKIOperation gets the same CRL in its CertRep.
"""

from __future__ import annotations

import base64
import binascii

from flask import Blueprint, Response, current_app, request

from mdmserver.enrollment.scep import CERT_REP_CONTENT_TYPE, CRL_CONTENT_TYPE
from mdmserver.logs import get_logger
from mdmserver.scep.errors import ScepError
from mdmserver.scep.message import MAX_MESSAGE_BYTES
from mdmserver.web.client_address import request_address
from mdmserver.web.runtime import runtime

bp = Blueprint("scep", __name__)
log = get_logger("scep")


def _text(status: int, message: str) -> Response:
    return Response(message + "\n", status=status, content_type="text/plain; charset=utf-8")


def _message() -> bytes | Response:
    if request.method == "POST":
        return request.get_data(cache=False)
    encoded = request.args.get("message", "")
    if not encoded:
        return _text(400, "PKIOperation by GET needs a base64 message parameter")
    if len(encoded) > MAX_MESSAGE_BYTES * 2:
        return _text(400, "the message parameter is too large")
    # A client that did not percent-encode '+' has it turned into a space by URL decoding.
    try:
        return base64.b64decode(encoded.replace(" ", "+"), validate=True)
    except (binascii.Error, ValueError):
        return _text(400, "the message parameter is not valid base64")


@bp.route("/scep", methods=["GET", "POST"])
def scep() -> Response:
    operation = request.args.get("operation", "")
    service = runtime(current_app).enrollment.need_scep()
    if operation == "GetCACaps":
        body, content_type = service.ca_caps()
        return Response(body, content_type=content_type)
    if operation == "GetCACert":
        body, content_type = service.ca_cert_der()
        return Response(body, content_type=content_type)
    if operation != "PKIOperation":
        return _text(400, f"unknown SCEP operation {operation[:64]!r}")
    limiter = runtime(current_app).rate_limiter
    if limiter is not None:  # counted before the costly part: decrypting the request
        limiter.hit(limiter.limits.scep_address, request_address())
    data = _message()
    if isinstance(data, Response):
        return data
    try:
        answer = service.pki_operation(data)
    except ScepError as exc:
        log.info("scep_unreadable", extra={"fields": {"reason": str(exc)}})
        return _text(400, f"unreadable PKIOperation: {exc}")
    return Response(answer, content_type=CERT_REP_CONTENT_TYPE)


@bp.get("/scep/crl")
def crl() -> Response:
    body = runtime(current_app).enrollment.need_scep().crl_der()
    response = Response(body, content_type=CRL_CONTENT_TYPE)
    response.headers["Cache-Control"] = "no-store"  # a revocation shows at once
    return response
