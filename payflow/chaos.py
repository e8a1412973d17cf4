"""A chaos run against the embedded sandbox: many payments under injected faults, then every
invariant checked. `make chaos` (1,000 payments), `python -m payflow.chaos --payments N`.

Faults come through configuration only, never by editing code:

- PSP timeouts, 503s and declines: the simulators' settings (POST /v1/connectors/{id}, admin);
- handlers crashing at named points (chalicelib/faults.py: before/after the DynamoDB commit,
  after the delivery write and before the SQS send in the relay, after the send, after a whole
  batch, after a webhook POST and before its log entry), armed one at a time on the running
  sandbox's Faults, as PAYFLOW_FAULTS would arm them;
- duplicated stream and SQS deliveries (SandboxConfig.duplicate_delivery_rate);
- duplicated starts of payment executions (`duplicate_starts`): a share of StartExecutions is
  followed by a second start of the same input under another name, as an Express workflow's
  at-least-once start can do (moto would fold a second start under the same name);
- a webhook receiver that answers 500 a third of the time;
- provider webhooks (payflow/chaos_provider.py): disputes of a share of the succeeded payments
  reported by Stripe-signed charge.dispute.* webhooks, and refunds of another share reported
  failed by charge.refund.updated, some sent twice, each delayed, all reordered.

Invariants are functions registered with `@invariant`: each gets the run's `Observed` facts and
returns the list of its violations (empty: it holds). Adding one, e.g. "ledger balanced" once
chalicelib.services.ledger exists, is one more decorated function in this module.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import requests

from payflow import chaos_provider
from payflow.chaos_provider import ProviderRun
from payflow.sandbox.runtime import Sandbox, SandboxConfig

ADMIN_KEY = "sk_admin_chaos"
RETRY_SCHEDULE = "0,0,1"
"""Three webhook attempts (at once, at once, after a second): a third of the receiver's answers
fail, so about 1 delivery in 27 ends in the dead-letter queue."""
LEGAL_FINAL_STATES = {
    "succeeded": "charged once",
    "requires_capture": "authorized once, waiting for capture (documented)",
    "requires_payment_method": "declined or no PSP could complete it; nothing charged",
    "requires_action": "waiting for the customer's 3-D Secure step (documented)",
    "canceled": "canceled; any authorization voided",
}
CRASH_POINTS = (
    "before_commit",
    "after_commit",
    "relay_before_enqueue",
    "relay_after_enqueue",
    "relay_after_batch",
)
SLOW_CRASH_POINTS = ("deliver_after_post",)
"""A crashed delivery batch returns after the webhook queue's visibility timeout (60 s)."""


# -- the webhook receiver ---------------------------------------------------------------------


@dataclass(frozen=True)
class Hit:
    """One webhook request: who it was for, its webhook-id and event, and the answer given."""

    endpoint: str
    webhook_id: str
    event_id: str
    status: int
    verified: bool


class FlakyReceiver:
    """Webhook receivers on 127.0.0.1 (one path per endpoint) that verify each request's
    Standard Webhooks signature and answer 500 with probability `failure_rate`."""

    def __init__(self, failure_rate: float, seed: int) -> None:
        self.failure_rate = failure_rate
        self.secrets: dict[str, str] = {}
        self.hits: list[Hit] = []
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                headers = {k.lower(): v for k, v in self.headers.items()}
                status = receiver._answer(self.path.strip("/"), body, headers)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/{name}"

    def _answer(self, name: str, body: bytes, headers: dict[str, str]) -> int:
        from standardwebhooks.webhooks import Webhook

        secret = self.secrets.get(name)
        try:
            Webhook(secret or "whsec_").verify(body, headers)
            verified = secret is not None
        except Exception:
            verified = False
        with self._lock:
            failed = self._rng.random() < self.failure_rate
            status = 500 if failed or not verified else 200
            self.hits.append(
                Hit(
                    name,
                    headers.get("webhook-id", ""),
                    json.loads(body).get("id", ""),
                    status,
                    verified,
                )
            )
        return status

    def __enter__(self) -> FlakyReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()


# -- the client ---------------------------------------------------------------------------------


