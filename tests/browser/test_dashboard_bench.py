"""`make dashboard-bench` at the suite's size: it seeds, every page shows what it waits for,
and every figure is measured (the full-size run is in docs/dashboard.md)."""

from __future__ import annotations

from typing import Any

from bench.dashboard import measure
from tests.conftest import ADMIN_KEY


def test_the_dashboard_bench_measures_every_page_and_read(api_url: str, chromium: Any) -> None:
    # When: 6 payments made by the service and 30 written directly, each page visited once
    results = measure(
        api_url, ADMIN_KEY, payments=6, runs=1, browser=chromium, concurrency=2, bulk=30
    )

    # Then: every payment's calls reached analytics, and every figure was measured
    assert results["payments"] == 36 and results["analytics_calls_folded"] >= 6
    assert set(results["browser"]) == {
        "open /dashboard (sign-in form)",
        "sign in -> first page of payments",
        "connector filter -> its payments",
        "payment page, 30 days old",
        "payment page, with execution",
        "analytics, 30 days -> drawn",
        "analytics drawing alone",
    }
    assert len(results["api"]) == 7
    for figures in (*results["api"].values(), *results["browser"].values()):
        assert figures["runs"] == 1 and figures["median_ms"] >= 0
