"""Refusals the service layer raises; the HTTP layer turns each into its status code.

Devices never get a 401: an MDM client may treat it as "unenroll me". Refusals of identity
are 403, malformed input is 400, and UserAuthenticate's decline is Apple's documented 410.
"""

from __future__ import annotations


class DeviceRequestError(Exception):
    status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadDeviceRequest(DeviceRequestError):
    status = 400


class DeviceForbidden(DeviceRequestError):
    status = 403


class UnknownDevice(DeviceForbidden):
    """A request for an enrollment we do not have (never authenticated, or checked out)."""


class NotSupported(DeviceRequestError):
    """A check-in this server does not handle yet; a 4xx the device copes with, never a crash."""

    status = 400


class Declined(DeviceRequestError):
    status = 410
