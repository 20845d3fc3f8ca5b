"""What an app in the catalog is, and the checks a new one must pass before anything is stored.

Three kinds, as issue #17 names them:

* ``app_store``: an App Store app, by Adam ID (iTunes Store ID) and bundle id;
* ``ios_inhouse``: an in-house iOS app, an ``.ipa`` (a zip whose ``Payload/<name>.app``
  carries the Info.plist that names its bundle id and version);
* ``macos_pkg``: a signed distribution package, a xar archive whose table of contents has a
  ``Distribution`` file and a signature.

In-house apps and packages are either uploaded (the server keeps the file and builds the
manifest) or referenced by the URL of a manifest the admin hosts.
"""

from __future__ import annotations

import io
import plistlib
import re
import struct
import zipfile
import zlib
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit
from xml.etree import ElementTree

KINDS = ("app_store", "ios_inhouse", "macos_pkg")
FILE_KINDS = ("ios_inhouse", "macos_pkg")
BEHAVIOURS = ("required", "available")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_BUNDLE_ID = re.compile(r"^[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")
_ADAM_ID = re.compile(r"^[0-9]{1,20}$")
_XAR_MAGIC = b"xar!"
_XAR_HEADER = struct.Struct(">4sHHQQI")
MAX_TOC = 16 * 1024 * 1024


class CatalogError(ValueError):
    """A new app (or one of its fields) is refused; the message names the field."""


@dataclass(frozen=True, slots=True)
class PackageFacts:
    """What the file itself says about the app it carries."""

    bundle_id: str | None
    version: str | None


RESERVED_NAMES = frozenset({"upload", "vpp"})  # path segments of /api/v1/apps


def check_name(name: Any) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise CatalogError(
            "name: 1-128 letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    if name in RESERVED_NAMES:
        raise CatalogError(f"name: {name!r} is reserved")
    return name


def check_kind(kind: Any) -> str:
    if kind not in KINDS:
        raise CatalogError(f"kind: one of {', '.join(KINDS)}")
    return str(kind)


def check_bundle_id(bundle_id: Any) -> str:
    if not isinstance(bundle_id, str) or len(bundle_id) > 255 or not _BUNDLE_ID.match(bundle_id):
        raise CatalogError("bundle_id: a reverse-DNS identifier such as com.example.app")
    return bundle_id


def check_adam_id(adam_id: Any) -> str:
    value = str(adam_id) if isinstance(adam_id, int) and not isinstance(adam_id, bool) else adam_id
    if not isinstance(value, str) or not _ADAM_ID.match(value):
        raise CatalogError("adam_id: the App Store (iTunes Store) ID, digits only")
    return value


def check_version(version: Any) -> str | None:
    if version is None:
        return None
    if not isinstance(version, str) or not 0 < len(version) <= 64:
        raise CatalogError("version: a string of at most 64 characters")
    return version


def check_behaviour(behaviour: Any) -> str:
    if behaviour not in BEHAVIOURS:
        raise CatalogError(f"behaviour: one of {', '.join(BEHAVIOURS)}")
    return str(behaviour)


def check_https_url(field: str, url: Any) -> str:
    """Devices fetch manifests and packages over https only (Apple requires it)."""
    if not isinstance(url, str) or len(url) > 2048:
        raise CatalogError(f"{field}: an https:// URL")
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname or any(c.isspace() for c in url):
        raise CatalogError(f"{field}: an https:// URL with a host")
    return url


def inspect_file(kind: str, data: bytes) -> PackageFacts:
    """Check an uploaded file is what its kind says; what it names, for the manifest."""
    if kind == "ios_inhouse":
        return _inspect_ipa(data)
    if kind == "macos_pkg":
        return _inspect_pkg(data)
    raise CatalogError(f"kind: {kind} apps have no file")


def _inspect_ipa(data: bytes) -> PackageFacts:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise CatalogError("file: an .ipa is a zip archive; this is not one") from None
    with archive:
        names = [
            n
            for n in archive.namelist()
            if re.fullmatch(r"Payload/[^/]+\.app/Info\.plist", n) is not None
        ]
        if len(names) != 1:
            raise CatalogError("file: an .ipa holds exactly one Payload/<name>.app/Info.plist")
        try:
            info = plistlib.loads(archive.read(names[0]))
        except (plistlib.InvalidFileException, ValueError, zipfile.BadZipFile) as exc:
            raise CatalogError(f"file: Info.plist is unreadable: {exc}") from None
    if not isinstance(info, dict) or not isinstance(info.get("CFBundleIdentifier"), str):
        raise CatalogError("file: Info.plist has no CFBundleIdentifier")
    version = info.get("CFBundleShortVersionString") or info.get("CFBundleVersion")
    return PackageFacts(info["CFBundleIdentifier"], version if isinstance(version, str) else None)


def _inspect_pkg(data: bytes) -> PackageFacts:
    """A distribution package is a xar archive; its zlib-compressed XML table of contents
    lists a ``Distribution`` file, and a signed one carries a ``signature`` element."""
    if len(data) < _XAR_HEADER.size or data[:4] != _XAR_MAGIC:
        raise CatalogError("file: a .pkg is a xar archive (it starts with 'xar!'); this is not")
    _, header_size, _, toc_compressed, _, _ = _XAR_HEADER.unpack_from(data)
    if header_size < _XAR_HEADER.size or toc_compressed > MAX_TOC:
        raise CatalogError("file: the xar header is malformed")
    try:
        toc_xml = zlib.decompress(data[header_size : header_size + toc_compressed])
        toc = ElementTree.fromstring(toc_xml)
    except (zlib.error, ElementTree.ParseError) as exc:
        raise CatalogError(f"file: the xar table of contents is unreadable: {exc}") from None
    top = toc.find("toc")
    if top is None:
        raise CatalogError("file: the xar table of contents has no <toc>")
    names = {el.text for el in top.findall("file/name")}
    if "Distribution" not in names:
        raise CatalogError(
            "file: not a distribution package (no Distribution file): build it with "
            "productbuild, which InstallEnterpriseApplication needs"
        )
    if top.find("signature") is None and top.find("x-signature") is None:
        raise CatalogError("file: the package is not signed (sign it with productsign)")
    return PackageFacts(None, None)
