"""The console's tests share the trust tests' emulated devices, keys and policy; a failing
browser test leaves a screenshot of the page it was on (the path is in the report)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.console.browser import save_screenshot
from tests.trust.conftest import admin, keys, policy, trust  # noqa: F401


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    driver = getattr(item, "funcargs", {}).get("browser")
    if report.when == "call" and report.failed and driver is not None:
        path = save_screenshot(driver, item.name.replace("/", "_"))
        report.sections.append(("screenshot", f"saved {path}"))


PASSWORD = "correct horse battery"


@pytest.fixture
def people(app: Any) -> dict[str, str]:
    """An admin (ada), a help-desk person (hal) and an auditor (aud), all with PASSWORD."""
    from mdmserver.web.runtime import runtime

    users = runtime(app).admin.console_users
    for name, role in (("ada", "admin"), ("hal", "helpdesk"), ("aud", "auditor")):
        users.create(name, role, actor="test", password=PASSWORD)
        users.change_password(name, PASSWORD, actor="test")  # past the first-sign-in change
    return {"admin": "ada", "helpdesk": "hal", "auditor": "aud"}
