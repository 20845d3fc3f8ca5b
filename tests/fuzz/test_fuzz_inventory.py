"""Fuzzing inventory normalisation: any answer a device sends becomes facts that fit their
columns (or unknown), never an exception, so one odd value never drops the whole answer."""

from __future__ import annotations

import math
from typing import Any

from cryptography.hazmat.primitives import serialization
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Float, Integer, String

from mdmserver.bounds import INT32_MAX, control_character
from mdmserver.crypto.ca import create_ca
from mdmserver.inventory.parse import FIELDS, LIST_FIELDS, PARSERS, parse
from mdmserver.storage.sql.schema import inventory
from tests.fuzz.strategies import FUZZ, mutated, plist_value

# The keys each parser reads, where it reads them.
DEVICE_INFORMATION = [
    "OSVersion", "BuildVersion", "Model", "ModelName", "ProductName", "SerialNumber",
    "DeviceName", "IsSupervised", "IsActivationLockEnabled", "DeviceCapacity",
    "AvailableDeviceCapacity", "BatteryLevel", "SystemIntegrityProtectionEnabled",
]  # fmt: skip
SECURITY_INFO = [
    "HardwareEncryptionCaps", "PasscodePresent", "PasscodeCompliant", "FDE_Enabled",
    "FirewallSettings", "SystemIntegrityProtectionEnabled",
]  # fmt: skip
ENTRY_KEYS = [
    "PayloadIdentifier", "PayloadUUID", "PayloadDisplayName", "IsManaged", "Identifier", "Name",
    "ShortVersion", "Version", "Data", "CommonName", "IsIdentity", "Status",
]  # fmt: skip
_CERT = create_ca("fuzz inventory", key_type="ec")[0].public_bytes(serialization.Encoding.DER)
# Numbers no column holds (beyond 64 bits, beyond a float, digits as text), damaged certificates.
device_value = st.one_of(
    plist_value,
    mutated(_CERT),
    st.integers(min_value=-(10**400), max_value=10**400),
    st.integers(1, 400).map(lambda n: "9" * n),
    st.floats(),
)


def fields(keys: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    return st.dictionaries(st.sampled_from(keys), device_value, max_size=len(keys))


entries = st.lists(fields(ENTRY_KEYS), max_size=3)
answers = st.one_of(
    st.tuples(st.just("DeviceInformation"), fields(DEVICE_INFORMATION).map(
        lambda q: {"QueryResponses": q})),
    st.tuples(st.just("SecurityInfo"), fields(SECURITY_INFO).map(lambda s: {"SecurityInfo": s})),
    st.tuples(st.just("ProfileList"), entries.map(lambda e: {"ProfileList": e})),
    st.tuples(st.just("InstalledApplicationList"), entries.map(
        lambda e: {"InstalledApplicationList": e})),
    st.tuples(st.just("CertificateList"), entries.map(lambda e: {"CertificateList": e})),
    st.tuples(st.just("CertificateList"), st.lists(st.fixed_dictionaries(
        {"Data": mutated(_CERT)}), min_size=1, max_size=2).map(lambda e: {"CertificateList": e})),
    st.tuples(st.just("ManagedApplicationList"), st.dictionaries(
        st.text(max_size=10), fields(["Status"]), max_size=3).map(
        lambda d: {"ManagedApplicationList": d})),
    st.tuples(st.sampled_from(sorted(PARSERS)), st.dictionaries(st.text(max_size=9), device_value)),
)  # fmt: skip


def assert_storable(name: str, value: Any) -> None:
    kind = inventory.c[name].type
    if value is None:
        return
    if isinstance(kind, String):
        assert isinstance(value, str) and len(value) <= (kind.length or math.inf), (name, value)
        assert control_character(value) is None, (name, value)
    elif isinstance(kind, Integer):
        assert isinstance(value, int) and -INT32_MAX - 1 <= value <= INT32_MAX, (name, value)
    elif isinstance(kind, Float):
        assert isinstance(value, float) and math.isfinite(value), (name, value)


@FUZZ
@given(answers)
def test_inventory_normalisation(answer: tuple[str, dict[str, Any]]) -> None:
    request_type, result = answer
    facts = parse(request_type, result)
    assert set(facts) <= set(FIELDS)
    for name, value in facts.items():
        if name in LIST_FIELDS:
            assert isinstance(value, list), (name, value)
        else:
            assert_storable(name, value)
