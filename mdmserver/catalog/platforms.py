"""Which Apple platform a device runs, from what its Authenticate message says.

Apple's schema names five platforms; an iPad is "iOS" there (iPadOS shares iOS's command set).
The prefixes are also what the device list filters on in SQL, so both agree by construction.
"""

from __future__ import annotations

from mdmserver.catalog.schema import PLATFORMS, Platform

__all__ = ["PLATFORM_PREFIXES", "platform_of"]

# ProductName (e.g. "iPhone15,2", "MacBookPro18,1", "iMac21,1") or Model starts with one of these.
PLATFORM_PREFIXES: dict[Platform, tuple[str, ...]] = {
    "iOS": ("iPhone", "iPad", "iPod"),
    "macOS": ("Mac", "iMac", "VirtualMac"),
    "tvOS": ("AppleTV",),
    "watchOS": ("Watch",),
    "visionOS": ("RealityDevice",),
}
assert set(PLATFORM_PREFIXES) == set(PLATFORMS)


def platform_of(product_name: str | None, model: str | None = None) -> Platform | None:
    """The platform, or None when neither field is recognised (no guessing: None is allowed
    everything the schema allows for any platform, and says so)."""
    for value in (product_name, model):
        if not value:
            continue
        for platform, prefixes in PLATFORM_PREFIXES.items():
            if value.startswith(prefixes):
                return platform
    return None
