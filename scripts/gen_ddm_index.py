#!/usr/bin/env python3
"""Compile Apple's Declarative Device Management YAML into the index the server ships.

Like scripts/gen_schema_index.py (whose key encoder this reuses) for the MDM schema: the server
never reads ../shared at run time, so this dev tool (it needs PyYAML) distils
declarative/protocol, declarative/declarations and declarative/status into
mdmserver/ddm/schema_index.json, prose dropped, minified with sorted keys (byte-identical on
regeneration).

    python scripts/gen_ddm_index.py [path/to/apple-device-management] [-o OUT]

Index layout (format 1):
  protocol:      {TokensResponse | DeclarationItemsResponse | StatusReport: {os, keys}}
  base:          {os, keys}                  keys every declaration carries (declarationbase)
  declarations:  {<Type>: {os, keys, class}} class: activation, asset, configuration, management
  status:        {<status item>: {os, keys}}
Key nodes are gen_schema_index's (key, type, required, wild, os, enum, min, max, ...), always
inlined (no "defs": DDM's YAML aliases are not recursive). JSON has no <data>: such keys are
base64 strings, encoded as type string with a base64 format. Platform support keeps Apple's
allowed-scopes (system: the device channel, user: the macOS user channel) as "scopes" and
allowed-enrollments as "enrollments".
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from gen_schema_index import PLATFORMS, Encoder, _encode_os, _load, render

REPO = Path(__file__).resolve().parent.parent
DEFAULT_SOURCE = REPO.parent / "shared" / "apple-device-management"
DEFAULT_OUT = REPO / "mdmserver" / "ddm" / "schema_index.json"
FORMAT = 1
CLASSES = ("activations", "assets", "configurations", "management")
BASE64 = r"[A-Za-z0-9+/=\s]*"
TIMESTAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)"  # RFC 3339

Json = Any


def _os(sos: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    """gen_schema_index's support fields plus DDM's scopes and enrollment kinds."""
    out = _encode_os(sos)
    for platform, entry in (sos or {}).items():
        if platform not in PLATFORMS or not isinstance(entry, dict):
            continue
        extra = {}
        if "allowed-scopes" in entry:
            extra["scopes"] = list(entry["allowed-scopes"])
        if "allowed-enrollments" in entry:
            extra["enrollments"] = list(entry["allowed-enrollments"])
        if extra:
            out.setdefault(platform, {}).update(extra)
    return out


def _json_types(nodes: list[Json]) -> list[Json]:
    """<data> travels as base64 text in DDM's JSON."""
    for node in nodes:
        if node["type"] == "data":
            node["type"] = "string"
            node["format"] = BASE64
        if isinstance(node.get("sub"), list):
            _json_types(node["sub"])
    return nodes


def _spec(doc: dict[str, Any]) -> Json:
    encoder = Encoder([])  # never scanned: every list is inlined
    keys = _json_types(encoder.keys(doc.get("payloadkeys") or []))  # type: ignore[arg-type]
    return {"os": _os(doc["payload"].get("supportedOS")), "keys": keys}


def _fix_sync_tokens(index: Json) -> None:
    # tokensresponse.yaml names SyncTokens' shape (subkeytype SynchronizationTokens) without
    # listing it; Apple's documentation of that type gives these two keys.
    (node,) = (n for n in index["protocol"]["TokensResponse"]["keys"] if n["key"] == "SyncTokens")
    node.setdefault(
        "sub",
        [
            {"key": "DeclarationsToken", "required": True, "type": "string"},
            {"key": "Timestamp", "required": True, "type": "string", "format": TIMESTAMP},
        ],
    )


def build_index(source: Path) -> Json:
    ddm = source / "declarative"
    index: dict[str, Json] = {"format": FORMAT}
    index["protocol"] = {
        doc["payload"]["requesttype"]: _spec(doc)
        for doc in (_load(p) for p in sorted((ddm / "protocol").glob("*.yaml")))
    }
    index["base"] = _spec(_load(ddm / "declarations" / "declarationbase.yaml"))
    declarations: dict[str, Json] = {}
    for folder in CLASSES:
        for path in sorted((ddm / "declarations" / folder).glob("*.yaml")):
            doc = _load(path)
            name = doc["payload"].get("declarationtype")
            if name:
                declarations[name] = {**_spec(doc), "class": folder.rstrip("s")}
    index["declarations"] = declarations
    status: dict[str, Json] = {}
    for path in sorted((ddm / "status").glob("*.yaml")):
        doc = _load(path)
        name = doc["payload"].get("statusitemtype")  # statusreason.yaml describes a part
        if name:
            status[name] = _spec(doc)
    index["status"] = status
    _fix_sync_tokens(index)
    return index


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", nargs="?", type=Path, default=DEFAULT_SOURCE)
    parser.add_argument("-o", "--output", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    if not (args.source / "declarative").is_dir():
        parser.error(f"{args.source} does not look like apple-device-management (no declarative/)")
    data = render(build_index(args.source))
    args.output.write_bytes(data)
    print(f"wrote {args.output} ({len(data)} bytes)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
