"""Profile templates: TOML files in ``profiles/`` with declared, typed variables.

A template is data, not code: a ``[template]`` table (name, description, platforms, whether to
encrypt), one ``[variables.<name>]`` table per variable, the top-level profile keys under
``[profile]`` and the payloads as ``[[payload]]``. Strings may hold ``${name}`` placeholders;
a string that is exactly one placeholder takes the variable's typed value (an integer, a
boolean, certificate bytes), so templates can fill any plist type.

Two families of placeholders are left for later stages on purpose: ``${device.*}`` (filled per
device when the profile is sent, see :mod:`mdmserver.profiles.devicevars`) and ``${uuid:<id>}``
(another payload's PayloadUUID, known only once the builder has hashed the content).
"""

from __future__ import annotations

import base64
import binascii
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_.:-]*)\}")
VARIABLE_TYPES = ("string", "integer", "boolean", "data", "certificate", "array")
LOCAL_ID = "_id"  # a payload's short name inside its template, used by ${uuid:<id>}


class TemplateError(ValueError):
    """A template or the values given for it cannot produce a profile."""


@dataclass(frozen=True)
class Variable:
    name: str
    type: str = "string"
    description: str = ""
    required: bool = False
    default: Any = None
    secret: bool = False  # a password: never printed back by the API or CLI


