#!/usr/bin/env python3
"""Compile Apple's device-management YAML into the compact index the server ships.

The server must never read ../shared at run time, so this script (a dev tool;
it needs PyYAML) distils mdm/commands, mdm/checkin and mdm/profiles into
mdmserver/catalog/schema_index.json. Prose (titles, descriptions) is dropped;
output is minified with sorted keys so regeneration is byte-identical.

    python scripts/gen_schema_index.py [path/to/apple-device-management] [-o OUT]

Index layout (format 1), every key node being a dict with short fields:
  key, type (string|integer|real|boolean|data|date|dictionary|array|any),
  required, wild (placeholder name matching any key), os (per-platform
  overrides of the parent's support), enum, min, max, default, format,
  valuetype, rep ([min, max] item count when on an array item), combine,
  alt (a second accepted shape), sub (subkeys: a list of nodes, or an int
  index into "defs" when YAML aliases share or recursively reuse a list).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
DEFAULT_SOURCE = REPO.parent / "shared" / "apple-device-management"
DEFAULT_OUT = REPO / "mdmserver" / "catalog" / "schema_index.json"
FORMAT = 1

PLATFORMS = ("iOS", "macOS", "tvOS", "visionOS", "watchOS")
OS_SCALARS = (
    "introduced",
    "deprecated",
    "removed",
    "supervised",
    "requiresdep",
    "devicechannel",
    "userchannel",
    "userapprovedmdm",
    "accessrights",
    "multiple",
    "allowmanualinstall",
)
SHAREDIPAD_FIELDS = ("mode", "devicechannel", "userchannel")
# Dictionary subkeys whose "key" is a stand-in for arbitrary names. Most start
# with "ANY"; the rest are listed here by hand after reading the descriptions.
PLACEHOLDER_KEYS = frozenset({"Category Name"})
# Profiles that describe the profile wrapper itself, not a payload type.
PROFILE_SPECIALS = {"CommonPayloadKeys": "profile_common", "TopLevel": "profile_toplevel"}

Json = Any


def _load(path: Path) -> dict[str, Any]:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with path.open(encoding="utf-8") as fh:
        return yaml.load(fh, Loader=loader)


def _encode_os(sos: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    """Keep the machine-checkable support fields; "all" means every version."""
    out: dict[str, dict[str, Any]] = {}
    for platform, entry in (sos or {}).items():
        if platform not in PLATFORMS or not isinstance(entry, dict):
            continue
        enc = {f: entry[f] for f in OS_SCALARS if f in entry}
        if enc.get("introduced") == "all":
            enc["introduced"] = "0"
        mode = (entry.get("userenrollment") or {}).get("mode")
        if mode:
            enc["userenrollment"] = mode
        ipad = {f: v for f, v in (entry.get("sharedipad") or {}).items() if f in SHAREDIPAD_FIELDS}
        if ipad:
            enc["sharedipad"] = ipad
        if enc:
            out[platform] = enc
    return out


def _is_wild(name: str) -> bool:
    return name == "ANY" or name.startswith("ANY ") or name in PLACEHOLDER_KEYS


class Encoder:
    """Turns one YAML document's key lists into nodes, sharing aliased lists as defs."""

    def __init__(self, defs: list[Json]) -> None:
        self.defs = defs
        self.memo: dict[int, int] = {}
        self.aliased: set[int] = set()

    def scan(self, keys: list[dict[str, Any]] | None) -> None:
        """Find lists PyYAML shared between several places (anchors/aliases)."""
        seen: set[int] = set()
        stack = [keys] if keys else []
        while stack:
            lst = stack.pop()
            if id(lst) in seen:
                self.aliased.add(id(lst))
                continue
            seen.add(id(lst))
            stack.extend(k["subkeys"] for k in lst if k.get("subkeys"))

    def keys(self, lst: list[dict[str, Any]]) -> list[Json] | int:
        if id(lst) not in self.aliased:
            return [self.node(k) for k in lst]
        if id(lst) in self.memo:
            return self.memo[id(lst)]
        index = len(self.defs)
        self.memo[id(lst)] = index
        self.defs.append(None)  # reserved first: the list may contain itself
        self.defs[index] = [self.node(k) for k in lst]
        return index

    def node(self, k: dict[str, Any]) -> Json:
        name = str(k["key"])
        out: dict[str, Json] = {"key": name, "type": k["type"].strip("<>")}
        if k.get("presence") == "required":
            out["required"] = True
        if _is_wild(name):
            out["wild"] = True
        os = _encode_os(k.get("supportedOS"))
        if os:
            out["os"] = os
        if "rangelist" in k:
            out["enum"] = list(k["rangelist"])
        for bound in ("min", "max"):
            if bound in (k.get("range") or {}):
                out[bound] = k["range"][bound]
        if "default" in k:
            out["default"] = k["default"]
        if "format" in k:
            out["format"] = k["format"]
        valuetype = k.get("valuetype") or k.get("subtype")
        if valuetype:
            out["valuetype"] = valuetype.strip("<>")
        if "repetition" in k:
            out["rep"] = [k["repetition"]["min"], k["repetition"]["max"]]
        if "combinetype" in k:
            out["combine"] = k["combinetype"]
        if k.get("subkeys"):
            out["sub"] = self.keys(k["subkeys"])
        return out


