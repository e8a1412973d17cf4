"""`make dashboard-bench`: is the dashboard responsive with many payments? (docs/dashboard.md)

Seeds PAYMENTS payments (default 2,000) for one merchant into a fresh embedded sandbox, spread
over 30 days, then measures in headless Chromium (payflow.browser) and over HTTP: the payments
list (plain, by connector, by a search filter), a payment's page (one answered at once, one
handed to Step Functions) and analytics over 30 days.

Seeding is as direct as it can be while the stored items stay exactly the API's: each payment
is made by the PaymentIntents service in this process (`create` with `confirm`: routing, the
simulator's answer, the same transaction with its events, charge, ledger entries and routing
decision), skipping only the HTTP layer and its idempotency record. The stream consumers then
fold the calls into analytics as they would. The business clock is set back before each slot
of payments, as `payflow seed` does.

    .venv/bin/python bench/dashboard.py [--payments 2000] [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import requests  # noqa: E402

from bench.run import ADMIN_KEY, sandbox  # noqa: E402

RESULTS = ROOT / "build" / "dashboard-bench.json"
DAY = 86_400
DAYS = 30
SLOTS = 120
"""Moments of the 30 days the payments are spread over (the business clock moves per slot)."""
CARDS = [
    ("pm_card_visa", 50),
    ("pm_card_mastercard", 25),
    ("pm_card_amex", 10),
    ("pm_card_chargeDeclined", 6),
    ("pm_card_chargeDeclinedInsufficientFunds", 4),
]
CONNECTORS = ("bench_primary", "bench_secondary")


def _pick(rng: random.Random, weighted: list[tuple[str, int]]) -> str:
    return rng.choices([w[0] for w in weighted], weights=[w[1] for w in weighted])[0]


def _timed(step: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = step()
    return (time.perf_counter() - started) * 1000, result


def _summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "median_ms": round(statistics.median(ordered), 1),
        "max_ms": round(ordered[-1], 1),
        "runs": len(ordered),
    }


# -- seeding ---------------------------------------------------------------------------------


def merchant(base: str, admin_key: str) -> dict[str, Any]:
    """A merchant of the bench's own, routed half and half to two simulators."""
    made = requests.post(
        f"{base}/v1/sandbox/merchants",
        headers={"Authorization": f"Bearer {admin_key}"},
        data={"name": "dashboard bench"},
        timeout=30,
    )
    made.raise_for_status()
    body = made.json()
    routing = {
        "connectors": [
            {"id": c, "kind": "simulator", "priority": 1, "weight": 1} for c in CONNECTORS
        ]
    }
    routed = requests.post(
        f"{base}/v1/routing",
        json=routing,
        auth=(body["secret_key"], ""),
        timeout=30,
    )
    routed.raise_for_status()
    return body  # type: ignore[no-any-return]


