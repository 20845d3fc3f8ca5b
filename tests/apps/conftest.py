"""Apps tests: the app talks to a local Apps and Books stand-in (mdmserver/testing/fake_vpp)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest

from mdmserver.testing.fake_vpp import FakeVpp, make_token, serve_fake_vpp
from tests.api.conftest import api  # noqa: F401 (the admin API client fixture)

ADAM_ID = "408709785"


@pytest.fixture
def stoken() -> str:
    return make_token("Example Org", days=200)


@pytest.fixture
def fake_vpp(stoken: str) -> FakeVpp:
    fake = FakeVpp(stoken, pending_polls=2)
    fake.add_asset(ADAM_ID, total=3)
    fake.add_asset("361309726", total=10, device_assignable=False)
    fake.add_asset("377298193", total=5)
    return fake


@pytest.fixture
def vpp_url(fake_vpp: FakeVpp) -> Iterator[str]:
    with serve_fake_vpp(fake_vpp) as url:
        yield url


@pytest.fixture
def app_config(app_config: Any, vpp_url: str) -> Any:
    return dataclasses.replace(
        app_config, vpp_url=vpp_url, server_url="https://mdm.example.com", inventory_on_enroll=False
    )
