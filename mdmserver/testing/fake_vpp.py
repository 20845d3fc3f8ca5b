"""A local stand-in for Apple's Apps and Books service (``/mdm/v2``), over plain HTTP on
loopback, that the real :class:`mdmserver.apps.vpp.VppClient` talks to in tests.

It behaves like Apple's where the client depends on it: Bearer sToken auth (an unknown token
is errorNumber 9622, an expired one 9621, a revoked one 9625), ``client/config``, paged
``assets`` and ``assignments``, ``assets/associate`` and ``assets/disassociate`` answering an
``eventId`` at once and doing the work asynchronously (the event stays PENDING for
``pending_polls`` status polls), license counts that move, per-serial ``failures``, and 429
with ``Retry-After`` on demand (:meth:`FakeVpp.rate_limit`).
"""

from __future__ import annotations

import base64
import json
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl

from mdmserver.testing.wsgi_server import serve_wsgi

APPLE_TIME = "%Y-%m-%dT%H:%M:%S%z"
PAGE_SIZE = 2  # small, so tests cross pages


def make_token(org: str = "Example Org", *, days: int = 365, secret: str | None = None) -> str:
    """A content token shaped like Apple's ``.vpptoken`` file."""
    expires = datetime.now(UTC) + timedelta(days=days)
    body = {
        "token": secret or base64.b64encode(uuid.uuid4().bytes).decode(),
        "expDate": expires.strftime(APPLE_TIME),
        "orgName": org,
    }
    return base64.b64encode(json.dumps(body).encode()).decode()


@dataclass
class Asset:
    adam_id: str
    total: int
    pricing_param: str = "STDQ"
    device_assignable: bool = True
    revocable: bool = True
    platforms: tuple[str, ...] = ("iOS", "macOS")
    assigned: set[str] = field(default_factory=set)

    def describe(self) -> dict[str, Any]:
        return {
            "adamId": self.adam_id,
            "assignedCount": len(self.assigned),
            "availableCount": self.total - len(self.assigned),
            "deviceAssignable": self.device_assignable,
            "pricingParam": self.pricing_param,
            "productType": "App",
            "retiredCount": 0,
            "revocable": self.revocable,
            "supportedPlatforms": list(self.platforms),
            "totalCount": self.total,
        }


@dataclass
class _Event:
    event_type: str
    work: list[tuple[str, str]]  # (adamId, serial)
    polls_left: int
    status: str = "PENDING"
    completed: int = 0
    failures: list[dict[str, Any]] = field(default_factory=list)


