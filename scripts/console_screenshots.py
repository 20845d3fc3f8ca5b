#!/usr/bin/env python3
"""Screenshots of the console for the README: the dashboard, the device list and a device's
page, at 1280 px and at phone width, on a seeded fleet of 2,000 devices (headless Chromium).

    python scripts/console_screenshots.py            # writes docs/console-*.png
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from selenium.webdriver.common.by import By

from mdmserver.app import create_app
from mdmserver.config import load_config
from mdmserver.protocol.commands import new_command
from mdmserver.testing.browser import chromium
from mdmserver.testing.http import serve
from mdmserver.testing.seed import seed_fleet
from mdmserver.web.runtime import runtime

DOCS = Path(__file__).resolve().parent.parent / "docs"
PASSWORD = "screenshot-password"
SIZES = {"1280": (1280, 1000), "phone": (390, 844)}


def main() -> None:
    DOCS.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'shots.db'}"
        device_id = seed_fleet(url, 2000)
        config = load_config(
            overrides={"database_url": url, "home": Path(tmp) / "home", "log_level": "WARNING"}
        )
        app = create_app(config)
        rt = runtime(app)
        assert rt.admin is not None
        rt.admin.console_users.create("alice", "admin", actor="docs", password=PASSWORD)
        rt.admin.console_users.change_password("alice", PASSWORD, actor="docs")
        rt.storage.enqueue(new_command("DeviceLock", {"Message": "Call IT"}), [device_id])
        try:
            with serve(app) as base:
                site = base.replace("127.0.0.1", "localhost")
                pages = {
                    "dashboard": "/",
                    "devices": "/devices?compliance=noncompliant",
                    "device": f"/devices/{device_id}",
                }
                for size, (width, height) in SIZES.items():
                    with chromium(width, height) as browser:
                        browser.get(f"{site}/login")
                        browser.find_element(By.ID, "name").send_keys("alice")
                        browser.find_element(By.ID, "password").send_keys(PASSWORD)
                        browser.find_element(By.CSS_SELECTOR, "form button").click()
                        for name, path in pages.items():
                            browser.get(site + path)
                            full = browser.execute_script("return document.body.scrollHeight")
                            browser.set_window_size(width, min(max(height, full), 2400))
                            out = DOCS / f"console-{name}-{size}.png"
                            browser.save_screenshot(str(out))
                            browser.set_window_size(width, height)
                            print(f"wrote {out.relative_to(DOCS.parent)}")
        finally:
            rt.close()


if __name__ == "__main__":
    main()
