"""The objects one app instance runs with, built once by the app factory."""

from __future__ import annotations

from dataclasses import dataclass

from flask import Flask
from sqlalchemy.engine import Engine

from mdmserver.config import Config
from mdmserver.service.base import MDMService
from mdmserver.storage.base import Storage
from mdmserver.web.device_auth import DeviceAuthenticator

EXTENSION = "mdmserver"


@dataclass
class Runtime:
    config: Config
    engine: Engine
    storage: Storage
    service: MDMService
    authenticator: DeviceAuthenticator


def runtime(app: Flask) -> Runtime:
    return app.extensions[EXTENSION]