def seed(merchant_id: str, payments: int, concurrency: int, rng: random.Random) -> float:
    """`payments` confirmed card payments over the last 30 days; seconds it took."""
    from chalicelib.container import services
    from chalicelib.domain.payment_intents import CaptureMethod
    from chalicelib.services.context import RequestContext

    service = services().payment_intents
    clock = services().clock
    assert clock is not None, "the sandbox has a business clock"
    now = int(time.time())
    plan = [
        (
            rng.randint(100, 50_000),
            _pick(rng, CARDS),
            CaptureMethod.MANUAL if rng.random() < 0.05 else CaptureMethod.AUTOMATIC,
        )
        for _ in range(payments)
    ]
    per_slot = max(1, -(-payments // SLOTS))
    slots = -(-payments // per_slot)

    def one(item: tuple[int, str, CaptureMethod], index: int) -> None:
        amount, card, capture = item
        service.create(
            merchant_id,
            RequestContext(request_id=None),
            amount=amount,
            currency="usd",
            capture_method=capture,
            payment_method=card,
            confirm=True,
            description=None,
            metadata={"order_id": f"bench-{index}"},
            payment_method_types=None,
        )

    started = time.perf_counter()
    try:
        with ThreadPoolExecutor(concurrency) as pool:
            for slot, first in enumerate(range(0, payments, per_slot)):
                clock.set(now - DAYS * DAY + int((slot + 0.5) * DAYS * DAY / slots))
                batch = plan[first : first + per_slot]
                list(pool.map(one, batch, range(first, first + len(batch))))
                if slot % 10 == 0:
                    done = min(first + per_slot, payments)
                    print(f"  seeded {done}/{payments}", file=sys.stderr, flush=True)
    finally:
        clock.set(None)
    return time.perf_counter() - started


def bulk(merchant_id: str, payments: int, rng: random.Random) -> float:
    """`payments` more PaymentIntents written straight into the payments table, 25 to a
    BatchWriteItem, spread over the same 30 days; seconds it took. Each item is laid out by the
    object store's own `_item` (top-level attributes and index keys as the API writes them),
    but they are PaymentIntents alone: no charge, events or ledger entries, no PSP call. They
    make the lists, searches and indexes read past as many payments as the API would have made;
    the pages and analytics are measured on the payments `seed` made through the service."""
    from chalicelib.container import services
    from chalicelib.domain.ids import new_id
    from chalicelib.domain.payment_intents import PaymentError, PaymentIntent, PaymentIntentStatus

    store = services().objects
    client = services().dynamodb
    table = services().settings.payments_table
    now = int(time.time())
    moments = sorted(rng.randint(now - DAYS * DAY, now - 60) for _ in range(payments))
    started = time.perf_counter()
    pending: list[dict[str, Any]] = []
    for created in moments:
        connector = rng.choice(CONNECTORS)
        pi_id = new_id("pi", clock=lambda at=created: float(at))
        declined = rng.random() < 0.1
        amount = rng.randint(100, 50_000)
        pi = PaymentIntent(
            id=pi_id,
            merchant_id=merchant_id,
            amount=amount,
            currency="usd",
            status=(
                PaymentIntentStatus.REQUIRES_PAYMENT_METHOD
                if declined
                else PaymentIntentStatus.SUCCEEDED
            ),
            created=created,
            client_secret=f"{pi_id}_secret_bench",
            payment_method="pm_card_visa",
            attempt_count=1,
            candidates=list(CONNECTORS),
            answered_by=connector,
            connector=None if declined else connector,
            amount_received=0 if declined else amount,
            last_payment_error=(
                PaymentError(type="card_error", code="card_declined", message="Declined.")
                if declined
                else None
            ),
            metadata={"order_id": f"bulk-{pi_id[-6:]}"},
            version=2,
        )
        # The store's own item layout (a bench may read a private helper; Lambda code never).
        item = store._item("payment_intent", pi, pi.attributes())
        pending.append({"PutRequest": {"Item": item}})
        if len(pending) == 25:
            _write(client, table, pending)
            pending = []
    if pending:
        _write(client, table, pending)
    return time.perf_counter() - started


def _write(client: Any, table: str, requests_: list[dict[str, Any]]) -> None:
    while requests_:
        answer = client.batch_write_item(RequestItems={table: requests_})
        requests_ = answer.get("UnprocessedItems", {}).get(table, [])


def handed_over(base: str, admin_key: str, key: str) -> str:
    """A payment whose first call fails at both connectors, so Step Functions takes it over
    (its page reads the execution and its history too)."""
    for connector in CONNECTORS:
        requests.post(
            f"{base}/v1/connectors/{connector}",
            data={"fail_next_calls": "1", "fail_with": "unavailable"},
            headers={"Authorization": f"Bearer {admin_key}"},
            timeout=30,
        ).raise_for_status()
    paid = requests.post(
        f"{base}/v1/payment_intents",
        data={"amount": "2500", "currency": "usd", "payment_method": "pm_card_visa"}
        | {"confirm": "true"},
        auth=(key, ""),
        timeout=60,
    )
    paid.raise_for_status()
    return str(paid.json()["id"])


def wait_for_rollups(base: str, key: str, calls: int, timeout: float) -> dict[str, Any]:
    """Until analytics count at least `calls` PSP calls over 30 days (the stream consumer
    folds them a moment after they are made), or `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        report = _analytics(base, key)
        if report["total"]["calls"] >= calls or time.monotonic() > deadline:
            return report
        time.sleep(0.2)


def _analytics(base: str, key: str) -> dict[str, Any]:
    end = int(time.time())
    response = requests.get(
        f"{base}/v1/analytics",
        params={"created[gte]": str(end - DAYS * DAY), "created[lte]": str(end)},
        auth=(key, ""),
        timeout=60,
    )
    response.raise_for_status()
    return response.json()  # type: ignore[no-any-return]


# -- measuring ----------------------------------------------------------------------------------


STORY = (ROOT / "dashboard" / "src" / "pages" / "timeline.ts").read_text()


def _story_query() -> str:
    """The payment page's own GraphQL query (timeline.ts), so the API figure is the page's."""
    start = STORY.index("const STORY = `") + len("const STORY = `")
    return STORY[start : STORY.index("`;", start)]


def api_times(base: str, key: str, old: str, retried: str, runs: int) -> dict[str, Any]:
    """Each read the pages make, `runs` times over fresh connections: median and worst."""
    reads: dict[str, Callable[[], requests.Response]] = {
        "list (25, newest)": lambda: requests.get(
            f"{base}/v1/payment_intents", params={"limit": 25}, auth=(key, ""), timeout=60
        ),
        "list by connector (index)": lambda: requests.get(
            f"{base}/v1/payment_intents",
            params={"limit": 25, "connector": CONNECTORS[1]},
            auth=(key, ""),
            timeout=60,
        ),
        "list by method (index)": lambda: requests.get(
            f"{base}/v1/payment_intents",
            params={"limit": 25, "payment_method_type": "card"},
            auth=(key, ""),
            timeout=60,
        ),
        "search connector + status": lambda: requests.get(
            f"{base}/v1/payment_intents/search",
            params={
                "limit": 25,
                "query": f"connector:'{CONNECTORS[1]}' AND status:'requires_capture'",
            },
            auth=(key, ""),
            timeout=60,
        ),
        "payment story (GraphQL), 30 days old": lambda: _graphql(base, key, old),
        "payment story (GraphQL), with execution": lambda: _graphql(base, key, retried),
        "analytics, 30 days": lambda: requests.get(
            f"{base}/v1/analytics",
            params={
                "created[gte]": str(int(time.time()) - DAYS * DAY),
                "created[lte]": str(int(time.time())),
            },
            auth=(key, ""),
            timeout=60,
        ),
    }
    out: dict[str, Any] = {}
    for name, read in reads.items():
        samples = []
        for _ in range(runs):
            took, response = _timed(read)
            response.raise_for_status()
            assert "errors" not in response.json(), response.text
            samples.append(took)
        out[name] = _summary(samples)
    return out


def _graphql(base: str, key: str, pi_id: str) -> requests.Response:
    return requests.post(
        f"{base}/graphql",
        json={"query": _story_query(), "variables": {"id": pi_id}},
        auth=(key, ""),
        timeout=60,
    )


def page_times(
    base: str,
    key: str,
    old: str,
    retried: str,
    runs: int,
    browser: Any | None = None,
    shots: Path | None = None,
) -> dict[str, Any]:
    """Wall time in headless Chromium from an action to the page showing its result, `runs`
    visits in fresh browser contexts (of `browser`, or of one launched for this)."""
    found: dict[str, list[float]] = {}

    def visits(chromium: Any) -> None:
        for run in range(runs):
            last = shots if run == runs - 1 else None
            for name, took in visit(chromium, base, key, old, retried, last).items():
                found.setdefault(name, []).append(took)

    if browser is not None:
        visits(browser)
    else:
        from playwright.sync_api import sync_playwright

        from payflow.browser import launch

        with sync_playwright() as playwright:
            launched = launch(playwright)
            try:
                visits(launched)
            finally:
                launched.close()
    return {name: _summary(samples) for name, samples in found.items()}


def visit(
    browser: Any, base: str, key: str, old: str, retried: str, shots: Path | None = None
) -> dict[str, float]:
    """One user's path: sign in, filter by connector, two payment pages, 30 days of
    analytics; the milliseconds each step took to show (and, with `shots`, a screenshot of each
    page saved there once it has been timed)."""

    def shot(name: str) -> None:
        if shots is not None:
            shots.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(shots / f"{name}.png"), full_page=True)

    context = browser.new_context(viewport={"width": 1280, "height": 860})
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    times: dict[str, float] = {}
    times["open /dashboard (sign-in form)"], _ = _timed(
        lambda: (page.goto(f"{base}/dashboard"), page.wait_for_selector("#secret-key"))
    )
    page.fill("#secret-key", key)
    page.click("#signin button[type=submit]")
    times["sign in -> first page of payments"], _ = _timed(
        lambda: page.wait_for_selector("#payments tbody tr")
    )
    option = f"select[name=connector] option[value={CONNECTORS[1]}]"
    page.wait_for_selector(option, state="attached")
    expected = _first_page(base, key, CONNECTORS[1])

    def filtered() -> None:
        page.select_option("select[name=connector]", CONNECTORS[1])
        _until(lambda: _shown(page) == expected)

    times["connector filter -> its payments"], _ = _timed(filtered)
    shot("dashboard-payments")
    for name, pi_id, selector in (
        ("payment page, 30 days old", old, "ol.timeline li[data-kind=event]"),
        ("payment page, with execution", retried, "ol.timeline li[data-kind=execution]"),
    ):
        url = f"{base}/dashboard#/payments/{pi_id}"
        times[name], _ = _timed(lambda: (page.goto(url), page.wait_for_selector(selector)))  # noqa: B023
        shot("dashboard-payment" if pi_id == old else "dashboard-payment-execution")

    def analytics() -> None:
        page.click("a[data-nav=analytics]")
        page.wait_for_selector("#analytics-timing[data-render-ms]")
        page.select_option("#range", str(DAYS * DAY))
        _until(lambda: "day buckets" in (page.text_content("#analytics-timing") or ""))
        page.wait_for_selector("#latency tbody tr")

    times["analytics, 30 days -> drawn"], _ = _timed(analytics)
    times["analytics drawing alone"] = float(
        page.get_attribute("#analytics-timing", "data-render-ms") or 0
    )
    shot("dashboard-analytics")
    context.close()
    assert errors == [], errors
    return times


def _first_page(base: str, key: str, connector: str) -> list[str]:
    listed = requests.get(
        f"{base}/v1/payment_intents",
        params={"limit": 25, "connector": connector},
        auth=(key, ""),
        timeout=60,
    ).json()
    return [pi["id"] for pi in listed["data"]]


def _shown(page: Any) -> list[str]:
    rows = page.eval_on_selector_all("#payments tbody tr", "trs => trs.map(tr => tr.dataset.id)")
    return list(rows)


def _until(done: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise TimeoutError("the page did not show it in time")
        time.sleep(0.02)


# -- the run ------------------------------------------------------------------------------------


def measure(
    base: str,
    admin_key: str,
    payments: int,
    runs: int,
    browser: Any | None = None,
    shots: Path | None = None,
    **options: int,
) -> dict[str, Any]:
    """Seed `payments` for a new merchant of the PayFlow at `base` (this process's sandbox),
    then measure its pages (in `browser`, or one launched) and reads `runs` times each."""
    owner = merchant(base, admin_key)
    key = owner["secret_key"]
    print(f"seeding {payments} payments over {DAYS} days", file=sys.stderr)
    rng = random.Random(options.get("seed", 15))
    seconds = seed(owner["id"], payments, options.get("concurrency", 4), rng)
    extra = options.get("bulk", 0)
    bulk_seconds = bulk(owner["id"], extra, rng) if extra else 0.0
    retried = handed_over(base, admin_key, key)
    report = wait_for_rollups(base, key, payments, timeout=max(120, seconds))
    oldest = requests.get(
        f"{base}/v1/payment_intents/search",
        params={"query": "metadata['order_id']:'bench-0'"},
        auth=(key, ""),
        timeout=120,
    ).json()["data"][0]["id"]
    from chalicelib.container import services

    table = services().dynamodb.describe_table(TableName=services().settings.payments_table)
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        # The embedded moto answers an index Query by reading the whole table, so its read
        # times grow with this count (DynamoDB's do not).
        "table_items": table["Table"]["ItemCount"],
        "payments": payments + extra,
        "through_the_service": payments,
        "written_directly": extra,
        "bulk_seconds": round(bulk_seconds, 1),
        "seed_seconds": round(seconds, 1),
        "seeded_per_second": round(payments / seconds, 1),
        "analytics_calls_folded": report["total"]["calls"],
        "api": api_times(base, key, oldest, retried, runs),
        "browser": page_times(base, key, oldest, retried, runs, browser, shots),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="The dashboard's responsiveness, seeded")
    parser.add_argument("--payments", type=int, default=2_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument(
        "--bulk",
        type=int,
        default=0,
        help="PaymentIntents written straight into the table besides --payments (see bulk())",
    )
    parser.add_argument("--screenshots", type=Path, help="save the last visit's pages here")
    args = parser.parse_args(argv)
    with sandbox() as running:
        results = measure(
            running.api_url,
            ADMIN_KEY,
            args.payments,
            args.runs,
            concurrency=args.concurrency,
            seed=args.seed,
            shots=args.screenshots,
            bulk=args.bulk,
        )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
