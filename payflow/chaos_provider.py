"""Provider webhooks in a chaos run: disputes reported by Stripe-signed `charge.dispute.*`
webhooks and refunds reported failed by `charge.refund.updated`, duplicated, delayed and
reordered, sent to `POST /v1/psp_webhooks/stripe` as a provider sends them (again after any
answer but a 2xx).

A share of the run's succeeded payments is disputed, each along one of `SCENARIOS` (statuses in
the order a provider reports them); the refunds the run made are each reported failed once.
Every report is one provider event with its own id; some are sent twice, each after a random
delay, all of them shuffled. What PayFlow must end with is known from the plan alone: the
scenario's last status, the money where that status puts it; every refund failed.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import threading
import time
import uuid
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import requests

STRIPE_WEBHOOK_SECRET = "whsec_chaos_provider_webhooks"
"""The secret the chaos sandbox verifies Stripe's webhooks with (its STRIPE_WEBHOOK_SECRET)."""

SCENARIOS: tuple[tuple[str, ...], ...] = (
    ("needs_response", "won"),
    ("needs_response", "lost"),
    ("needs_response", "under_review", "won"),
    ("warning_needs_response", "warning_closed"),
    ("warning_needs_response", "needs_response", "lost"),
)
"""Disputes as providers report them over their life, first report first."""

HELD = frozenset({"needs_response", "under_review"})
"""Final statuses whose money stays withdrawn and held."""
CHARGEBACK = frozenset({"needs_response", "under_review", "won", "lost"})
"""Statuses that withdraw the money (an inquiry's warning_* statuses do not)."""


@dataclass(frozen=True)
class DisputePlan:
    """One dispute the run's provider reports."""

    reference: str
    """The provider's dispute id (du_...)."""
    charge: str
    payment_intent: str
    amount: int
    currency: str
    statuses: tuple[str, ...]

    @property
    def final(self) -> str:
        """Where PayFlow must leave it: the last status of its life, whatever the order."""
        return self.statuses[-1]

    @property
    def withdrawn(self) -> bool:
        return any(status in CHARGEBACK for status in self.statuses)


@dataclass(frozen=True)
class ProviderEvent:
    """One provider event (a report of a dispute, or of a refund's failure), signed and sent."""

    id: str
    plan: DisputePlan | None
    step: int
    payload: str
    refund: str | None = None
    """The PayFlow refund a refund-failure event reports."""


@dataclass
class ProviderRun:
    """What was planned, sent and answered."""

    plans: list[DisputePlan] = field(default_factory=list)
    refunds: list[str] = field(default_factory=list)
    """The PayFlow refunds reported failed."""
    events: list[ProviderEvent] = field(default_factory=list)
    results: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    """Event id -> what PayFlow answered each copy ("applied", "unchanged", "duplicate")."""
    duplicated: int = 0
    delayed: int = 0
    reordered: int = 0
    """Disputes some of whose reports were sent before an earlier one."""
    errors: list[str] = field(default_factory=list)


def plan(payments: dict[str, dict[str, Any]], rng: random.Random, every: int) -> list[DisputePlan]:
    """Dispute one in `every` of the succeeded payments (at least one when any succeeded)."""
    succeeded = sorted(
        (pi for pi in payments.values() if pi["status"] == "succeeded" and pi["latest_charge"]),
        key=lambda pi: str(pi["id"]),
    )
    chosen = succeeded[:: max(1, every)]
    return [
        DisputePlan(
            reference=f"du_chaos{uuid.uuid4().hex[:16]}",
            charge=pi["latest_charge"],
            payment_intent=pi["id"],
            amount=int(pi["amount_received"]),
            currency=str(pi["currency"]),
            statuses=rng.choice(SCENARIOS),
        )
        for pi in chosen
    ]


