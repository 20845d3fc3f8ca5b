"""Fixtures of the service-layer unit tests: the device stack on the in-memory ports
(built in memory_stack.py, which the tests import: a module of its own, since every test
folder's conftest is named ``conftest``)."""

from __future__ import annotations

import pytest
from memory_stack import Stack, build_stack

from mdmserver.testing.pki import Pki


@pytest.fixture(scope="session")
def device_ca(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return Pki(tmp_path_factory.mktemp("service-pki"), key_type="ec")


@pytest.fixture
def stack(device_ca: Pki) -> Stack:
    return build_stack(device_ca)