class Client:
    """A merchant's client that retries like stripe-python: same Idempotency-Key, on 409, 5xx
    and connection errors, with backoff, until `give_up_after` seconds."""

    def __init__(self, base: str, key: str, give_up_after: float = 60.0) -> None:
        self.base = base
        self.session = requests.Session()
        self.session.auth = (key, "")
        self.give_up_after = give_up_after
        self.retries = 0
        self._lock = threading.Lock()

    def post(self, path: str, data: dict[str, Any], key: str | None = None) -> requests.Response:
        headers = {"Idempotency-Key": key or uuid.uuid4().hex}
        deadline = time.monotonic() + self.give_up_after
        delay = 0.1
        while True:
            try:
                response = self.session.post(
                    self.base + path, data=data, headers=headers, timeout=30
                )
                if response.status_code not in (409, 429) and response.status_code < 500:
                    return response
            except requests.RequestException:
                response = None
            if time.monotonic() > deadline:
                if response is None:
                    raise TimeoutError(f"POST {path}: no answer within {self.give_up_after} s")
                return response
            with self._lock:
                self.retries += 1
            time.sleep(delay)
            delay = min(delay * 2, 1.0)

    def get(self, path: str, **params: Any) -> Any:
        response = self.session.get(self.base + path, params=params, timeout=30)
        response.raise_for_status()
        return response.json()

    def all(self, path: str, **params: Any) -> Iterator[dict[str, Any]]:
        """Every item of a list endpoint, page by page."""
        after: str | None = None
        while True:
            page = self.get(
                path, limit=100, **params, **({"starting_after": after} if after else {})
            )
            yield from page["data"]
            if not page["has_more"] or not page["data"]:
                return
            after = page["data"][-1]["id"]


# -- the run ------------------------------------------------------------------------------------


@dataclass
class ChaosConfig:
    """How big and how hostile the run is."""

    payments: int = 1000
    concurrency: int = 8
    seed: int = 7
    psp_timeout_rate: float = 0.08
    psp_error_rate: float = 0.08
    psp_decline_rate: float = 0.04
    receiver_failure_rate: float = 1 / 3
    duplicate_rate: float = 0.2
    crash_every: int = 15
    """Arm one crash point (in turn) before every `crash_every`-th payment."""
    slow_crashes: bool = False
    """Also crash the delivery handler (its batch returns after 60 s of visibility timeout)."""
    dispute_every: int = 8
    """Dispute one in this many succeeded payments, by provider webhooks."""
    provider_max_delay: float = 0.3
    """The longest a provider webhook is held back before it is sent (seconds)."""
    refund_every: int = 10
    """Refund part of one in this many automatic payments; its provider reports it failed."""
    max_seconds: float | None = None
    """Deadline for the whole run; default 120 s + 2.5 s per payment: on two cores the embedded
    AWS settles roughly one chaotic payment and its five-odd webhook deliveries (a third of
    them retried) every 1.5-2 s."""

    @property
    def deadline_seconds(self) -> float:
        return self.max_seconds or 120.0 + 2.5 * self.payments


@dataclass
class Observed:
    """What the invariants look at, gathered after the run settled."""

    payments: dict[str, dict[str, Any]]
    intended: dict[str, str]
    authorizations: dict[str, list[dict[str, Any]]]
    captures: dict[str, list[dict[str, Any]]]
    events: list[dict[str, Any]]
    endpoints: list[dict[str, Any]]
    deliveries: dict[tuple[str, str], dict[str, Any]]
    dead_lettered: set[str]
    hits: list[Hit]
    errors: list[str] = field(default_factory=list)
    charges: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    """Each PaymentIntent's charges, as /v1/charges lists them."""
    ledger: Any = None
    """services().ledger.check(merchant) (chalicelib.services.ledger), when the app has one."""
    provider: ProviderRun = field(default_factory=ProviderRun)
    """The provider webhooks planned, sent and answered."""
    provider_stored: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    """Each provider event as PayFlow stored it (services().psp_events.stored)."""
    disputes: list[dict[str, Any]] = field(default_factory=list)
    """The merchant's disputes, as /v1/disputes lists them."""
    refunds: dict[str, dict[str, Any]] = field(default_factory=dict)
    """The refunds reported failed, as /v1/refunds/{id} shows them."""
    journal: list[Any] = field(default_factory=list)
    """The merchant's journal entries (chalicelib.domain.ledger.JournalEntry)."""


Check = Callable[[Observed], list[str]]
INVARIANTS: list[tuple[str, Check]] = []


def invariant(name: str) -> Callable[[Check], Check]:
    """Register a check: it returns its violations, one line each (empty when it holds)."""

    def register(check: Check) -> Check:
        INVARIANTS.append((name, check))
        return check

    return register


