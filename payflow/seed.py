"""`payflow seed` (`make seed`): a realistic payment history, made through the API.

Several merchants, each routed to two simulated connectors (one merchant's primary is flaky,
so its payments retry, fail over and open the circuit), card payments of every brand and
outcome (declines, 3-D Secure passed and failed, manual capture in full, in part or canceled,
abandoned carts), refunds in full, in part and refused, with `created` times spread over the
last 30 days (busier in the day than at night).

Every object is made by the same API calls a merchant would send, so its events, webhooks and
ledger entries are exactly the ones the API makes. Only the time is the sandbox's: before each
slot of operations the admin-only ``POST /v1/sandbox/clock`` sets the business clock to the
slot's time, and the clock is reset to the real time at the end (also on error or Ctrl-C).
Operations run in time order, a bounded number at once, and an operation never shares a slot
with the one it follows (a refund comes after its payment succeeded).
"""

from __future__ import annotations

import argparse
import math
import os
import random
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TextIO

from payflow.api_client import ApiClient, ApiError
from payflow.locate import CliError

DAY = 86_400
CARDS = [
    ("pm_card_visa", 30),
    ("pm_card_mastercard", 18),
    ("pm_card_visa_debit", 8),
    ("pm_card_amex", 6),
    ("pm_card_discover", 3),
    ("pm_card_jcb", 2),
    ("pm_card_mastercard_debit", 3),
    ("pm_card_unionpay", 1),
]
DECLINES = [
    ("pm_card_chargeDeclined", 4),
    ("pm_card_chargeDeclinedInsufficientFunds", 3),
    ("pm_card_chargeDeclinedExpiredCard", 1),
    ("pm_card_chargeDeclinedIncorrectCvc", 1),
    ("pm_card_chargeDeclinedFraudulent", 1),
    ("pm_card_chargeDeclinedLostCard", 1),
]
SCENARIOS = [
    ("paid", 62),
    ("declined", 9),
    ("three_d_secure", 5),
    ("three_d_secure_failed", 1),
    ("manual_capture", 5),
    ("partial_capture", 4),
    ("authorization_canceled", 2),
    ("abandoned", 4),
    ("canceled", 2),
    ("refunded", 3),
    ("partially_refunded", 2),
    ("refund_refused", 1),
]
CURRENCIES = [("usd", 70), ("eur", 20), ("gbp", 10)]
HOURLY = [1, 1, 1, 1, 1, 2, 3, 5, 7, 8, 8, 9, 10, 9, 8, 8, 8, 8, 9, 9, 7, 5, 3, 2]
"""Relative traffic per hour of the day (UTC)."""


@dataclass
class Operation:
    """One API call (or a small fixed sequence) at a moment of the history."""

    at: int
    kind: str
    scenario: str
    merchant: int
    params: dict[str, Any] = field(default_factory=dict)
    parent: Operation | None = None
    result: dict[str, Any] | None = None
    outcome: str = ""


@dataclass
class SeedReport:
    """What a seed run made, and how long it took."""

    payments: int
    operations: int
    seconds: float
    outcomes: Counter[str]
    merchants: list[dict[str, Any]]


def _pick(rng: random.Random, weighted: list[tuple[str, int]]) -> str:
    return rng.choices([v for v, _ in weighted], weights=[w for _, w in weighted])[0]


