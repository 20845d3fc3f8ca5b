"""Simulated Apple devices that enroll and answer commands over the real protocol.

``Fleet`` runs many of them in one process; ``FakeApple`` is the stand-in for Apple's push
service they are woken through; each device's apps are a ``DeviceApps``. Used by
``mdmserver simulate``, ``mdmserver demo``, the fleet benchmark and tests.
"""

from mdmserver.simulator.answers import Behaviour
from mdmserver.simulator.apple import FakeApple
from mdmserver.simulator.apps import DeviceApps, StoreApp
from mdmserver.simulator.catalog import DeviceSpec, make_specs
from mdmserver.simulator.device import EnrollmentFailed, SimDevice
from mdmserver.simulator.fleet import EnrollReport, Fleet, FleetOptions

__all__ = [
    "Behaviour",
    "DeviceApps",
    "DeviceSpec",
    "EnrollReport",
    "EnrollmentFailed",
    "FakeApple",
    "Fleet",
    "FleetOptions",
    "SimDevice",
    "StoreApp",
    "make_specs",
]
