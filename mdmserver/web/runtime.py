"""The objects one app instance runs with, built once by the app factory."""

from __future__ import annotations

from dataclasses import dataclass, field

from flask import Flask
from sqlalchemy.engine import Engine

from mdmserver.config import Config
from mdmserver.service.base import MDMService
from mdmserver.service.hooks import Hooks
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
    # Features register what they do when devices answer or enroll (see service/hooks.py).
    hooks: Hooks = field(default_factory=Hooks)


def runtime(app: Flask) -> Runtime:
    return app.extensions[EXTENSION]
