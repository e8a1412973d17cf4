"""Analytics counters, percentiles and the failure-spike rule, without I/O."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from chalicelib.domain.analytics import (
    AlertMove,
    AlertSettings,
    CallFact,
    Granularity,
    Outcome,
    classify,
    counters,
    evaluate,
    latency_bin,
    percentile,
    tally,
)


def fact(outcome: Outcome, latency_ms: int = 40, reason: str | None = None) -> CallFact:
    return CallFact(
        merchant_id="acct_1",
        payment_intent_id="pi_1",
        attempt_key="attempt#0001#1#simulator",
        connector="simulator",
        method="card",
        outcome=outcome,
        latency_ms=latency_ms,
        reason=reason,
        created=1_700_000_000,
        amount=1250,
        currency="usd",
    )


def test_outcomes_of_attempt_records_count_as_calls_declines_errors_or_not_at_all():
    assert classify("authorized") == Outcome.SUCCEEDED
    assert classify("requires_action") == Outcome.SUCCEEDED
    assert classify("reconciled") == Outcome.SUCCEEDED
    assert classify("declined") == Outcome.DECLINED
    assert classify("PspTimeout") == Outcome.ERROR
    assert classify("SomethingNew") == Outcome.ERROR
    assert classify("CircuitOpen") == Outcome.SKIPPED
    assert classify("not_found") is None


def test_latency_bins_are_upper_edges_with_an_open_last_bin():
    assert latency_bin(0) == "10"
    assert latency_bin(10) == "10"
    assert latency_bin(11) == "25"
    assert latency_bin(30_001) == "inf"


def test_counters_of_a_call_hold_its_outcome_latency_reason_and_volume():
    assert counters(fact(Outcome.SUCCEEDED, 120)) == {
        "calls": 1,
        "outcome_succeeded": 1,
        "latency_250": 1,
        "volume_usd": 1250,
    }
    declined = counters(fact(Outcome.DECLINED, 5, reason="insufficient_funds"))
    assert declined["reason_insufficient_funds"] == 1 and "volume_usd" not in declined
    skipped = counters(fact(Outcome.SKIPPED, reason="CircuitOpen"))
    assert skipped == {"calls": 1, "outcome_skipped": 1}


def test_percentiles_read_the_histogram():
    histogram = {"10": 50, "100": 40, "1000": 9, "inf": 1}
    assert percentile(histogram, 0.5) == 10
    assert percentile(histogram, 0.9) == 100
    assert percentile(histogram, 0.99) == 1000
    assert percentile(histogram, 1.0) == 30_000
    assert percentile({}, 0.5) is None


def test_a_tally_sums_buckets_and_leaves_skipped_calls_out_of_the_rate():
    buckets = [
        {"connector": "simulator", "start": 0, **counters(fact(Outcome.SUCCEEDED))},
        {"connector": "simulator", "start": 60, **counters(fact(Outcome.ERROR, reason="E"))},
        {"connector": "simulator", "start": 60, **counters(fact(Outcome.SKIPPED))},
    ]
    total = tally(buckets)
    assert total.attempted == 2 and total.succeeded == 1
    assert total.success_rate() == 0.5
    summary = total.summary()
    assert summary["calls"] == 3 and summary["reasons"] == {"E": 1}
    assert summary["volume"] == {"usd": 1250}


def test_bucket_starts_are_whole_minutes_hours_and_days():
    at = 1_700_000_123.7
    assert Granularity.MINUTE.start(at) == 1_700_000_100
    assert Granularity.HOUR.start(at) == 1_699_999_200
    assert Granularity.DAY.start(at) % 86400 == 0


def window(succeeded: int, failed: int) -> object:
    return tally(
        [counters(fact(Outcome.SUCCEEDED)) for _ in range(succeeded)]
        + [counters(fact(Outcome.ERROR)) for _ in range(failed)]
    )


def test_an_alert_is_raised_under_the_threshold_once_and_resolved_when_back():
    rule = AlertSettings(threshold=0.8, minimum_calls=5)
    assert evaluate(window(1, 4), rule, firing=False) == AlertMove.RAISE
    assert evaluate(window(1, 4), rule, firing=True) == AlertMove.NONE
    assert evaluate(window(4, 1), rule, firing=True) == AlertMove.RESOLVE
    assert evaluate(window(4, 1), rule, firing=False) == AlertMove.NONE


def test_too_few_calls_or_a_disabled_rule_decide_nothing():
    assert evaluate(window(0, 4), AlertSettings(minimum_calls=5), firing=False) == AlertMove.NONE
    off = AlertSettings(enabled=False, minimum_calls=1)
    assert evaluate(window(0, 9), off, firing=False) == AlertMove.NONE


@pytest.mark.parametrize("bad", [{"threshold": 1.5}, {"window_seconds": 30}, {"minimum_calls": 0}])
def test_alert_settings_refuse_values_outside_their_range(bad: dict):
    with pytest.raises(ValidationError):
        AlertSettings(**bad)
