"""Browser tests: Playwright driving Debian's Chromium, headless (payflow.browser).

`make test` installs Debian's `chromium` (the Makefile's $(CHROMIUM) target).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from payflow.browser import CHROMIUM, launch

SCREENSHOTS = Path(__file__).resolve().parents[2] / "build" / "screenshots"


@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    """One headless Chromium for the session (a new context, hence new storage, per test)."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run `make test`, which installs Debian's chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch(playwright)
        yield browser
        browser.close()


@pytest.fixture
def page(chromium: Any) -> Iterator[Any]:
    """A page in a fresh browser context whose console errors and failed requests the test
    can read (`page.console_errors`, a list) and must leave empty unless it expects them."""
    context = chromium.new_context(viewport={"width": 1280, "height": 860})
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.console_errors = errors
    yield page
    context.close()


@pytest.fixture
def dashboard(page: Any, api_url: str, merchant: dict) -> Any:
    """The page, signed in as the test's merchant (with the admin key for fault switches)."""
    from tests.conftest import ADMIN_KEY

    page.goto(f"{api_url}/dashboard")
    page.fill("#secret-key", merchant["secret_key"])
    page.fill("#admin-key", ADMIN_KEY)
    page.click("#signin button[type=submit]")
    page.wait_for_selector("#payments-body .notice, #payments tbody tr")
    return page


def screenshot(page: Any, name: str) -> Path:
    """Save a full-page screenshot under build/screenshots/ (docs/ keeps the chosen ones)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
