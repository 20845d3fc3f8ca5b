"""Issue #16's browser tests: the console in headless Chromium against the real app served
over HTTP, with emulated devices that answer what they are sent (real signed requests)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as seen
from selenium.webdriver.support.ui import WebDriverWait

from mdmserver.web.runtime import runtime
from tests.console.browser import browser_session
from tests.console.conftest import PASSWORD
from tests.trust.conftest import CLEAN, drive, enroll


@pytest.fixture
def browser() -> Iterator[Any]:
    yield from browser_session()


@pytest.fixture
def site(live_server: str) -> str:
    # localhost, not 127.0.0.1: Chromium treats it as a secure origin, so the console's
    # Secure session cookie is kept over plain HTTP in the test as it is over HTTPS in use.
    return live_server.replace("127.0.0.1", "localhost")


def phone(live_server: str, pki: Any, serial: str) -> Any:
    device = pki.device()
    device.serial_number = serial
    enroll(live_server, device)
    return device


def sign_in(browser: Any, site: str, name: str) -> None:
    browser.get(f"{site}/login")
    browser.find_element(By.ID, "name").send_keys(name)
    browser.find_element(By.ID, "password").send_keys(PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
    WebDriverWait(browser, 10).until(seen.title_contains("Dashboard"))


def wait_for(browser: Any, css: str, timeout: float = 10) -> Any:
    return WebDriverWait(browser, timeout).until(
        seen.visibility_of_element_located((By.CSS_SELECTOR, css))
    )


def pending(app: Any, udid: str) -> list[str]:
    return [item.request_type for item in runtime(app).storage.queue(udid)]


def test_find_a_device_by_serial_lock_it_and_see_its_acknowledgement(
    app: Any, live_server: str, site: str, pki: Any, people: Any, browser: Any
) -> None:
    phone(live_server, pki, "C02OTHER0007")
    lost = phone(live_server, pki, "C02LOST00042")
    sign_in(browser, site, "hal")

    browser.find_element(By.LINK_TEXT, "Devices").click()
    search = wait_for(browser, "input[name=q]")
    search.send_keys("C02LOST00042")
    search.submit()
    wait_for(browser, "[data-total]")
    links = browser.find_elements(By.CSS_SELECTOR, "table.list tbody a")
    assert [a.text for a in links] == ["iPhone 0042"]
    links[0].click()
    assert wait_for(browser, "[data-serial]").text == "C02LOST00042"

    browser.find_element(By.XPATH, "//summary[text()='Lock']").click()
    browser.find_element(By.NAME, "message").send_keys("Found? Call IT")
    browser.find_element(By.XPATH, "//button[text()='Lock now']").click()
    assert "DeviceLock queued" in wait_for(browser, ".flash.ok").text
    assert pending(app, lost.udid) == ["DeviceLock"]

    assert drive(live_server, lost, {}) == ["DeviceLock"]  # the device wakes and answers
    browser.refresh()
    assert wait_for(browser, "[data-status=DeviceLock]").text.startswith("Acknowledged")


def test_a_wipe_is_refused_until_the_device_name_is_typed(
    app: Any, live_server: str, site: str, pki: Any, people: Any, browser: Any
) -> None:
    device = phone(live_server, pki, "C02WIPE00013")
    sign_in(browser, site, "ada")
    browser.get(f"{site}/devices/{device.udid}")
    browser.find_element(By.XPATH, "//summary[text()='Erase this device']").click()
    button = browser.find_element(By.XPATH, "//button[text()='Erase device']")
    name = browser.find_element(By.NAME, "confirm_name")
    assert not button.is_enabled()
    name.send_keys("iPhone 001")
    assert not button.is_enabled()
    # Past the page's guard, the server refuses it too.
    browser.execute_script("arguments[0].disabled = false; arguments[0].click()", button)
    assert "to confirm the erase" in wait_for(browser, ".flash.error").text
    assert pending(app, device.udid) == []

    browser.find_element(By.XPATH, "//summary[text()='Erase this device']").click()
    browser.find_element(By.NAME, "confirm_name").send_keys("iPhone 0013")
    button = browser.find_element(By.XPATH, "//button[text()='Erase device']")
    assert button.is_enabled()
    button.click()
    assert "EraseDevice queued" in wait_for(browser, ".flash.ok").text
    assert pending(app, device.udid) == ["EraseDevice"]


def test_helpdesk_cannot_wipe_or_change_policy_and_an_auditor_cannot_act(
    app: Any, live_server: str, site: str, pki: Any, people: Any, browser: Any
) -> None:
    device = phone(live_server, pki, "C02ROLE00021")
    sign_in(browser, site, "hal")
    browser.get(f"{site}/devices/{device.udid}")
    wait_for(browser, "#act-h")
    assert not browser.find_elements(By.XPATH, "//summary[text()='Erase this device']")
    assert browser.find_elements(By.XPATH, "//button[text()='Restart']")
    browser.get(f"{site}/compliance")
    assert browser.find_element(By.ID, "policy").get_attribute("readonly") is not None
    assert not browser.find_elements(By.XPATH, "//button[text()='Save the policy']")
    browser.get(f"{site}/commands")
    assert "403" in wait_for(browser, "h1").text

    browser.find_element(By.XPATH, "//button[text()='Sign out']").click()
    wait_for(browser, "#name")
    browser.find_element(By.ID, "name").send_keys("aud")
    browser.find_element(By.ID, "password").send_keys(PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
    WebDriverWait(browser, 10).until(seen.title_contains("Dashboard"))
    browser.get(f"{site}/devices/{device.udid}")
    wait_for(browser, "#act-h")
    actions = browser.find_elements(By.CSS_SELECTOR, "form[action*='/actions/'] button")
    assert actions == []
    assert "can look but not act" in browser.find_element(By.ID, "main").text
    assert pending(app, device.udid) == []


def test_a_form_posted_without_its_csrf_token_is_refused(
    app: Any, live_server: str, site: str, pki: Any, people: Any, browser: Any
) -> None:
    device = phone(live_server, pki, "C02CSRF00031")
    sign_in(browser, site, "ada")
    browser.get(f"{site}/devices/{device.udid}")
    button = browser.find_element(By.XPATH, "//button[text()='Restart']")
    browser.execute_script(
        "arguments[0].form.querySelector('[name=csrf_token]').remove(); arguments[0].click()",
        button,
    )
    assert "CSRF token is missing or wrong" in wait_for(browser, ".flash.error").text
    assert "400" in browser.find_element(By.TAG_NAME, "h1").text
    assert pending(app, device.udid) == []


def test_a_bulk_commands_progress_reaches_all_acknowledged(
    app: Any, live_server: str, site: str, pki: Any, people: Any, browser: Any
) -> None:
    fleet = [phone(live_server, pki, f"C02BULK0000{i}") for i in range(3)]
    sign_in(browser, site, "ada")
    browser.find_element(By.LINK_TEXT, "Commands").click()
    wait_for(browser, "#request_type").send_keys("DeviceInformation")
    browser.find_element(By.NAME, "platform").send_keys("iOS")
    browser.find_element(By.XPATH, "//button[text()='Preview']").click()
    assert wait_for(browser, "[data-reach]").get_attribute("data-reach") == "3"
    browser.find_element(By.XPATH, "//button[starts-with(text(), 'Send to 3')]").click()
    wait_for(browser, "[data-progress]")
    assert browser.find_element(By.CSS_SELECTOR, "[data-count=pending]").text == "3"
    assert not browser.find_element(By.CSS_SELECTOR, "[data-done]").is_displayed()

    def devices_answer() -> None:
        for device in fleet:
            time.sleep(0.5)
            drive(live_server, device, CLEAN)

    answering = threading.Thread(target=devices_answer)
    answering.start()
    done = wait_for(browser, "[data-done]", timeout=30)  # the page updates itself
    answering.join(timeout=30)
    assert done.text == "All acknowledged"
    assert browser.find_element(By.CSS_SELECTOR, "[data-count=acknowledged]").text == "3"


def test_the_dashboards_numbers_match_the_api(
    app: Any, live_server: str, site: str, pki: Any, people: Any, browser: Any, admin: Any
) -> None:
    phone(live_server, pki, "C02DASH00001")
    no_passcode = {**CLEAN, "SecurityInfo": {"SecurityInfo": {"PasscodePresent": False}}}
    device = pki.device()
    device.serial_number = "C02DASH00002"
    enroll(live_server, device, no_passcode)
    silent = pki.device()
    silent.serial_number = "C02DASH00003"
    enroll(live_server, silent, {})

    def count(query: str) -> int:
        reply = requests.get(
            f"{live_server}/api/v1/devices?{query}&limit=1000",
            headers={"Authorization": f"Bearer {admin.key}"},
            timeout=10,
        )
        assert reply.status_code == 200, reply.text
        return len(reply.json()["devices"])

    sign_in(browser, site, "aud")
    shown = {
        e.get_attribute("data-stat"): int(e.text)
        for e in browser.find_elements(By.CSS_SELECTOR, ".tile [data-stat]")
        if e.text.isdigit()
    }
    assert shown["enrolled"] == count("enrolled=true") == 3
    assert shown["compliant"] == count("enrolled=true&compliance=compliant")
    assert shown["noncompliant"] == count("enrolled=true&compliance=noncompliant")
    assert shown["unknown"] == count("enrolled=true&compliance=unknown")
    assert shown["compliant"] + shown["noncompliant"] + shown["unknown"] == 3
    ios = browser.find_element(By.CSS_SELECTOR, "[data-platform=iOS]").text
    assert int(ios) == count("enrolled=true&platform=iOS")
