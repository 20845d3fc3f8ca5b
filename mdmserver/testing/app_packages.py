"""Small but well-formed app files for tests and the demo: an ``.ipa`` (a zip with
``Payload/<name>.app/Info.plist``) and a distribution ``.pkg`` (a xar archive whose
zlib-compressed XML table of contents lists a Distribution file and, when signed, a
signature element), each with some payload bytes so manifests have real chunks to hash.
"""

from __future__ import annotations

import io
import plistlib
import struct
import zipfile
import zlib

_XAR_HEADER = struct.Struct(">4sHHQQI")


def make_ipa(bundle_id: str, version: str = "1.0", payload: bytes = b"\0" * 4096) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        info = {"CFBundleIdentifier": bundle_id, "CFBundleShortVersionString": version}
        archive.writestr("Payload/Example.app/Info.plist", plistlib.dumps(info))
        archive.writestr("Payload/Example.app/Example", payload)
    return out.getvalue()


def make_pkg(
    *, signed: bool = True, distribution: bool = True, payload: bytes = b"\1" * 4096
) -> bytes:
    files = "<file id='1'><name>Distribution</name></file>" if distribution else ""
    files += "<file id='2'><name>Payload</name></file>"
    signature = (
        "<signature style='RSA'><offset>0</offset><size>256</size></signature>" if signed else ""
    )
    toc = f"<?xml version='1.0'?><xar><toc>{signature}{files}</toc></xar>".encode()
    compressed = zlib.compress(toc)
    header = _XAR_HEADER.pack(b"xar!", _XAR_HEADER.size, 1, len(compressed), len(toc), 1)
    return header + compressed + payload