@invariant("no payment charged twice at any PSP")
def charged_at_most_once(seen: Observed) -> list[str]:
    violations = []
    for pi_id, records in seen.authorizations.items():
        if len(records) > 1:
            where = [(r.get("connector"), r.get("attempt")) for r in records]
            violations.append(f"{pi_id}: {len(records)} authorizations {where}")
    for pi_id, records in seen.captures.items():
        if len(records) > 1:
            violations.append(f"{pi_id}: {len(records)} captures")
    return violations


@invariant("every PaymentIntent in a legal state, matching the PSP's book")
def legal_states(seen: Observed) -> list[str]:
    violations = []
    for pi_id, pi in seen.payments.items():
        status = pi["status"]
        charged = len(seen.authorizations.get(pi_id, []))
        if status not in LEGAL_FINAL_STATES:
            violations.append(f"{pi_id}: left in {status}")
        elif status in ("succeeded", "requires_capture") and charged != 1:
            violations.append(f"{pi_id}: {status} with {charged} authorizations at the PSP")
        elif status == "requires_payment_method" and charged:
            violations.append(f"{pi_id}: failed but charged {charged} time(s) at the PSP")
        elif status == "requires_payment_method" and not pi.get("last_payment_error"):
            violations.append(f"{pi_id}: requires_payment_method without last_payment_error")
    for pi_id in seen.intended.keys() - seen.payments.keys():
        violations.append(f"{pi_id}: not found")
    return violations


@invariant("every charge agrees with its PaymentIntent (one succeeded charge per payment)")
def charges_agree(seen: Observed) -> list[str]:
    violations = []
    for pi_id, pi in seen.payments.items():
        charges = seen.charges.get(pi_id, [])
        succeeded = [c for c in charges if c["status"] == "succeeded"]
        if pi["status"] not in ("succeeded", "requires_capture"):
            if succeeded:
                violations.append(f"{pi_id}: {pi['status']} with a succeeded charge")
            continue
        if [c["id"] for c in succeeded] != [pi.get("latest_charge")]:
            violations.append(f"{pi_id}: succeeded charges {[c['id'] for c in succeeded]}")
            continue
        charge = succeeded[0]
        captured = pi["status"] == "succeeded"
        if charge["captured"] != captured or charge["amount_captured"] != pi["amount_received"]:
            violations.append(f"{pi_id}: charge {charge['id']} disagrees on capture")
    return violations


@invariant("every event delivered to every subscribed endpoint, or failed into the DLQ")
def every_event_delivered(seen: Observed) -> list[str]:
    violations = []
    succeeded_hits = {(h.endpoint, h.webhook_id) for h in seen.hits if h.status == 200}
    for event in seen.events:
        for endpoint in seen.endpoints:
            subscribed = endpoint["enabled_events"]
            if "*" not in subscribed and event["type"] not in subscribed:
                continue
            name = endpoint["metadata"]["chaos"]
            delivery = seen.deliveries.get((event["id"], endpoint["id"]))
            if delivery is None:
                violations.append(f"{event['id']} ({event['type']}) -> {name}: no delivery")
            elif delivery["status"] == "succeeded":
                if (name, delivery["id"]) not in succeeded_hits:
                    violations.append(f"{delivery['id']}: succeeded, never received with a 2xx")
            elif delivery["status"] == "failed":
                if delivery["id"] not in seen.dead_lettered:
                    violations.append(f"{delivery['id']}: failed but not in the dead-letter queue")
            else:
                # A message in the dead-letter queue whose delivery is still pending: a receive
                # that logged no attempt (its handler failed) took its last receive.
                where = " (its message in the dead-letter queue)" * (
                    delivery["id"] in seen.dead_lettered
                )
                violations.append(
                    f"{delivery['id']}: still {delivery['status']}{where}, {_log(delivery)}"
                )
    return violations


def _log(delivery: dict[str, Any]) -> str:
    """What a stuck delivery's log says, to tell how it got stuck: each attempt's number, when
    and its answer."""
    attempts = [
        f"#{a['attempt']} at {a['created']} -> {a.get('status_code') or a.get('error')}"
        for a in delivery.get("attempts") or []
    ]
    return (
        f"created {delivery.get('created')}, next attempt at {delivery.get('next_attempt_at')}, "
        f"attempts: {', '.join(attempts) or 'none'}"
    )


@invariant("no duplicate delivery a receiver cannot drop by webhook-id")
def duplicates_droppable(seen: Observed) -> list[str]:
    violations = []
    ids_per_event: dict[tuple[str, str], set[str]] = defaultdict(set)
    for hit in seen.hits:
        if not hit.verified:
            violations.append(f"{hit.webhook_id} to {hit.endpoint}: signature did not verify")
        ids_per_event[(hit.endpoint, hit.event_id)].add(hit.webhook_id)
    for (endpoint, event_id), ids in ids_per_event.items():
        if len(ids) > 1:
            violations.append(f"{event_id} reached {endpoint} under {len(ids)} webhook-ids {ids}")
    return violations


