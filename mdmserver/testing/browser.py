"""Headless Chromium from Debian's packages, driven through its chromedriver (Selenium), for
the console's browser tests and its screenshots.

No browser is downloaded: the binaries are /usr/bin/chromium and /usr/bin/chromedriver
(``apt install chromium chromium-driver``; `.ci/run` installs them when absent). The flags keep
Chromium off the network: it only talks to the server under test.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

CHROMIUM = os.environ.get("MDM_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("MDM_TEST_CHROMEDRIVER", "/usr/bin/chromedriver")


class BrowserMissing(RuntimeError):
    """Chromium or its driver is not installed."""


def missing() -> list[str]:
    return [p for p in (CHROMIUM, CHROMEDRIVER) if not Path(p).is_file()]


@contextmanager
def chromium(width: int = 1280, height: int = 900) -> Iterator[Any]:
    if absent := missing():
        raise BrowserMissing(
            f"{', '.join(absent)} not installed (apt install chromium chromium-driver)"
        )
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="mdm-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
        f"--window-size={width},{height}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
