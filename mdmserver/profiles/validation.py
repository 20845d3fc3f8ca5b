"""Checking a profile before anything is stored, and reading uploaded .mobileconfig files.

Uploaded files may be signed (CMS SignedData, DER or PEM) or plain XML plists. A signature on
an upload is not trusted or kept: the content is taken out, validated like any template, and
signed again by this server, so devices only ever see our signer.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

from asn1crypto import cms

from mdmserver.catalog.validate import ValidationError, validate_profile
from mdmserver.errors import Unprocessable
from mdmserver.profiles.devicevars import unknown_names
from mdmserver.protocol.errors import ProtocolError
from mdmserver.protocol.plist import loads

MDM_PAYLOAD = "com.apple.mdm"
MAX_PROFILE_BYTES = 4 * 1024 * 1024


class ProfileRefused(Unprocessable, ValueError):
    """The profile cannot be managed; `errors` name the key paths."""

    def __init__(self, errors: list[ValidationError]) -> None:
        self.errors = errors
        shown = "; ".join(str(e) for e in errors[:5])
        more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
        super().__init__(f"profile refused: {shown}{more}")
        self.extra["problems"] = [{"path": e.path, "message": e.message} for e in errors]


def unwrap(data: bytes) -> bytes:
    """The plist inside a .mobileconfig: as is, or taken out of a CMS SignedData."""
    head = data.lstrip()[:64]
    if head.startswith((b"<?xml", b"<plist", b"<!DOCTYPE")):
        return data
    if head.startswith(b"-----BEGIN"):
        lines = [ln for ln in data.strip().splitlines() if not ln.startswith(b"-----")]
        data = base64.b64decode(b"".join(lines))
    try:
        info = cms.ContentInfo.load(data)
        if info["content_type"].native != "signed_data":
            raise ValueError(f"CMS {info['content_type'].native}, not signed data")
        content = info["content"]["encap_content_info"]["content"].native
    except ValueError as exc:
        raise ProfileRefused(
            [ValidationError("", f"not an XML plist nor a CMS-signed profile: {exc}")]
        ) from None
    if not isinstance(content, bytes):
        raise ProfileRefused([ValidationError("", "the signed profile carries no content")])
    return content


def parse(data: bytes) -> dict[str, Any]:
    """The profile dictionary of an uploaded file, refusing what is not a plist dictionary."""
    try:
        profile = loads(unwrap(data), max_bytes=MAX_PROFILE_BYTES)
    except ProtocolError as exc:
        raise ProfileRefused([ValidationError("", str(exc))]) from None
    return profile


def check(profile: Mapping[str, Any], content: bytes | None = None) -> list[ValidationError]:
    """Every finding for a built profile: Apple's schema plus this server's own rules."""
    findings = list(validate_profile(profile))
    if "EncryptedPayloadContent" in profile:
        findings.append(
            ValidationError(
                "EncryptedPayloadContent",
                "upload the plain profile: encrypted content cannot be validated"
                " (the server encrypts to each device itself)",
            )
        )
    contents = profile.get("PayloadContent")
    seen: dict[str, str] = {}
    for index, payload in enumerate(contents if isinstance(contents, list) else []):
        if not isinstance(payload, Mapping):
            continue
        where = f"PayloadContent[{index}]"
        if payload.get("PayloadType") == MDM_PAYLOAD:
            findings.append(
                ValidationError(
                    f"{where}.PayloadType", "the MDM enrollment profile is never managed here"
                )
            )
        payload_uuid = payload.get("PayloadUUID")
        if isinstance(payload_uuid, str):
            if payload_uuid in seen:
                findings.append(
                    ValidationError(f"{where}.PayloadUUID", f"same UUID as {seen[payload_uuid]}")
                )
            seen[payload_uuid] = where
    if content is not None:
        for name in sorted(unknown_names(content)):
            findings.append(ValidationError("", f"unknown device variable ${{device.{name}}}"))
    return findings


def errors_only(findings: list[ValidationError]) -> list[ValidationError]:
    return [f for f in findings if f.severity == "error"]


def assert_manageable(
    profile: Mapping[str, Any], content: bytes | None = None
) -> list[ValidationError]:
    """Raise ProfileRefused on any error; return the warnings for display."""
    findings = check(profile, content)
    errors = errors_only(findings)
    if errors:
        raise ProfileRefused(errors)
    return [f for f in findings if f.severity == "warning"]
