"""The protocol-core tests check the command loop itself ("nothing queued: empty body"), so
features that queue commands on enrollment (issue #7's inventory) are switched off here; their
own tests (tests/trust) run with it on."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest


@pytest.fixture
def app_config(app_config: Any) -> Any:
    return dataclasses.replace(app_config, inventory_on_enroll=False)