@invariant("ledger balanced (every entry sums to zero, no balance drifted)")
def ledger_balanced(seen: Observed) -> list[str]:
    if seen.ledger is None:
        return []
    return [f"entry {e} does not balance" for e in seen.ledger.unbalanced] + [
        f"balance drifted: {d}" for d in seen.ledger.drift
    ]


@invariant("every provider event applied exactly once")
def provider_events_once(seen: Observed) -> list[str]:
    violations = []
    for event in seen.provider.events:
        stored = seen.provider_stored.get(event.id)
        answers = seen.provider.results.get(event.id, [])
        if stored is None or not stored["applied"]:
            violations.append(f"{event.id}: {'not applied' if stored else 'not stored'}")
        if answers.count("applied") > 1:
            violations.append(f"{event.id}: applied {answers.count('applied')} times")
    by_reference: dict[str, list[dict[str, Any]]] = defaultdict(list)
    charges = {p.charge: p for p in seen.provider.plans}
    for dispute in seen.disputes:
        if dispute["charge"] in charges:
            by_reference[charges[dispute["charge"]].reference].append(dispute)
    kinds: dict[str, Counter[str]] = defaultdict(Counter)
    for announced in seen.events:
        if announced["type"].startswith("charge.dispute."):
            kinds[announced["data"]["object"]["id"]][announced["type"]] += 1
    for plan in seen.provider.plans:
        found = by_reference.get(plan.reference, [])
        if len(found) != 1:
            violations.append(f"{plan.reference}: {len(found)} PayFlow disputes")
            continue
        dispute = found[0]
        if dispute["status"] != plan.final:
            violations.append(f"{dispute['id']}: {dispute['status']}, reported {plan.statuses}")
        expected = {
            "charge.dispute.created": 1,
            "charge.dispute.funds_withdrawn": int(plan.withdrawn),
            "charge.dispute.funds_reinstated": int(plan.final == "won"),
            "charge.dispute.closed": int(plan.final in ("won", "lost", "warning_closed")),
        }
        counted = kinds[dispute["id"]]
        for kind, count in expected.items():
            if counted[kind] != count:
                violations.append(f"{dispute['id']}: {counted[kind]} {kind}, expected {count}")
    refund_kinds: dict[str, Counter[str]] = defaultdict(Counter)
    for announced in seen.events:
        if announced["type"] in ("refund.failed", "charge.refund.updated"):
            refund_kinds[announced["data"]["object"]["id"]][announced["type"]] += 1
    for refund_id in seen.provider.refunds:
        refund = seen.refunds.get(refund_id) or {}
        if refund.get("status") != "failed":
            violations.append(f"{refund_id}: {refund.get('status')} after its failure report")
        for kind in ("refund.failed", "charge.refund.updated"):
            if refund_kinds[refund_id][kind] != 1:
                violations.append(f"{refund_id}: {refund_kinds[refund_id][kind]} {kind}")
    return violations


@invariant("disputes balanced in the ledger")
def disputes_balanced(seen: Observed) -> list[str]:
    from chalicelib.domain.disputes import DISPUTE_FEE
    from chalicelib.domain.ledger import AVAILABLE, DISPUTES_HELD

    violations = []
    sums: dict[str, Counter[str]] = defaultdict(Counter)
    for entry in seen.journal:
        for posting in entry.postings:
            sums[entry.source][posting.account] += posting.amount
    for dispute in seen.disputes:
        total = dispute["amount"] + DISPUTE_FEE
        status = dispute["status"]
        held = -total if status in chaos_provider.HELD else 0
        taken = total if status in chaos_provider.HELD | {"lost"} else 0
        moved = sums.get(dispute["id"], Counter())
        shown = -sum(t["net"] for t in dispute["balance_transactions"])
        if moved[DISPUTES_HELD] != held:
            violations.append(
                f"{dispute['id']} ({status}): {moved[DISPUTES_HELD]} held, not {held}"
            )
        if moved[AVAILABLE] != taken or shown != taken:
            violations.append(
                f"{dispute['id']} ({status}): took {moved[AVAILABLE]} (shown {shown}), not {taken}"
            )
        if sum(moved.values()) != 0:
            violations.append(f"{dispute['id']}: its entries sum to {sum(moved.values())}")
    return violations


