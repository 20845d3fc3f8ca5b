"""The console's tests share the trust tests' emulated devices, keys and policy."""

from tests.trust.conftest import admin, keys, policy, trust  # noqa: F401
