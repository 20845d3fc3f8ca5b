"""The DDM protocol as it travels inside ``DeclarativeManagement`` check-ins. Pure: no DB.

A device names what it wants in ``Endpoint``: ``tokens`` (the SyncTokens), ``declaration-items``
(the manifest), ``declaration/<class>/<identifier>`` (one declaration) or ``status`` (its
status report, base64 JSON in ``Data``). Answers are JSON documents shaped as Apple's
protocol schema (declarative/protocol/*.yaml) says. ServerTokens and DeclarationsTokens are
digests of the content, so a change always makes a new token and an unchanged save never does.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from mdmserver.protocol.errors import ProtocolError

__all__ = [
    "CLASS_KEYS",
    "DeclarationItem",
    "DeclarationRequest",
    "Endpoint",
    "ItemsRequest",
    "StatusRequest",
    "TokensRequest",
    "declaration_json",
    "declarations_token",
    "items_response",
    "parse_endpoint",
    "parse_status_data",
    "server_token",
    "sync_tokens",
    "timestamp",
    "tokens_response",
]

# Manifest section of each declaration class (DeclarationItemsResponse.Declarations).
CLASS_KEYS = {
    "activation": "Activations",
    "asset": "Assets",
    "configuration": "Configurations",
    "management": "Management",
}
MAX_IDENTIFIER = 255


@dataclass(frozen=True, slots=True)
class TokensRequest:
    pass


@dataclass(frozen=True, slots=True)
class ItemsRequest:
    pass


@dataclass(frozen=True, slots=True)
class DeclarationRequest:
    cls: str
    identifier: str


@dataclass(frozen=True, slots=True)
class StatusRequest:
    report: Mapping[str, Any]
    raw: bytes


Endpoint = TokensRequest | ItemsRequest | DeclarationRequest | StatusRequest


def parse_endpoint(endpoint: str, data: bytes | None) -> Endpoint:
    """The request a DeclarativeManagement check-in makes; ProtocolError (400) otherwise."""
    if endpoint == "tokens":
        return TokensRequest()
    if endpoint == "declaration-items":
        return ItemsRequest()
    if endpoint == "status":
        if not data:
            raise ProtocolError("DeclarativeManagement status: Data (the status report) is missing")
        return StatusRequest(parse_status_data(data), data)
    prefix, _, rest = endpoint.partition("/")
    if prefix == "declaration":
        cls, _, identifier = rest.partition("/")
        if cls not in CLASS_KEYS:
            raise ProtocolError(
                f"DeclarativeManagement: unknown declaration class {cls!r} in Endpoint"
                f" (one of {', '.join(CLASS_KEYS)})"
            )
        if not identifier or len(identifier) > MAX_IDENTIFIER:
            raise ProtocolError("DeclarativeManagement: Endpoint names no declaration identifier")
        return DeclarationRequest(cls, identifier)
    raise ProtocolError(f"DeclarativeManagement: unknown Endpoint {endpoint[:80]!r}")


def parse_status_data(data: bytes) -> Mapping[str, Any]:
    """A status report's JSON, checked for the shape StatusReport requires."""
    try:
        report = json.loads(data)
    except (UnicodeDecodeError, ValueError) as exc:
        raise ProtocolError(f"DeclarativeManagement status: Data is not JSON: {exc}") from None
    except RecursionError:
        raise ProtocolError("DeclarativeManagement status: Data is nested too deeply") from None
    if not isinstance(report, dict):
        raise ProtocolError("DeclarativeManagement status: the report must be a JSON object")
    items = report.get("StatusItems")
    if not isinstance(items, dict):
        raise ProtocolError("DeclarativeManagement status: StatusItems must be an object")
    errors = report.get("Errors", [])
    if not isinstance(errors, list):
        raise ProtocolError("DeclarativeManagement status: Errors must be an array")
    if not isinstance(report.get("FullReport", False), bool):
        raise ProtocolError("DeclarativeManagement status: FullReport must be a boolean")
    return report


# Tokens ------------------------------------------------------------------------------------------


def _digest(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def server_token(declaration_type: str, identifier: str, payload: Mapping[str, Any]) -> str:
    """A declaration's ServerToken: computed over its whole content (Apple's advice)."""
    return _digest({"Type": declaration_type, "Identifier": identifier, "Payload": payload})


@dataclass(frozen=True, slots=True)
class DeclarationItem:
    """One declaration as a channel sees it."""

    identifier: str
    cls: str
    type: str
    server_token: str
    payload: Mapping[str, Any]
    updated_at: datetime


def declarations_token(items: Iterable[DeclarationItem]) -> str:
    """The DeclarationsToken of a set: changes whenever any member or its content does."""
    return _digest(sorted((item.identifier, item.server_token) for item in items))


def timestamp(moment: datetime) -> str:
    """RFC 3339 in UTC, as SyncTokens.Timestamp wants it."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def sync_tokens(items: Sequence[DeclarationItem], epoch: datetime) -> dict[str, Any]:
    """``SyncTokens``: the set's token and when it last changed (``epoch`` when empty)."""
    changed = max((item.updated_at for item in items), default=epoch)
    return {"DeclarationsToken": declarations_token(items), "Timestamp": timestamp(changed)}


def _json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def tokens_response(items: Sequence[DeclarationItem], epoch: datetime) -> bytes:
    return _json({"SyncTokens": sync_tokens(items, epoch)})


def items_response(items: Sequence[DeclarationItem]) -> bytes:
    """DeclarationItemsResponse: every class listed (empty ones too: all four are required)."""
    sections: dict[str, list[dict[str, str]]] = {key: [] for key in CLASS_KEYS.values()}
    for item in sorted(items, key=lambda i: i.identifier):
        sections[CLASS_KEYS[item.cls]].append(
            {"Identifier": item.identifier, "ServerToken": item.server_token}
        )
    return _json({"Declarations": sections, "DeclarationsToken": declarations_token(items)})


def declaration_json(item: DeclarationItem) -> bytes:
    return _json(
        {
            "Type": item.type,
            "Identifier": item.identifier,
            "ServerToken": item.server_token,
            "Payload": item.payload,
        }
    )