def _spec(doc: dict[str, Any], defs: list[Json], *, response: bool) -> Json:
    enc = Encoder(defs)
    for section in ("payloadkeys", "responsekeys"):
        enc.scan(doc.get(section))
    spec: dict[str, Json] = {"os": _encode_os(doc["payload"].get("supportedOS"))}
    spec["keys"] = enc.keys(doc.get("payloadkeys") or [])
    if response and doc.get("responsekeys"):
        spec["response"] = enc.keys(doc["responsekeys"])
    return spec


def _merge_keys(first: list[Json], other: list[Json]) -> list[Json]:
    """Union of two variants' keys; a key is required only if every variant requires it."""
    theirs = {n["key"]: n for n in other}
    mine = {n["key"] for n in first}
    merged = []
    for node in first:
        twin = theirs.get(node["key"])
        if twin is None:
            node = {k: v for k, v in node.items() if k != "required"}
        elif isinstance(node.get("sub"), list) and isinstance(twin.get("sub"), list):
            node = {**node, "sub": _merge_keys(node["sub"], twin["sub"])}
        merged.append(node)
    merged += [
        {k: v for k, v in n.items() if k != "required"} for n in other if n["key"] not in mine
    ]
    return merged


def _documents(folder: Path) -> Iterator[tuple[Path, dict[str, Any]]]:
    for path in sorted(folder.glob("*.yaml")):
        yield path, _load(path)


def _variant_order(item: tuple[Path, dict[str, Any]]) -> tuple[bool, str]:
    """The file named exactly after the payload type is the primary variant."""
    path, doc = item
    return (path.stem != doc["payload"]["payloadtype"], path.name)


def _find(index: Json, spec: tuple[str, ...], *names: str) -> dict[str, Json] | None:
    """A key node by spec location and key names; None if this source lacks it."""
    entry: Json = index
    for part in spec:
        entry = entry.get(part) if isinstance(entry, dict) else None
    keys = entry["keys"] if entry else []
    node = None
    for name in names:
        keys = index["defs"][keys] if isinstance(keys, int) else keys
        node = next((n for n in keys if n["key"] == name), None)
        if node is None:
            return None
        keys = node.get("sub", [])
    return node


def _fix_access_rights(index: Json) -> None:
    # The prose lists 13 bit flags (1 ... 4096) and says "Don't set to '0'".
    node = _find(index, ("profiles", "com.apple.mdm"), "AccessRights")
    if node is not None:
        node.update(min=1, max=8191)


def _fix_scep_subject_alt_name(index: Json) -> None:
    # errata.md: these may be a string or an array of strings; YAML can say only one.
    for name in ("rfc822Name", "dNSName", "uniformResourceIdentifier"):
        where = ("PayloadContent", "SubjectAltName", name)
        node = _find(index, ("profiles", "com.apple.security.scep"), *where)
        if node is not None:
            node["alt"] = {"key": name, "type": "array", "sub": [{"key": "item", "type": "string"}]}


def _fix_consent_text(index: Json) -> None:
    # ConsentText maps language codes to text; the YAML nests a spurious
    # ConsentTextItem dictionary between the two.
    node = _find(index, ("profile_toplevel",), "ConsentText")
    inner = node["sub"] if node is not None else None
    if isinstance(inner, list) and len(inner) == 1 and inner[0]["key"] == "ConsentTextItem":
        node["sub"] = inner[0]["sub"]


FIXUPS: tuple[Callable[[Json], None], ...] = (
    _fix_access_rights,
    _fix_scep_subject_alt_name,
    _fix_consent_text,
)


def build_index(source: Path) -> Json:
    """The whole index as plain JSON-able data."""
    mdm = source / "mdm"
    defs: list[Json] = []
    index: dict[str, Json] = {"format": FORMAT, "defs": defs}
    for section, folder in (("commands", "commands"), ("checkin", "checkin")):
        index[section] = {
            doc["payload"]["requesttype"]: _spec(doc, defs, response=True)
            for _, doc in _documents(mdm / folder)
        }
    profiles: dict[str, Json] = {}
    for _, doc in sorted(_documents(mdm / "profiles"), key=_variant_order):
        name = doc["payload"]["payloadtype"]
        spec = _spec(doc, defs, response=False)
        if name in PROFILE_SPECIALS:
            index[PROFILE_SPECIALS[name]] = spec
        elif name in profiles:
            # Several files describe facets of one type (com.apple.MCX and the
            # Kerberos flavour of com.apple.extensiblesso): one spec takes all.
            first = profiles[name]
            first["keys"] = _merge_keys(first["keys"], spec["keys"])
        else:
            profiles[name] = spec
    index["profiles"] = profiles
    for fix in FIXUPS:
        fix(index)
    return index


def render(index: Json) -> bytes:
    text = json.dumps(index, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return (text + "\n").encode("ascii")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", nargs="?", type=Path, default=DEFAULT_SOURCE)
    parser.add_argument("-o", "--output", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    if not (args.source / "mdm").is_dir():
        parser.error(f"{args.source} does not look like apple-device-management (no mdm/)")
    data = render(build_index(args.source))
    args.output.write_bytes(data)
    print(f"wrote {args.output} ({len(data)} bytes)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