@invariant("the run itself completed (no client gave up, no unexpected answer)")
def run_completed(seen: Observed) -> list[str]:
    return list(seen.errors)


# -- driving it ---------------------------------------------------------------------------------


@dataclass
class Report:
    """What a run did and found."""

    config: ChaosConfig
    seconds: float = 0.0
    statuses: Counter[str] = field(default_factory=Counter)
    faults: dict[str, int] = field(default_factory=dict)
    results: list[tuple[str, list[str]]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(not violations for _, violations in self.results)

    def print(self, out: Any = sys.stdout) -> None:
        print(f"\nchaos: {self.config.payments} payments in {self.seconds:.1f} s", file=out)
        print(
            "  final states: " + ", ".join(f"{k} {v}" for k, v in self.statuses.items()), file=out
        )
        print("  faults injected:", file=out)
        for name, count in self.faults.items():
            print(f"    {name:<44} {count}", file=out)
        print("  invariants:", file=out)
        for name, violations in self.results:
            mark = "ok  " if not violations else "FAIL"
            print(f"    [{mark}] {name}" + (f": {len(violations)}" if violations else ""), file=out)
            for line in violations[:10]:
                print(f"           {line}", file=out)
        print("  result: " + ("all invariants hold" if self.ok else "VIOLATIONS"), file=out)


def sandbox_config(config: ChaosConfig) -> SandboxConfig:
    return SandboxConfig(
        api_port=0,
        aws_port=0,
        admin_key=ADMIN_KEY,
        secret_key="sk_test_chaos_demo",
        settings=(
            ("PAYFLOW_IDEMPOTENCY_LEASE_MS", "1500"),
            ("PAYFLOW_CONFIRM_WAIT_MS", "3000"),
            ("PAYFLOW_WEBHOOK_RETRY_SCHEDULE", RETRY_SCHEDULE),
            ("PAYFLOW_WEBHOOK_TIMEOUT_SECONDS", "2"),
            ("PAYFLOW_LOG_LEVEL", "CRITICAL"),
            ("STRIPE_WEBHOOK_SECRET", chaos_provider.STRIPE_WEBHOOK_SECRET),
        ),
        time_scale=0.01,
        duplicate_delivery_rate=config.duplicate_rate,
        duplicate_seed=config.seed,
    )


@contextmanager
def running(config: ChaosConfig) -> Iterator[Sandbox]:
    with Sandbox(sandbox_config(config)) as sandbox:
        yield sandbox


def run(config: ChaosConfig, sandbox: Sandbox | None = None) -> Report:
    """The whole run; starts a sandbox unless one (configured by `sandbox_config`) is given."""
    if sandbox is None:
        with running(config) as started:
            return run(config, started)
    started_at = time.monotonic()
    report = Report(config)
    rng = random.Random(config.seed)
    admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
    base = sandbox.api_url
    merchant = requests.post(
        f"{base}/v1/sandbox/merchants", data={"name": "chaos"}, headers=admin, timeout=10
    ).json()
    client = Client(base, merchant["secret_key"])
    suffix = uuid.uuid4().hex[:6]
    connectors = [f"chaos_a_{suffix}", f"chaos_b_{suffix}"]
    routing: dict[str, Any] = {
        "connectors": [
            {"id": c, "kind": "simulator", "priority": i + 1, "payment_method_types": ["card"]}
            for i, c in enumerate(connectors)
        ],
        # Failover is exercised; circuits opening would only route around the faults.
        "circuit_breaker": {"minimum_calls": 100_000},
    }
    client.session.post(f"{base}/v1/routing", json=routing, timeout=10).raise_for_status()
    for i, connector in enumerate(connectors):
        requests.post(
            f"{base}/v1/connectors/{connector}",
            json={
                "timeout_rate": config.psp_timeout_rate,
                "error_rate": config.psp_error_rate,
                "decline_rate": config.psp_decline_rate,
                "seed": config.seed + i,
            },
            headers=admin,
            timeout=10,
        ).raise_for_status()

    from chalicelib.container import services

    faults = services().faults
    fired: Counter[str] = Counter()
    duplicate_starts(
        services().payment_intents, config.duplicate_rate, random.Random(config.seed + 1), fired
    )
    errors: list[str] = []
    intended: dict[str, str] = {}
    intended_lock = threading.Lock()
    refunds: list[str] = []

    with FlakyReceiver(config.receiver_failure_rate, config.seed) as receiver:
        for name, events in (("all", ["*"]), ("outcomes", ["payment_intent.succeeded"])):
            endpoint = client.post(
                "/v1/webhook_endpoints",
                {
                    "url": receiver.url(name),
                    "enabled_events[]": events,
                    "metadata[chaos]": name,
                },
            ).json()
            receiver.secrets[name] = endpoint["secret"]

        points = list(CRASH_POINTS) + (list(SLOW_CRASH_POINTS) if config.slow_crashes else [])
        plan = [
            (
                i,
                rng.choice(["auto"] * 8 + ["manual", "decline"]),
                points[(i // config.crash_every) % len(points)]
                if i % config.crash_every == 0
                else None,
            )
            for i in range(config.payments)
        ]

        def one(step: tuple[int, str, str | None]) -> None:
            i, kind, crash = step
            if crash is not None and time.monotonic() - started_at < config.deadline_seconds / 2:
                # The next handler to pass this point dies there, as after PAYFLOW_FAULTS.
                faults.arm(crash, 1)
                fired[crash] += 1
            data = {
                "amount": 1000 + i,
                "currency": "usd",
                "confirm": "true",
                "payment_method": "pm_card_chargeDeclined" if kind == "decline" else "pm_card_visa",
                "capture_method": "manual" if kind == "manual" else "automatic",
            }
            try:
                response = client.post("/v1/payment_intents", data, key=f"chaos-{suffix}-{i}")
                body = response.json()
                if response.status_code == 402:
                    pi = body["error"]["payment_intent"]
                elif response.status_code == 200:
                    pi = body
                else:
                    errors.append(f"payment {i}: {response.status_code} {response.text[:200]}")
                    return
                with intended_lock:
                    intended[pi["id"]] = kind
                if kind == "manual":
                    pi = _settle(client, pi, config.deadline_seconds)
                    if pi["status"] == "requires_capture":
                        captured = client.post(f"/v1/payment_intents/{pi['id']}/capture", {})
                        if captured.status_code != 200:
                            errors.append(f"capture {pi['id']}: {captured.status_code}")
                elif i % config.refund_every == config.refund_every // 2:
                    refund = _refund(client, _settle(client, pi, config.deadline_seconds), i)
                    if refund is not None:
                        with intended_lock:
                            refunds.append(refund)
            except Exception as error:
                errors.append(f"payment {i}: {type(error).__name__}: {error}")

        with ThreadPoolExecutor(config.concurrency) as pool:
            list(pool.map(one, plan))
        _phase("payments sent", started_at)
        # A crash point nobody reached before the end stays armed: disarm, don't count it.
        for point in points:
            if faults.armed(point):
                fired[point] -= 1
        faults.disarm()

        payments = _settle_all(client, intended, started_at + config.deadline_seconds, errors)
        _phase("payments settled", started_at)
        provider = chaos_provider.send(
            base,
            chaos_provider.plan(payments, random.Random(config.seed + 2), config.dispute_every),
            refunds,
            random.Random(config.seed + 3),
            duplicate_rate=config.duplicate_rate,
            max_delay=config.provider_max_delay,
            concurrency=config.concurrency,
            deadline=started_at + config.deadline_seconds,
        )
        errors.extend(provider.errors)
        _phase("provider webhooks sent", started_at)
        seen = _observe(sandbox, client, intended, payments, receiver, errors, config, started_at)
        ledger = getattr(services(), "ledger", None)
        seen.ledger = ledger.check(merchant["id"]) if ledger is not None else None
        seen.provider = provider
        seen.provider_stored = {
            e.id: services().psp_events.stored("stripe", e.id) for e in provider.events
        }
        seen.disputes = list(client.all("/v1/disputes"))
        seen.refunds = {r: client.get(f"/v1/refunds/{r}") for r in provider.refunds}
        seen.journal = services().ledger_store.of_merchant(merchant["id"])[0]
        _phase("webhooks settled and observed", started_at)

    report.seconds = time.monotonic() - started_at
    report.statuses = Counter(pi["status"] for pi in payments.values())
    report.faults = _fault_counts(sandbox, client, connectors, fired, receiver, intended)
    report.faults.update(
        {
            "provider webhooks sent": len(provider.events),
            "refunds reported failed by their provider": len(provider.refunds),
            "provider webhooks duplicated": provider.duplicated,
            "provider webhooks delayed": provider.delayed,
            "provider webhooks reordered (disputes)": provider.reordered,
        }
    )
    report.results = [(name, check(seen)) for name, check in INVARIANTS]
    return report


DUPLICATE_START = "payment execution started twice"


def duplicate_starts(
    payment_intents: Any, rate: float, rng: random.Random, fired: Counter[str]
) -> None:
    """After a share (`rate`) of the payment executions' starts, start the same input again
    under another name: the duplicate runs every task a second time, and the invariants must
    not see it (the PSP key dedups the charge, the conditional transition the write)."""
    client = payment_intents._workflows._client
    lock = threading.Lock()

    def again(params: dict[str, Any], **_: Any) -> None:
        if params.get("name", "").endswith("-again"):
            return
        with lock:
            chosen = rng.random() < rate
        if chosen:
            client.start_execution(**{**params, "name": params["name"] + "-again"})
            with lock:
                fired[DUPLICATE_START] += 1

    # After the first start returns, so that the duplicate races the original's tasks.
    client.meta.events.register(
        "after-call.sfn.StartExecution", lambda **kw: again(kw["context"]["dup_params"])
    )
    client.meta.events.register(
        "before-call.sfn.StartExecution",
        lambda params, context, **_: context.__setitem__("dup_params", _start_params(params)),
    )


def _start_params(params: dict[str, Any]) -> dict[str, Any]:
    body = params.get("body") or b"{}"
    data = json.loads(body) if isinstance(body, bytes | str) else dict(body)
    return {
        "stateMachineArn": data["stateMachineArn"],
        "name": data["name"],
        "input": data["input"],
    }


def _phase(name: str, started_at: float) -> None:
    print(f"  {time.monotonic() - started_at:6.1f} s  {name}", file=sys.stderr, flush=True)


def _refund(client: Client, pi: dict[str, Any], i: int) -> str | None:
    """Refund part of a succeeded payment (its provider will report the refund failed)."""
    if pi["status"] != "succeeded":
        return None
    response = client.post(
        "/v1/refunds",
        {"payment_intent": pi["id"], "amount": 300},
        key=f"chaos-refund-{pi['id']}-{i}",
    )
    return str(response.json()["id"]) if response.status_code == 200 else None


def _settle(client: Client, pi: dict[str, Any], max_seconds: float) -> dict[str, Any]:
    """Wait while the PaymentIntent is processing (its execution still runs)."""
    deadline = time.monotonic() + min(60.0, max_seconds)
    while pi["status"] == "processing" and time.monotonic() < deadline:
        time.sleep(0.2)
        pi = client.get(f"/v1/payment_intents/{pi['id']}")
    return pi


def _settle_all(
    client: Client, intended: dict[str, str], deadline: float, errors: list[str]
) -> dict[str, dict[str, Any]]:
    payments: dict[str, dict[str, Any]] = {}
    for pi in client.all("/v1/payment_intents"):
        if pi["id"] in intended:
            payments[pi["id"]] = pi
    waiting = [i for i, pi in payments.items() if pi["status"] == "processing"]
    while waiting and time.monotonic() < deadline:
        time.sleep(0.5)
        for pi_id in list(waiting):
            payments[pi_id] = client.get(f"/v1/payment_intents/{pi_id}")
        waiting = [i for i in waiting if payments[i]["status"] == "processing"]
    return payments


def _observe(
    sandbox: Sandbox,
    client: Client,
    intended: dict[str, str],
    payments: dict[str, dict[str, Any]],
    receiver: FlakyReceiver,
    errors: list[str],
    config: ChaosConfig,
    started_at: float,
) -> Observed:
    from chalicelib.container import services, webhooks

    endpoints = list(client.all("/v1/webhook_endpoints"))
    deadline = started_at + config.deadline_seconds
    # Settled when no delivery is pending and the pollers have nothing left in flight.
    while time.monotonic() < deadline:
        pending = [
            d
            for endpoint in endpoints
            for d in client.all(
                f"/v1/webhook_endpoints/{endpoint['id']}/deliveries", status="pending"
            )
        ]
        if not pending:
            try:
                sandbox.pollers.wait_idle(timeout=min(30.0, max(1.0, deadline - time.monotonic())))
                break
            except TimeoutError:
                continue
        time.sleep(0.5)
    deliveries = {
        (d["event"], d["webhook_endpoint"]): d
        for endpoint in endpoints
        for d in client.all(f"/v1/webhook_endpoints/{endpoint['id']}/deliveries")
    }
    events = [
        e
        for e in client.all("/v1/events")
        if e["data"]["object"].get("id") in intended
        or e["data"]["object"].get("payment_intent") in intended
    ]
    authorizations: dict[str, list[dict[str, Any]]] = defaultdict(list)
    captures: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in services().simulator_ledger.all_records():
        pi_id = record.get("payment_intent") or _pi_in_key(str(record.get("pk", "")))
        if pi_id not in intended:
            continue
        if record.get("operation") == "authorize" and record.get("status") == "authorized":
            authorizations[pi_id].append(record)
        elif record.get("operation") == "capture":
            captures[pi_id].append(record)
    return Observed(
        payments=payments,
        intended=intended,
        authorizations=dict(authorizations),
        captures=dict(captures),
        events=events,
        endpoints=endpoints,
        deliveries=deliveries,
        dead_lettered=_dead_letter_ids(webhooks().queue),
        hits=list(receiver.hits),
        errors=errors,
        charges=charges_of(client, intended),
    )


def charges_of(client: Client, payments: Iterable[str]) -> dict[str, list[dict[str, Any]]]:
    """The charges of each of `payments`, as /v1/charges lists them."""
    wanted = set(payments)
    charges: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for charge in client.all("/v1/charges"):
        if charge["payment_intent"] in wanted:
            charges[charge["payment_intent"]].append(charge)
    return dict(charges)


def _pi_in_key(pk: str) -> str | None:
    """The PaymentIntent in a simulator key (`capture#<connector>:<pi>:capture`)."""
    return next((part for part in pk.split(":") if part.startswith("pi_")), None)


def _dead_letter_ids(queue: Any) -> set[str]:
    """The delivery ids of every message in the dead-letter queue (peeked: each is hidden for
    a minute, none deleted)."""
    ids: set[str] = set()
    if not queue.dead_letter_url:
        return ids
    client = queue._client
    for _ in range(1000):
        messages = client.receive_message(
            QueueUrl=queue.dead_letter_url, MaxNumberOfMessages=10, VisibilityTimeout=60
        ).get("Messages", [])
        if not messages:
            break
        ids.update(str(json.loads(m["Body"]).get("delivery")) for m in messages)
    return ids


def _fault_counts(
    sandbox: Sandbox,
    client: Client,
    connectors: list[str],
    fired: Counter[str],
    receiver: FlakyReceiver,
    intended: dict[str, str],
) -> dict[str, int]:
    from chalicelib.observability import observability

    # From the run's own PspErrors metric (the sandbox aggregates its EMF lines in-process).
    errors: Counter[str] = Counter()
    aggregate = observability().aggregate
    for series in aggregate.series() if aggregate is not None else []:
        if series.metric == "PspErrors" and series.dimensions.get("connector") in connectors:
            errors[series.dimensions.get("code", "")] += int(series.total)
    failed = Counter(
        pi["status"] for pi in client.all("/v1/payment_intents") if pi["id"] in intended
    )
    counts = {
        "PSP timeouts (PspTimeout)": errors["PspTimeout"],
        "PSP errors (PspUnavailable)": errors["PspUnavailable"],
        "payments declined or failed (simulated, test cards)": failed["requires_payment_method"],
    }
    counts.update(
        {f"crash at {point}": n for point, n in sorted(fired.items()) if point != DUPLICATE_START}
    )
    counts[DUPLICATE_START] = fired[DUPLICATE_START]
    for poller in sandbox.pollers.pollers:
        duplicates = getattr(poller, "duplicates", None)
        if duplicates is not None:
            counts[f"batches delivered twice to {poller.name}"] = duplicates.count
        raised = getattr(poller, "raised", None)
        for kind, n in sorted(raised.by_type.items()) if raised is not None else ():
            # InjectedCrash: the crashes above; anything else, a handler died of it.
            counts[f"{poller.name} runs that raised {kind}"] = n
    counts["webhook answers 500 (receiver)"] = sum(1 for h in receiver.hits if h.status != 200)
    counts["client retries (409/5xx/crash)"] = client.retries
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="payflow.chaos", description=__doc__.splitlines()[0])
    parser.add_argument("--payments", type=int, default=ChaosConfig.payments)
    parser.add_argument("--concurrency", type=int, default=ChaosConfig.concurrency)
    parser.add_argument("--seed", type=int, default=ChaosConfig.seed)
    parser.add_argument("--max-seconds", type=float, default=ChaosConfig.max_seconds)
    parser.add_argument(
        "--slow-crashes",
        action="store_true",
        help="also crash the webhook delivery handler (adds the queue's 60 s visibility timeout)",
    )
    args = parser.parse_args(argv)
    report = run(
        ChaosConfig(
            payments=args.payments,
            concurrency=args.concurrency,
            seed=args.seed,
            max_seconds=args.max_seconds,
            slow_crashes=args.slow_crashes,
        )
    )
    report.print()
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
