"""Encrypting a built profile to one device: EncryptedPayloadContent.

Apple's form: the PayloadContent array, written as a plist, wrapped in CMS EnvelopedData for
the device's identity certificate, stored under EncryptedPayloadContent with IsEncrypted set.
The top-level keys (identifier, UUID, names) stay readable so the device can list the profile.
"""

from __future__ import annotations

import plistlib
from typing import Any

from cryptography import x509

from mdmserver.crypto.cms_encrypt import encrypt_to
from mdmserver.profiles.builder import dumps


def encrypt_profile(content: bytes, recipient: x509.Certificate) -> bytes:
    """The profile XML with its payloads encrypted to `recipient`."""
    profile: dict[str, Any] = plistlib.loads(content)
    payloads = profile.pop("PayloadContent", [])
    inner = plistlib.dumps(payloads, fmt=plistlib.FMT_XML, sort_keys=True)
    profile["EncryptedPayloadContent"] = encrypt_to(inner, recipient)
    profile["IsEncrypted"] = True
    return dumps(profile)
