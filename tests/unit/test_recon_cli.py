"""`payflow recon run --date` takes the UTC day as a date, or as today or yesterday."""

from __future__ import annotations

from datetime import UTC, datetime

from payflow.recon import utc_day


def test_today_and_yesterday_are_the_utc_dates_they_name() -> None:
    # Just after midnight UTC, whatever the local clock says
    now = datetime(2026, 3, 1, 0, 5, tzinfo=UTC)
    assert utc_day("today", now) == "2026-03-01"
    assert utc_day("Yesterday", now) == "2026-02-28"


def test_any_other_text_is_left_for_the_api_to_judge() -> None:
    assert utc_day("2026-01-31") == "2026-01-31"
    assert utc_day("tomorrow") == "tomorrow"
