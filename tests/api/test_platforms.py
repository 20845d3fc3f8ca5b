"""The platform a device runs, derived from its Authenticate fields (a pure function)."""

from __future__ import annotations

import pytest

from mdmserver.catalog.platforms import platform_of


@pytest.mark.parametrize(
    ("product", "model", "expected"),
    [
        ("iPhone15,2", "iPhone", "iOS"),
        ("iPod9,1", None, "iOS"),
        ("iPad13,1", "iPad", "iOS"),  # iPadOS is "iOS" in Apple's schema
        ("Mac14,2", "MacBookAir", "macOS"),
        ("MacBookPro18,1", None, "macOS"),
        ("iMac21,1", None, "macOS"),
        ("VirtualMac2,1", None, "macOS"),
        ("AppleTV11,1", "AppleTV", "tvOS"),
        ("Watch6,1", None, "watchOS"),
        ("RealityDevice14,1", None, "visionOS"),
        (None, "iPhone", "iOS"),  # only Model known
        (None, None, None),
        ("Toaster1,1", "Toaster", None),
    ],
)
def test_platform_of(product, model, expected):
    assert platform_of(product, model) == expected
