"""Routing, circuit-breaker decisions, and the state machine's error names, as pure rules."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import pytest

from chalicelib.connectors import base
from chalicelib.domain.circuit import (
    BUCKET_SECONDS,
    Circuit,
    CircuitState,
    should_open,
    skips_routing,
)
from chalicelib.domain.routing import (
    CircuitPolicy,
    ConnectorConfig,
    PaymentFacts,
    RoutingConfig,
    route,
)

ASL = Path(__file__).resolve().parents[2] / "statemachines" / "payment.asl.json"


def config(*connectors: dict) -> RoutingConfig:
    return RoutingConfig(connectors=[ConnectorConfig(kind="simulator", **c) for c in connectors])


CARD = PaymentFacts(amount=1000, currency="usd", payment_method_type="card", card_bin="424242")


def test_eligibility_filters_and_says_why():
    decision = route(
        config(
            {"id": "off", "enabled": False},
            {"id": "eur", "currencies": ["eur"]},
            {"id": "mc", "card_bins": ["5*"]},
            {"id": "small", "max_amount": 500},
            {"id": "upi", "payment_method_types": ["upi"]},
            {"id": "ok"},
        ),
        CARD,
        set(),
        random.Random(1),
    )
    assert decision.candidates == ["ok"]
    assert set(decision.skipped) == {"off", "eur", "mc", "small", "upi"}


def test_open_circuits_are_skipped_and_priority_orders_the_rest():
    decision = route(
        config({"id": "c", "priority": 3}, {"id": "a", "priority": 1}, {"id": "b", "priority": 2}),
        CARD,
        {"a"},
        random.Random(1),
    )
    assert decision.candidates == ["b", "c"] and decision.skipped == {"a": "circuit open"}


def test_weights_split_volume_among_equal_priorities():
    routing = config({"id": "heavy", "weight": 3}, {"id": "light", "weight": 1})
    rng = random.Random(42)
    firsts = [route(routing, CARD, set(), rng).candidates[0] for _ in range(4000)]
    share = firsts.count("heavy") / len(firsts)
    assert 0.7 < share < 0.8
    assert sorted(route(routing, CARD, set(), rng).candidates) == ["heavy", "light"]


POLICY = CircuitPolicy(
    window_seconds=60, failure_rate_threshold=0.5, minimum_calls=4, cooldown_seconds=30
)


def circuit(calls: int, failures: int, now: float, **extra) -> Circuit:
    bucket = int(now) // BUCKET_SECONDS * BUCKET_SECONDS
    return Circuit(connector="x", calls={bucket: calls}, failures={bucket: failures}, **extra)


def test_opens_at_the_threshold_with_enough_calls():
    assert should_open(circuit(4, 2, 1000.0), 1000.0, POLICY)
    assert not should_open(circuit(3, 3, 1000.0), 1000.0, POLICY)  # too few calls
    assert not should_open(circuit(4, 1, 1000.0), 1000.0, POLICY)  # rate below threshold


def test_old_buckets_leave_the_window():
    assert not should_open(circuit(10, 10, 1000.0), 1000.0 + 70, POLICY)


def test_open_circuit_skips_routing_until_the_cooldown_ends():
    opened = Circuit(connector="x", state=CircuitState.OPEN, opened_at=1000.0)
    assert skips_routing(opened, 1010.0, POLICY)
    assert not skips_routing(opened, 1031.0, POLICY)


def _asl() -> dict:
    text = re.sub(r"\$\{Psp\w+\}", "1", ASL.read_text())
    return json.loads(text)


def test_the_state_machine_names_the_errors_the_tasks_raise():
    states = _asl()["States"]
    retried = set(states["Authorize"]["Retry"][0]["ErrorEquals"])
    caught = set(states["Authorize"]["Catch"][0]["ErrorEquals"])
    assert retried == {e.__name__ for e in base.RETRYABLE_ERRORS}
    assert caught == {e.__name__ for e in base.FAILOVER_ERRORS}
    for name in retried | caught:
        assert issubclass(getattr(base, name), base.ConnectorError)


@pytest.mark.parametrize("state", ["Authorize", "Reconcile"])
def test_retries_back_off_with_jitter_from_substitutions(state):
    text = ASL.read_text()
    retry = _asl()["States"][state]["Retry"][0]
    assert retry["JitterStrategy"] == "FULL"
    for field in ("IntervalSeconds", "MaxAttempts", "BackoffRate", "MaxDelaySeconds"):
        assert f'"{field}": ${{PspRetry' in text
