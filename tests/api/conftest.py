"""Fixtures for the admin API: keys of each scope, and devices enrolled straight in storage."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from mdmserver.protocol.enrollment_id import EnrollmentIdentity, EnrollmentType
from mdmserver.storage.base import DeviceRecord, TokenRecord
from mdmserver.testing.pki import TEST_TOPIC
from mdmserver.web.runtime import runtime

PRODUCTS = {
    "iOS": ("iPhone15,2", "iPhone"),
    "iPadOS": ("iPad13,1", "iPad"),
    "macOS": ("Mac14,2", "MacBookAir"),
    "tvOS": ("AppleTV11,1", "AppleTV"),
}


class Api:
    """A test client that sends the key, and the helpers tests share."""

    def __init__(self, app: Any, key: str) -> None:
        self.app = app
        self.client = app.test_client()
        self.key = key

    def headers(self, key: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {key or self.key}"}

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.client.get(path, headers=self.headers(kwargs.pop("key", None)), **kwargs)

    def post(self, path: str, body: Any = None, **kwargs: Any) -> Any:
        key = kwargs.pop("key", None)
        return self.client.post(path, json=body, headers=self.headers(key), **kwargs)

    def delete(self, path: str, **kwargs: Any) -> Any:
        return self.client.delete(path, headers=self.headers(kwargs.pop("key", None)), **kwargs)

    def enroll(
        self,
        platform: str = "iOS",
        *,
        os_version: str = "17.4",
        serial: str | None = None,
        unlock_token: bytes | None = b"unlock",
        active: bool = True,
    ) -> str:
        """A device authenticated (and, when active, token-updated) directly in storage."""
        storage = runtime(self.app).storage
        udid = str(uuid.uuid4()).upper()
        product, model = PRODUCTS[platform]
        identity = EnrollmentIdentity(EnrollmentType.DEVICE, udid)
        storage.authenticate(
            DeviceRecord(
                device_id=udid,
                user_enrollment=False,
                topic=TEST_TOPIC,
                serial_number=serial or f"SN{udid[:10]}",
                model=model,
                product_name=product,
                os_version=os_version,
                build_version="21E219",
            ),
            identity,
        )
        if active:
            storage.token_update(
                TokenRecord(identity, TEST_TOPIC, "ab" * 32, "magic", unlock_token=unlock_token)
            )
        return udid


def make_key(app: Any, name: str, scope: str = "admin") -> str:
    return runtime(app).admin.api_keys.create(name, scope, actor="test").key


@pytest.fixture
def api(app: Any) -> Api:
    return Api(app, make_key(app, "test-admin"))


def state(app: Any) -> dict[str, Any]:
    """Every table but the audit log (a refusal is audited; nothing else may change)."""
    from mdmserver.testing.http import snapshot

    found = snapshot(runtime(app).engine)
    found.pop("audit_log")
    return found


def last_audit(app: Any) -> Any:
    entries = runtime(app).admin.store.audit_entries(limit=1)
    return entries[0] if entries else None