@dataclass(frozen=True)
class Template:
    name: str
    display_name: str
    description: str
    platforms: tuple[str, ...]
    encrypt: bool
    variables: Mapping[str, Variable]
    profile: Mapping[str, Any]
    payloads: tuple[Mapping[str, Any], ...]
    path: Path | None = field(default=None, compare=False)

    def render(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """The profile dictionary with every template variable filled and typed.

        Unknown variable names and missing required values are refused, naming them."""
        unknown = sorted(set(values) - set(self.variables))
        if unknown:
            raise TemplateError(f"template {self.name!r} has no variable(s) {', '.join(unknown)}")
        typed: dict[str, Any] = {}
        for var in self.variables.values():
            raw = values.get(var.name, var.default)
            if raw is None:
                if var.required:
                    raise TemplateError(f"variable {var.name!r} is required: {var.description}")
                continue
            typed[var.name] = coerce(var, raw)
        ctx = _Context(typed, frozenset(self.variables))
        profile = dict(_fill(self.profile, ctx, "profile"))
        payloads = [_fill(p, ctx, f"payload[{i}]") for i, p in enumerate(self.payloads)]
        profile["PayloadContent"] = payloads
        return _drop_unset(profile)

    def secret_values(self, values: Mapping[str, Any]) -> list[str]:
        """The text of each secret variable's value (given or default) as it lands in the
        profile: what must be sealed at rest and redacted when the content is shown."""
        found = []
        for var in self.variables.values():
            raw = values.get(var.name, var.default)
            if var.secret and raw is not None:
                typed = coerce(var, raw)
                if isinstance(typed, str | int) and not isinstance(typed, bool) and str(typed):
                    found.append(str(typed))
        return found


def coerce(var: Variable, raw: Any) -> Any:
    """A variable's value in its plist type; text from the CLI or JSON is converted."""
    kind = var.type
    try:
        if kind == "string":
            return str(raw)
        if kind == "integer":
            if isinstance(raw, bool):
                raise ValueError("a boolean is not an integer")
            return int(raw)
        if kind == "boolean":
            if isinstance(raw, bool):
                return raw
            text = str(raw).strip().lower()
            if text in {"true", "yes", "1", "on"}:
                return True
            if text in {"false", "no", "0", "off"}:
                return False
            raise ValueError(f"{raw!r} is not true or false")
        if kind == "array":
            return list(raw) if isinstance(raw, list | tuple) else [raw]
        if kind == "certificate":
            return certificate_der(raw)
        if kind == "data":
            return raw if isinstance(raw, bytes) else base64.b64decode(str(raw), validate=True)
    except (ValueError, TypeError, binascii.Error, x509.InvalidVersion) as exc:
        raise TemplateError(f"variable {var.name!r} expects {kind}: {exc}") from None
    raise TemplateError(f"variable {var.name!r} has unknown type {kind!r}")


def certificate_der(raw: str | bytes) -> bytes:
    """DER bytes of a certificate given as PEM text, DER bytes or base64 DER."""
    data = raw.encode() if isinstance(raw, str) else raw
    if data.lstrip().startswith(b"-----BEGIN"):
        cert = x509.load_pem_x509_certificate(data)
    else:
        if isinstance(raw, str):
            data = base64.b64decode(raw, validate=True)
        cert = x509.load_der_x509_certificate(data)
    return cert.public_bytes(serialization.Encoding.DER)


_UNSET = object()


@dataclass(frozen=True)
class _Context:
    typed: Mapping[str, Any]
    declared: frozenset[str]


def _fill(value: Any, ctx: _Context, where: str) -> Any:
    if isinstance(value, str):
        return _fill_string(value, ctx, where)
    if isinstance(value, Mapping):
        return {k: _fill(v, ctx, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, ctx, f"{where}[{i}]") for i, v in enumerate(value)]
    return value


def _deferred(name: str) -> bool:
    return name.startswith(("device.", "uuid:"))


def _fill_string(text: str, ctx: _Context, where: str) -> Any:
    typed = ctx.typed
    whole = PLACEHOLDER.fullmatch(text)
    if whole and not _deferred(whole.group(1)):
        name = whole.group(1)
        if name not in ctx.declared:
            raise TemplateError(f"{where}: ${{{name}}} is not a declared variable")
        # An optional variable left out drops its key rather than sending an empty value.
        return typed.get(name, _UNSET)

    def one(match: re.Match[str]) -> str:
        name = match.group(1)
        if _deferred(name):
            return match.group(0)
        if name not in ctx.declared:
            raise TemplateError(f"{where}: ${{{name}}} is not a declared variable")
        if name not in typed:
            raise TemplateError(f"{where}: ${{{name}}} has no value")
        value = typed[name]
        if isinstance(value, bytes | list | dict):
            raise TemplateError(f"{where}: ${{{name}}} is not text and cannot be embedded")
        return str(value).lower() if isinstance(value, bool) else str(value)

    return PLACEHOLDER.sub(one, text)


def _drop_unset(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_unset(v) for k, v in value.items() if v is not _UNSET}
    if isinstance(value, list):
        return [_drop_unset(v) for v in value if v is not _UNSET]
    return value


def load_template(path: Path) -> Template:
    """Parse one template file, checking its variable declarations."""
    try:
        data = tomllib.loads(path.read_text("utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise TemplateError(f"{path}: {exc}") from None
    meta = data.get("template", {})
    variables = {}
    for name, spec in data.get("variables", {}).items():
        var = Variable(name=name, **spec)
        if var.type not in VARIABLE_TYPES:
            raise TemplateError(f"{path}: variable {name!r} has unknown type {var.type!r}")
        variables[name] = var
    payloads = data.get("payload", [])
    if not payloads:
        raise TemplateError(f"{path}: a template needs at least one [[payload]]")
    return Template(
        name=meta.get("name", path.stem),
        display_name=meta.get("display_name", path.stem),
        description=meta.get("description", ""),
        platforms=tuple(meta.get("platforms", ())),
        encrypt=bool(meta.get("encrypt", False)),
        variables=variables,
        profile=data.get("profile", {}),
        payloads=tuple(payloads),
        path=path,
    )


def default_directory() -> Path:
    """The ``profiles/`` folder at the root of the checkout."""
    return Path(__file__).resolve().parents[2] / "profiles"


def load_templates(directory: Path | None = None) -> dict[str, Template]:
    """Every ``*.toml`` template in `directory`, by name."""
    folder = directory or default_directory()
    found = {}
    for path in sorted(folder.glob("*.toml")):
        template = load_template(path)
        found[template.name] = template
    return found
