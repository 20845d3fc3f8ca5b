"""Refusals the device service raises, each of a kind of mdmserver/errors.py; the web layer
answers each with its kind's status (web/errors.py, for the bare-WSGI device endpoints and the
Flask routes alike).

Devices never get a 401: an MDM client may treat it as "unenroll me". Refusals of identity
are 403, malformed input is 400, and UserAuthenticate's decline is Apple's documented 410.
"""

from __future__ import annotations

from mdmserver.errors import DomainError, Kind


class DeviceRequestError(DomainError):
    """A refused device request (the base the device endpoints catch)."""

    kind = Kind.INVALID


class BadDeviceRequest(DeviceRequestError):
    kind = Kind.INVALID


class DeviceForbidden(DeviceRequestError):
    kind = Kind.FORBIDDEN


class UnknownDevice(DeviceForbidden):
    """A request for an enrollment we do not have (never authenticated, or checked out)."""


class NotSupported(DeviceRequestError):
    """A check-in this server does not handle yet; a 4xx the device copes with, never a crash."""

    kind = Kind.INVALID


class Declined(DeviceRequestError):
    kind = Kind.GONE


class DeviceUnavailable(DeviceRequestError):
    """What the device asks for needs a part of this server that is not set up (503)."""

    kind = Kind.UNAVAILABLE