def _event(dispute: DisputePlan, step: int) -> ProviderEvent:
    status = dispute.statuses[step]
    event_type = "charge.dispute.created" if step == 0 else "charge.dispute.updated"
    if status in ("won", "lost", "warning_closed"):
        event_type = "charge.dispute.closed"
    event_id = f"evt_chaos{uuid.uuid4().hex[:16]}"
    payload = json.dumps(
        {
            "id": event_id,
            "object": "event",
            "type": event_type,
            "data": {
                "object": {
                    "id": dispute.reference,
                    "object": "dispute",
                    "amount": dispute.amount,
                    "charge": dispute.charge,
                    "currency": dispute.currency,
                    "reason": "fraudulent",
                    "status": status,
                    "balance_transactions": [],
                    "evidence_details": {"due_by": None},
                }
            },
        }
    )
    return ProviderEvent(event_id, dispute, step, payload)


def _refund_failed(refund_id: str) -> ProviderEvent:
    event_id = f"evt_chaos{uuid.uuid4().hex[:16]}"
    payload = json.dumps(
        {
            "id": event_id,
            "object": "event",
            "type": "charge.refund.updated",
            "data": {
                "object": {
                    "id": f"re_chaos{uuid.uuid4().hex[:16]}",
                    "object": "refund",
                    "status": "failed",
                    "failure_reason": "expired_or_canceled_card",
                    "metadata": {"payflow_key": refund_id},
                }
            },
        }
    )
    return ProviderEvent(event_id, None, 0, payload, refund=refund_id)


def send(
    base: str,
    plans: list[DisputePlan],
    refunds: list[str],
    rng: random.Random,
    *,
    duplicate_rate: float,
    max_delay: float,
    concurrency: int,
    deadline: float,
) -> ProviderRun:
    """Send every report of every plan, and a failure of each of `refunds`: some twice, each
    after a random delay up to `max_delay` seconds, in shuffled order, `concurrency` at a time,
    each copy retried (as a provider retries) until it is answered 200 or `deadline`
    (time.monotonic) passes."""
    run = ProviderRun(plans=plans, refunds=list(refunds))
    run.events = [_event(p, step) for p in plans for step in range(len(p.statuses))]
    run.events += [_refund_failed(refund) for refund in refunds]
    copies = list(run.events)
    for event in run.events:
        if rng.random() < duplicate_rate:
            copies.append(event)
            run.duplicated += 1
    rng.shuffle(copies)
    latest: dict[str, int] = {}
    out_of_order: set[str] = set()
    for event in copies:
        if event.plan is None:
            continue
        reference = event.plan.reference
        if latest.get(reference, -1) > event.step:
            out_of_order.add(reference)
        latest[reference] = max(event.step, latest.get(reference, -1))
    run.reordered = len(out_of_order)
    delays = [rng.random() * max_delay for _ in copies]
    run.delayed = sum(1 for d in delays if d > 0)
    lock = threading.Lock()
    session = requests.Session()

    def deliver(item: tuple[ProviderEvent, float]) -> None:
        event, delay = item
        time.sleep(delay)
        backoff = 0.1
        while True:
            stamp = int(time.time())
            signature = hmac.new(
                STRIPE_WEBHOOK_SECRET.encode(),
                f"{stamp}.{event.payload}".encode(),
                hashlib.sha256,
            ).hexdigest()
            try:
                response = session.post(
                    f"{base}/v1/psp_webhooks/stripe",
                    data=event.payload,
                    headers={
                        "Content-Type": "application/json",
                        "Stripe-Signature": f"t={stamp},v1={signature}",
                    },
                    timeout=30,
                )
                if response.status_code == 200:
                    answers = [e["result"] for e in response.json()["events"]]
                    with lock:
                        run.results[event.id].extend(answers)
                    return
                problem = f"{response.status_code} {response.text[:200]}"
            except requests.RequestException as error:
                problem = f"{type(error).__name__}: {error}"
            if time.monotonic() > deadline:
                with lock:
                    run.errors.append(f"provider event {event.id}: gave up after {problem}")
                return
            time.sleep(backoff)
            backoff = min(backoff * 2, 1.0)

    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(deliver, zip(copies, delays, strict=True)))
    return run
