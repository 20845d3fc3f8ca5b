"""The one way the web layer reaches the server it serves: ``runtime(app)``.

``create_app`` (web/app.py) builds the :class:`~mdmserver.assembly.Server` once and keeps it on
the app, an :class:`MDMApp`, beside the web layer's own device authenticator. Views call
``runtime(current_app).profiles``, ``.inventory``, ``.ddm``... (typed attributes, never string
keys in ``app.extensions``).
"""

from __future__ import annotations

from typing import cast

from flask import Flask

from mdmserver.assembly import Server
from mdmserver.web.device_auth import DeviceAuthenticator


class MDMApp(Flask):
    """The Flask app of one server."""

    server: Server
    # Who is speaking on a device request (the Mdm-Signature header or a proxy's certificate).
    authenticator: DeviceAuthenticator


def runtime(app: Flask) -> Server:
    """The server this app serves."""
    return cast(MDMApp, app).server


def device_authenticator(app: Flask) -> DeviceAuthenticator:
    """The app's device authenticator (a web concern: it reads HTTP headers)."""
    return cast(MDMApp, app).authenticator