def _moment(rng: random.Random, start: int, end: int) -> int:
    """A time in [start, end), its hour of day drawn from `HOURLY`."""
    for _ in range(100):
        at = rng.randrange(start, end)
        if rng.random() * max(HOURLY) < HOURLY[(at % DAY) // 3600]:
            return at
    return rng.randrange(start, end)


def _amount(rng: random.Random) -> int:
    # Basket sizes are roughly log-normal: many small, a few large (minor units).
    return max(100, min(500_000, round(math.exp(rng.gauss(8.2, 1.0)) / 10) * 10))


def plan(
    payments: int, merchants: int, *, now: int, days: int = 30, rng: random.Random
) -> list[Operation]:
    """Every operation of the history, in time order (follow-ups after what they follow)."""
    start, end = now - days * DAY, now - 600
    operations: list[Operation] = []
    for _ in range(payments):
        scenario = _pick(rng, SCENARIOS)
        at = _moment(rng, start, end)
        amount = _amount(rng)
        params: dict[str, Any] = {
            "amount": amount,
            "currency": _pick(rng, CURRENCIES),
            "payment_method": _pick(rng, CARDS),
            "description": f"Order {rng.randrange(10_000, 99_999)}",
            "metadata": {"seed": "true", "scenario": scenario},
        }
        if scenario == "declined":
            params["payment_method"] = _pick(rng, DECLINES)
        elif scenario.startswith("three_d_secure"):
            params["payment_method"] = "pm_card_threeDSecure2Required"
        elif scenario == "refund_refused":
            params["payment_method"] = "pm_card_refundFail"
        manual = scenario in ("manual_capture", "partial_capture", "authorization_canceled")
        if manual:
            params["capture_method"] = "manual"
        if scenario not in ("abandoned", "canceled"):
            params["confirm"] = True
        payment = Operation(at, "create", scenario, rng.randrange(merchants), params)
        operations.append(payment)
        later = min(end, at + rng.randrange(60, 3 * DAY))
        follow_ups: dict[str, tuple[str, dict[str, Any], int]] = {
            "three_d_secure": ("authenticate", {"outcome": "succeeded"}, min(end, at + 90)),
            "three_d_secure_failed": ("authenticate", {"outcome": "failed"}, min(end, at + 90)),
            "manual_capture": ("capture", {}, later),
            "partial_capture": ("capture", {"amount_to_capture": max(50, amount // 2)}, later),
            "authorization_canceled": ("cancel", {"cancellation_reason": "abandoned"}, later),
            "canceled": ("cancel", {"cancellation_reason": "requested_by_customer"}, later),
            "refunded": ("refund", {"reason": "requested_by_customer"}, later),
            "partially_refunded": ("refund", {"amount": max(50, amount // 3)}, later),
            "refund_refused": ("refund", {}, later),
        }
        follow_up = follow_ups.get(scenario)
        if follow_up is not None:
            kind, extra, when = follow_up
            operations.append(
                Operation(max(when, at + 1), kind, scenario, payment.merchant, extra, payment)
            )
    operations.sort(key=lambda op: (op.at, op.parent is not None))
    return operations


def slots(operations: list[Operation], size: int) -> Iterator[list[Operation]]:
    """Consecutive groups of at most `size` operations, none holding an operation together
    with the one it follows."""
    slot: list[Operation] = []
    for op in operations:
        if len(slot) >= size or (op.parent is not None and op.parent in slot):
            yield slot
            slot = []
        slot.append(op)
    if slot:
        yield slot


class Seeder:
    """Runs a plan against the API: merchants first, then the operations slot by slot."""

    def __init__(
        self,
        api_base: str,
        admin_key: str,
        *,
        concurrency: int = 16,
        out: TextIO = sys.stdout,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.api_base = api_base
        self.admin = ApiClient(api_base, admin_key)
        self.concurrency = concurrency
        self.out = out
        self._clock = clock
        self._run = uuid.uuid4().hex[:8]
        self._clients: list[ApiClient] = []

    def set_clock(self, now: int | None) -> None:
        data = {"reset": True} if now is None else {"now": now}
        try:
            self.admin.post("/v1/sandbox/clock", data)
        except ApiError as error:
            if error.status == 404:
                raise CliError(
                    "this PayFlow cannot set its clock (POST /v1/sandbox/clock): seed the "
                    "`make dev` sandbox's own API"
                ) from None
            raise

    def merchants(self, count: int) -> list[dict[str, Any]]:
        """`count` merchants, each routed to a primary and a backup simulator; the last
        merchant's primary fails half of its calls (retries, failover, an opening circuit)."""
        made = []
        for index in range(count):
            merchant = self.admin.post(
                "/v1/sandbox/merchants", {"name": f"Seed shop {index + 1} ({self._run})"}
            )
            client = ApiClient(self.api_base, merchant["secret_key"])
            primary, backup = f"seed_{self._run}_{index}_a", f"seed_{self._run}_{index}_b"
            client.post(
                "/v1/routing",
                {
                    "connectors": [
                        {"id": name, "kind": "simulator", "priority": rank + 1}
                        for rank, name in enumerate((primary, backup))
                    ],
                    "circuit_breaker": {
                        "window_seconds": 60,
                        "failure_rate_threshold": 0.5,
                        "minimum_calls": 5,
                        "cooldown_seconds": 20,
                    },
                },
                as_json=True,
            )
            flaky = index == count - 1 and count > 1
            self.admin.post(
                f"/v1/connectors/{primary}",
                {"error_rate": 0.5 if flaky else 0.0, "latency_ms_min": 5, "latency_ms_max": 40},
                as_json=True,
            )
            self.admin.post(
                f"/v1/connectors/{backup}",
                {"latency_ms_min": 10, "latency_ms_max": 80},
                as_json=True,
            )
            self._clients.append(client)
            made.append({**merchant, "connectors": [primary, backup], "flaky": flaky})
        return made

    def run(self, operations: list[Operation], payments: int) -> float:
        """Every operation, slot by slot at the slot's time; the seconds it took."""
        started = self._clock()
        done = 0
        made = 0
        next_report = 0.0
        with ThreadPoolExecutor(self.concurrency, thread_name_prefix="seed") as pool:
            for slot in slots(operations, self.concurrency):
                self.set_clock(slot[0].at)
                list(pool.map(self._perform, slot))
                done += len(slot)
                made += sum(1 for op in slot if op.kind == "create")
                elapsed = self._clock() - started
                if elapsed >= next_report or done == len(operations):
                    next_report = elapsed + 2.0
                    day = time.strftime("%Y-%m-%d", time.gmtime(slot[-1].at))
                    rate = made / elapsed if elapsed else 0.0
                    print(
                        f"seed: {made}/{payments} payments, {done}/{len(operations)} calls "
                        f"(history at {day}), {elapsed:.1f} s, {rate:.1f} payments/s",
                        file=self.out,
                        flush=True,
                    )
        return self._clock() - started

    def _perform(self, op: Operation) -> None:
        client = self._clients[op.merchant]
        key = f"seed-{self._run}-{id(op)}"
        try:
            op.result = self._settled(client, self._call(client, op, key))
            op.outcome = str(op.result.get("status", "ok"))
        except ApiError as error:
            # Declines are answers, not failures: the PaymentIntent exists, failed.
            if error.status != 402:
                raise
            op.outcome = "declined"
            intent = error.error.get("payment_intent")
            op.result = intent if isinstance(intent, dict) else {"id": None}

    def _settled(
        self, client: ApiClient, obj: dict[str, Any], timeout: float = 120.0
    ) -> dict[str, Any]:
        """`obj` once its execution has ended: a confirm or refund that outlasted the API's
        wait answers processing / pending, and the clock must not move on before its outcome
        (and its events and ledger entries) are written at this slot's time."""
        unsettled = {"payment_intent": "processing", "refund": "pending"}
        kind = obj.get("object")
        if kind not in unsettled:
            return obj
        path = f"/v1/{kind}s/{obj['id']}"
        deadline = self._clock() + timeout
        while obj.get("status") == unsettled[kind] and self._clock() < deadline:
            time.sleep(0.25)
            obj = client.get(path)
        return obj

    def _call(self, client: ApiClient, op: Operation, key: str) -> dict[str, Any]:
        if op.kind == "create":
            return self._retrying(
                lambda: client.post("/v1/payment_intents", op.params, idempotency_key=key)
            )
        parent = (op.parent.result if op.parent else None) or {}
        intent = parent.get("id")
        if not intent:
            return {"status": "skipped"}
        if op.kind == "refund":
            if parent.get("status") != "succeeded":
                return {"status": "skipped"}
            params = {"payment_intent": intent, **op.params}
            return self._retrying(lambda: client.post("/v1/refunds", params, idempotency_key=key))
        path = {
            "authenticate": f"/v1/sandbox/payment_intents/{intent}/authenticate",
            "capture": f"/v1/payment_intents/{intent}/capture",
            "cancel": f"/v1/payment_intents/{intent}/cancel",
        }[op.kind]
        return self._retrying(lambda: client.post(path, op.params, idempotency_key=key))

    @staticmethod
    def _retrying(send: Callable[[], dict[str, Any]], attempts: int = 5) -> dict[str, Any]:
        """`send()`, again (same Idempotency-Key) on 409 key-in-use and 5xx, as stripe-python
        would: the replay answers with the first outcome."""
        for attempt in range(attempts):
            try:
                return send()
            except ApiError as error:
                if (error.status != 409 and error.status < 500) or attempt == attempts - 1:
                    raise
                time.sleep(0.2 * (attempt + 1))
        raise AssertionError("unreachable")


def seed(
    api_base: str,
    admin_key: str,
    *,
    payments: int,
    merchants: int = 3,
    days: int = 30,
    concurrency: int = 16,
    rng_seed: int | None = None,
    out: TextIO = sys.stdout,
) -> SeedReport:
    """Seed `payments` payments over the last `days` days; the clock is reset afterwards."""
    rng = random.Random(rng_seed)
    now = int(time.time())
    seeder = Seeder(api_base, admin_key, concurrency=concurrency, out=out)
    operations = plan(payments, merchants, now=now, days=days, rng=rng)
    print(
        f"seed: {payments} payments ({len(operations)} API operations) for {merchants} "
        f"merchants over {days} days, {concurrency} at a time",
        file=out,
        flush=True,
    )
    try:
        seeder.set_clock(now - days * DAY - 3600)
        made = seeder.merchants(merchants)
        seconds = seeder.run(operations, payments)
    finally:
        seeder.set_clock(None)
    outcomes = Counter(f"{op.kind}:{op.outcome}" for op in operations)
    return SeedReport(payments, len(operations), seconds, outcomes, made)


def print_report(report: SeedReport, out: TextIO) -> None:
    print(
        f"seed: done, {report.payments} payments and {report.operations} API operations in "
        f"{report.seconds:.1f} s ({report.payments / max(report.seconds, 1e-9):.1f} payments/s)",
        file=out,
    )
    for outcome, count in sorted(report.outcomes.items()):
        print(f"  {outcome:36} {count}", file=out)
    for merchant in report.merchants:
        note = " (flaky primary connector)" if merchant["flaky"] else ""
        print(f"  merchant {merchant['id']}  key {merchant['secret_key']}{note}", file=out)


def add_command(commands: Any, api_options: Callable[..., None]) -> None:
    """`payflow seed` on the CLI's subcommands."""
    command = commands.add_parser(
        "seed",
        help="make a realistic 30-day payment history through the API",
        description=(__doc__ or "").split("\n\n")[1].replace("\n", " "),
    )
    command.add_argument("--payments", type=int, default=1000, help="default 1000")
    command.add_argument("--merchants", type=int, default=3, help="default 3")
    command.add_argument("--days", type=int, default=30, help="history length (default 30)")
    command.add_argument("--concurrency", type=int, default=16, help="calls at once (default 16)")
    command.add_argument("--seed", type=int, help="random seed of the mix (for a given start time)")
    command.add_argument(
        "--admin-key",
        default=os.environ.get("PAYFLOW_ADMIN_KEY", "sk_admin_payflow"),
        help="the sandbox's admin key (default: PAYFLOW_ADMIN_KEY or sk_admin_payflow)",
    )
    api_options(command, key=False)


def run(args: argparse.Namespace, api_base: str, out: TextIO | None = None) -> int:
    """`payflow seed` with parsed arguments."""
    out = out or sys.stdout
    if args.payments < 1 or args.merchants < 1 or args.days < 1 or args.concurrency < 1:
        raise CliError("--payments, --merchants, --days and --concurrency must be at least 1")
    report = seed(
        api_base,
        args.admin_key,
        payments=args.payments,
        merchants=args.merchants,
        days=args.days,
        concurrency=args.concurrency,
        rng_seed=args.seed,
        out=out,
    )
    print_report(report, out)
    return 0