class FakeVpp:
    def __init__(self, token: str, *, pending_polls: int = 2) -> None:
        self.token = token
        self.expired: set[str] = set()
        self.revoked: set[str] = set()
        self.assets: dict[str, Asset] = {}
        self.pending_polls = pending_polls
        self.requests: list[tuple[str, str, str]] = []  # (method, path, Authorization)
        self._events: dict[str, _Event] = {}
        self._throttle: list[str] = []  # Retry-After values of the next 429 answers
        self._lock = threading.Lock()

    def add_asset(self, adam_id: str, total: int, **kwargs: Any) -> Asset:
        asset = Asset(adam_id, total, **kwargs)
        self.assets[adam_id] = asset
        return asset

    def rate_limit(self, times: int = 1, retry_after: str = "1") -> None:
        """Answer the next ``times`` requests with 429 and this Retry-After."""
        with self._lock:
            self._throttle.extend([retry_after] * times)

    # WSGI -----------------------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        with self._lock:
            response = self._answer(request)
        phrase = HTTPStatus(response.status).phrase
        start_response(f"{response.status} {phrase}", list(response.headers.items()))
        return [response.body]

    def _answer(self, request: Request) -> Response:
        auth = request.headers.get("Authorization", "")
        self.requests.append((request.method, request.path, auth))
        if self._throttle:
            return Response(
                429, {"errorMessage": "Too many requests"}, {"Retry-After": self._throttle.pop(0)}
            )
        scheme, _, bearer = auth.partition(" ")
        if scheme != "Bearer" or not bearer:
            return _error(401, 9601, "Login required.")
        if bearer in self.revoked:
            return _error(401, 9625, "The sToken has been revoked.")
        if bearer in self.expired:
            return _error(401, 9621, "The token has expired.")
        if bearer != self.token:
            return _error(401, 9622, "Invalid authentication token.")
        route = (request.method, request.path)
        if route == ("GET", "/mdm/v2/client/config"):
            return _ok(self._base({"locationName": "Example Location", "countryISO2ACode": "US"}))
        if route == ("GET", "/mdm/v2/assets"):
            found = [a.describe() for a in self.assets.values()]
            adam = request.args.get("adamId")
            found = [a for a in found if adam is None or a["adamId"] == adam]
            return self._page(request, "assets", found)
        if route == ("GET", "/mdm/v2/assignments"):
            rows = [
                {"adamId": a.adam_id, "serialNumber": s, "pricingParam": a.pricing_param}
                for a in self.assets.values()
                for s in sorted(a.assigned)
            ]
            adam, serial = request.args.get("adamId"), request.args.get("serialNumber")
            rows = [
                r
                for r in rows
                if (adam is None or r["adamId"] == adam)
                and (serial is None or r["serialNumber"] == serial)
            ]
            return self._page(request, "assignments", rows)
        if route == ("POST", "/mdm/v2/assets/associate"):
            return self._manage(request, "ASSOCIATE")
        if route == ("POST", "/mdm/v2/assets/disassociate"):
            return self._manage(request, "DISASSOCIATE")
        if route == ("GET", "/mdm/v2/status"):
            return self._status(request.args.get("eventId", ""))
        return _error(404, 9604, "Result not found.")

    def _base(self, extra: dict[str, Any]) -> dict[str, Any]:
        expires = _token_expiry(self.token)
        return {"tokenExpirationDate": expires, "uId": "2049025000431439", **extra}

    def _page(self, request: Request, key: str, rows: list[dict[str, Any]]) -> Response:
        try:
            index = int(request.args.get("pageIndex", "0"))
        except ValueError:
            return _error(400, 9602, "Invalid argument.")
        pages = max(1, -(-len(rows) // PAGE_SIZE))
        chunk = rows[index * PAGE_SIZE : (index + 1) * PAGE_SIZE]
        return _ok(
            self._base(
                {key: chunk, "currentPageIndex": index, "totalPages": pages, "size": len(chunk)}
            )
        )

    def _manage(self, request: Request, event_type: str) -> Response:
        body = request.json()
        if not isinstance(body, dict) or not body.get("assets"):
            return _error(400, 9600, "Missing required argument.")
        serials = body.get("serialNumbers") or []
        if not serials or not all(isinstance(s, str) and s for s in serials):
            return _error(400, 9600, "Missing required argument.")
        work: list[tuple[str, str]] = []
        for item in body["assets"]:
            adam = item.get("adamId") if isinstance(item, dict) else None
            if adam not in self.assets:
                return _error(400, 9602, "Invalid argument.")
            work.extend((adam, serial) for serial in serials)
        event_id = str(uuid.uuid4())
        self._events[event_id] = _Event(event_type, work, self.pending_polls)
        return _ok(self._base({"eventId": event_id}))

    def _status(self, event_id: str) -> Response:
        event = self._events.get(event_id)
        if event is None:
            return _error(400, 9602, "Invalid argument.")
        if event.status == "PENDING":
            if event.polls_left > 0:
                event.polls_left -= 1
            else:
                self._run(event)
        answer: dict[str, Any] = {
            "eventStatus": event.status,
            "eventType": event.event_type,
            "numRequested": len(event.work),
            "numCompleted": event.completed,
        }
        if event.failures:
            answer["failures"] = event.failures
        return _ok(self._base(answer))

    def _run(self, event: _Event) -> None:
        for adam, serial in event.work:
            asset = self.assets[adam]
            failure = None
            if event.event_type == "ASSOCIATE":
                if not asset.device_assignable:
                    failure = (9628, "Ineligible device assignment.")
                elif serial not in asset.assigned and len(asset.assigned) >= asset.total:
                    failure = (9610, "License not found.")
                else:
                    asset.assigned.add(serial)
            elif serial not in asset.assigned:
                failure = (9619, "License not associated.")
            else:
                asset.assigned.discard(serial)
            if failure is None:
                event.completed += 1
            else:
                event.failures.append(
                    {
                        "adamId": adam,
                        "pricingParam": asset.pricing_param,
                        "serialNumber": serial,
                        "errorNumber": failure[0],
                        "errorMessage": failure[1],
                    }
                )
        event.status = "FAILED" if event.failures else "COMPLETE"


def _token_expiry(token: str) -> str:
    try:
        return str(json.loads(base64.b64decode(token))["expDate"])
    except (ValueError, KeyError):
        return ""


class Request:
    """What the stand-in reads of a request: method, path, query arguments, header, JSON."""

    def __init__(self, environ: dict[str, Any]) -> None:
        self.method: str = environ["REQUEST_METHOD"]
        self.path: str = environ.get("PATH_INFO", "")
        self.args: dict[str, str] = {}
        for name, value in parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True):
            self.args.setdefault(name, value)  # the first value, as a form's get() gives
        self.headers = {"Authorization": environ.get("HTTP_AUTHORIZATION", "")}
        length = int(environ.get("CONTENT_LENGTH") or 0)
        self.body: bytes = environ["wsgi.input"].read(length) if length > 0 else b""

    def json(self) -> Any:
        """The body as JSON, or None when it is not JSON."""
        try:
            return json.loads(self.body)
        except ValueError:
            return None


@dataclass
class Response:
    status: int
    document: dict[str, Any]
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def body(self) -> bytes:
        return json.dumps(self.document).encode()

    @property
    def headers(self) -> dict[str, str]:
        return {"Content-Type": "application/json", **self.extra}


def _ok(body: dict[str, Any]) -> Response:
    return Response(200, body)


def _error(status: int, number: int, message: str) -> Response:
    return Response(status, {"errorNumber": number, "errorMessage": message})


@contextmanager
def serve_fake_vpp(fake: FakeVpp) -> Iterator[str]:
    """Serve the stand-in on an ephemeral loopback port; yields its ``/mdm/v2`` base URL."""
    with serve_wsgi(fake) as port:
        yield f"http://127.0.0.1:{port}/mdm/v2"
