"""The browser for the console tests: outside CI a machine without Chromium skips them with the
reason; in CI (CI=true) they fail instead, so a green CI means they ran."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mdmserver.testing.browser import chromium, missing

SCREENSHOTS = Path(os.environ.get("MDM_TEST_SCREENSHOTS", tempfile.gettempdir())) / "mdm-console"


def browser_session(width: int = 1280, height: int = 900) -> Iterator[Any]:
    if (absent := missing()) and not os.environ.get("CI"):
        pytest.skip(f"{', '.join(absent)} not installed (apt install chromium chromium-driver)")
    with chromium(width, height) as driver:
        yield driver


def save_screenshot(driver: Any, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    driver.save_screenshot(str(path))
    return path
