"""The device side of profile tests: answers commands and remembers what it installed."""

from __future__ import annotations

import plistlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import insert

from mdmserver.storage.sql.schema import device_tags
from mdmserver.testing.http import command_of, send
from mdmserver.web.runtime import runtime
from tests.profiles.conftest import openssl_verify

ENROLLMENT_PROFILE = {
    "PayloadIdentifier": "com.example.enroll",
    "PayloadUUID": "ENROLL-UUID",
    "PayloadContent": [
        {"PayloadType": "com.apple.mdm"},
        {"PayloadType": "com.apple.security.scep"},
    ],
}


class Phone:
    """Polls over real HTTP, verifies every profile's signature with openssl, keeps them."""

    def __init__(self, server: str, device: Any, ca_file: Path) -> None:
        self.server, self.device, self.ca_file = server, device, ca_file
        self.installed: dict[str, dict] = {}

    def enroll(self, app: Any, tags: tuple[str, ...] = ()) -> None:
        send(self.server, self.device.authenticate())
        with runtime(app).engine.begin() as conn:
            for tag in tags:
                conn.execute(
                    insert(device_tags).values(
                        device_id=self.device.udid, tag=tag, created_at=datetime.now(UTC)
                    )
                )
        send(self.server, self.device.token_update())

    def profile_of(self, command: dict) -> dict:
        signed = command["Command"]["Payload"]
        return plistlib.loads(openssl_verify(signed, self.ca_file))

    def run(self, refuse: set[str] = frozenset()) -> list[dict]:
        """Poll and answer every command until the queue is empty; returns the commands."""
        seen = []
        reply = send(self.server, self.device.idle())
        while reply.content:
            command = command_of(reply)
            seen.append(command)
            reply = send(self.server, self.answer(command, refuse))
        return seen

    def answer(self, command: dict, refuse: set[str]) -> Any:
        uuid, body = command["CommandUUID"], command["Command"]
        kind = body["RequestType"]
        if kind == "InstallProfile":
            profile = self.profile_of(command)
            if profile["PayloadIdentifier"] in refuse:
                chain = [{"ErrorCode": 4001, "ErrorDomain": "MCProfileErrorDomain",
                          "LocalizedDescription": "Profile installation failed.",
                          "USEnglishDescription": "Profile installation failed."}]  # fmt: skip
                return self.device.result("Error", uuid, ErrorChain=chain)
            self.installed[profile["PayloadIdentifier"]] = profile
        elif kind == "RemoveProfile":
            self.installed.pop(body["Identifier"], None)
        elif kind == "ProfileList":
            listing = [
                {"PayloadIdentifier": i, "PayloadUUID": p["PayloadUUID"], "PayloadContent": []}
                for i, p in self.installed.items()
            ]
            return self.device.result(
                "Acknowledged", uuid, ProfileList=[*listing, ENROLLMENT_PROFILE]
            )
        return self.device.result("Acknowledged", uuid)
