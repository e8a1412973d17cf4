"""The simulator's own webhooks, without a sandbox: a ledger in a dict, a clock the test
moves, and a post that verifies what it was sent as PayFlow does."""

from __future__ import annotations

import json
from typing import Any

import pytest

from chalicelib.connectors.simulator import SimulatorSettings
from chalicelib.connectors.simulator_webhooks import (
    SIGNATURE_HEADER,
    SimulatorOutbox,
    sign,
    webhook_events,
)
from chalicelib.domain.psp_events import InvalidWebhook, PspOutcome

SECRET = "whsec_unit"


class DictLedger:
    """SimulatorLedger's interface over a dict."""

    def __init__(self) -> None:
        self.items: dict[str, dict[str, Any]] = {}
        self.sets: dict[str, set[str]] = {}

    def record_once(self, operation: str, key: str, record: dict[str, Any]) -> dict[str, Any]:
        return dict(self.items.setdefault(f"{operation}#{key}", dict(record)))

    def find(self, operation: str, key: str) -> dict[str, Any] | None:
        found = self.items.get(f"{operation}#{key}")
        return dict(found) if found is not None else None

    def update(self, operation: str, key: str, changes: dict[str, Any]) -> None:
        self.items[f"{operation}#{key}"].update(changes)

    def add_pending(self, name: str, member: str) -> None:
        self.sets.setdefault(name, set()).add(member)

    def remove_pending(self, name: str, member: str) -> None:
        self.sets.get(name, set()).discard(member)

    def pending(self, name: str) -> set[str]:
        return set(self.sets.get(name, set()))


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Receiver:
    """PayFlow's end: verifies each post and answers `status`."""

    def __init__(self, clock: Clock, status: int = 200) -> None:
        self.clock = clock
        self.status = status
        self.received: list[tuple[str, str]] = []

    def __call__(self, url: str, body: bytes, headers: dict[str, str]) -> int:
        lowered = {k.lower(): v for k, v in headers.items()}
        (event,) = webhook_events(SECRET, lowered, body, now=self.clock)
        self.received.append((event.id, event.type))
        return self.status


def settings(**values: Any) -> Any:
    chosen = SimulatorSettings(**values)
    return lambda connector: chosen


def test_a_signed_event_verifies_and_a_forged_or_stale_one_does_not():
    clock = Clock()
    body = json.dumps(
        {
            "id": "evt_1",
            "type": "payment.failed",
            "data": {
                "object": {
                    "payment_intent": "pi_1",
                    "attempt_key": "pi_1:1:sim",
                    "psp_reference": "sim_1",
                    "amount": 2050,
                    "decline": {"code": "payment_method_customer_decline", "message": "no"},
                }
            },
        }
    ).encode()
    good = {SIGNATURE_HEADER.lower(): sign(SECRET, body, int(clock()))}
    (event,) = webhook_events(SECRET, good, body, now=clock)
    assert (event.outcome, event.payment_intent_id, event.attempt_key) == (
        PspOutcome.FAILED,
        "pi_1",
        "pi_1:1:sim",
    )
    assert event.decline is not None and event.decline.code == "payment_method_customer_decline"
    with pytest.raises(InvalidWebhook):
        webhook_events("another", good, body, now=clock)
    with pytest.raises(InvalidWebhook):
        webhook_events(SECRET, good, body + b" ", now=clock)
    with pytest.raises(InvalidWebhook):
        webhook_events(SECRET, {}, body, now=clock)
    clock.now += 301
    with pytest.raises(InvalidWebhook, match="tolerance"):
        webhook_events(SECRET, good, body, now=clock)


def test_reordering_and_duplicates_follow_the_seed():
    def run(seed: int) -> list[tuple[str, str]]:
        clock = Clock()
        ledger = DictLedger()
        outbox = SimulatorOutbox(ledger, clock=clock, wall_clock=clock)  # type: ignore[arg-type]
        for n in range(6):
            outbox.emit("sim", "payment.captured", f"evt_{n}", {"payment_intent": f"pi_{n}"})
        receiver = Receiver(clock)
        chosen = settings(seed=seed, webhook_reorder=True, webhook_duplicate_rate=0.5)
        assert outbox.deliver(receiver, "http://payflow", SECRET, chosen) == 6
        return receiver.received

    first = run(3)
    assert first == run(3), "a seed replays the same delivery"
    ids = [event_id for event_id, _ in first]
    assert sorted(set(ids)) == [f"evt_{n}" for n in range(6)]
    assert len(ids) > 6, "some events went twice"
    assert list(dict.fromkeys(ids)) != sorted(set(ids)), "the batch went out of order"


def test_a_refused_delivery_stays_pending_and_is_sent_again_after_a_backoff():
    clock = Clock()
    ledger = DictLedger()
    outbox = SimulatorOutbox(ledger, clock=clock, wall_clock=clock)  # type: ignore[arg-type]
    outbox.emit("sim", "payment.captured", "evt_1", {"payment_intent": "pi_1"})
    down = Receiver(clock, status=503)
    assert outbox.deliver(down, "http://payflow", SECRET, settings()) == 0
    assert outbox.deliver(down, "http://payflow", SECRET, settings()) == 0
    assert len(down.received) == 1, "not again before the backoff"
    clock.now += 2
    up = Receiver(clock)
    assert outbox.deliver(up, "http://payflow", SECRET, settings()) == 1
    assert up.received == [("evt_1", "payment.captured")]
