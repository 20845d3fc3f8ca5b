"""What a simulated fleet looks like: models, OS versions, serial numbers and UDIDs.

Values follow the shapes real devices report (ProductName prefixes decide the platform on the
server, iOS UDIDs are ``XXXXXXXX-XXXXXXXXXXXXXXXX`` since the A12, Macs send a UUID), so the
server's platform rules and inventory parsing see what they would see in production.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass

SERIAL_ALPHABET = "0123456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # Apple skips I and O

# (ProductName, ModelName, Model, marketing name)
IOS_MODELS = (
    ("iPhone15,2", "iPhone", "MQ0T3LL/A", "iPhone 14 Pro"),
    ("iPhone14,5", "iPhone", "MLMH3LL/A", "iPhone 13"),
    ("iPhone16,1", "iPhone", "MTUV3LL/A", "iPhone 15 Pro"),
    ("iPad13,18", "iPad", "MPQ03LL/A", "iPad (10th generation)"),
)
IOS_VERSIONS = (("16.7.8", "20H343"), ("17.4", "21E219"), ("17.5.1", "21F90"), ("18.0", "22A3354"))
MACOS_MODELS = (
    ("Mac14,2", "MacBook Air", "Mac14,2", "MacBook Air (M2, 2022)"),
    ("MacBookPro18,3", "MacBook Pro", "MacBookPro18,3", "MacBook Pro (14-inch, 2021)"),
    ("Mac14,13", "Mac Studio", "Mac14,13", "Mac Studio (2023)"),
)
MACOS_VERSIONS = (("13.6.6", "22G630"), ("14.4.1", "23E224"), ("14.5", "23F79"), ("15.0", "24A335"))


@dataclass(frozen=True)
class DeviceSpec:
    """The hardware and OS one simulated device claims to be."""

    platform: str  # "iOS" or "macOS", as the server's catalog names them
    udid: str
    serial_number: str
    product_name: str
    model_name: str
    model: str
    marketing_name: str
    os_version: str
    build_version: str
    capacity_gb: float

    @property
    def device_name(self) -> str:
        return f"{self.model_name} {self.serial_number[-4:]}"


def make_specs(count: int, *, macos_share: float = 0.3, seed: int = 0) -> list[DeviceSpec]:
    """``count`` devices, about ``macos_share`` of them Macs, reproducible for a given seed."""
    if not 0.0 <= macos_share <= 1.0:
        raise ValueError("macos_share must be between 0 and 1")
    rng = random.Random(seed)
    macs = round(count * macos_share)
    kinds = ["macOS"] * macs + ["iOS"] * (count - macs)
    rng.shuffle(kinds)
    return [_spec(rng, platform) for platform in kinds]


def _spec(rng: random.Random, platform: str) -> DeviceSpec:
    if platform == "macOS":
        product, name, model, marketing = rng.choice(MACOS_MODELS)
        version, build = rng.choice(MACOS_VERSIONS)
        udid = str(uuid.UUID(int=rng.getrandbits(128), version=4)).upper()
        capacity = rng.choice((245.1, 494.38, 994.66))
    else:
        product, name, model, marketing = rng.choice(IOS_MODELS)
        version, build = rng.choice(IOS_VERSIONS)
        udid = f"{rng.getrandbits(32):08X}-{rng.getrandbits(64):016X}"
        capacity = rng.choice((119.1, 238.3, 476.7))
    serial = "".join(rng.choice(SERIAL_ALPHABET) for _ in range(10 if platform == "iOS" else 12))
    return DeviceSpec(
        platform=platform,
        udid=udid,
        serial_number=serial,
        product_name=product,
        model_name=name,
        model=model,
        marketing_name=marketing,
        os_version=version,
        build_version=build,
        capacity_gb=capacity,
    )
