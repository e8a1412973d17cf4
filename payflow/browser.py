"""Debian's Chromium, headless, as the browser tests and the dashboard bench launch it.

Playwright drives it through `executable_path`, so nothing is downloaded by `playwright
install`. The flags keep Chromium off the network: without the background-networking ones it
tries Google's hosts at every start, which this machine refuses.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

CHROMIUM = Path("/usr/lib/chromium/chromium")
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def launch(playwright: Any) -> Any:
    """A headless Chromium from a started `sync_playwright()`."""
    return playwright.chromium.launch(
        executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_FLAGS
    )
