"""Reconciliation through the HTTP API on the embedded sandbox: the simulator's settlement
report with injected discrepancies, the matching workflow (Step Functions, Map over chunks),
exceptions, repairs, fees in the ledger, resolutions, and the double-charge window."""

from __future__ import annotations

import time
import uuid
from collections import Counter

import pytest

from chalicelib.container import services
from chalicelib.domain.disputes import DisputeStatus
from chalicelib.reconciliation.reports import day_of
from payflow.cli import main
from payflow.sandbox.pollers import wait_for
from tests.conftest import ADMIN_KEY, Api
from tests.integration.test_disputes import stripe_dispute_webhook
from tests.integration.test_orchestration import authorizations, set_simulator, simulators
from tests.integration.test_psp_webhooks import route_to

RUN_TIMEOUT = 60.0


def today() -> str:
    return day_of(int(time.time()))


def pay(api: Api, amount: int, *, manual: bool = False) -> dict:
    data = {
        "amount": amount,
        "currency": "usd",
        "confirm": "true",
        "payment_method": "pm_card_visa",
    }
    if manual:
        data["capture_method"] = "manual"
    response = api.post("/v1/payment_intents", data)
    assert response.status_code == 200, response.text
    return response.json()


def reconcile(api: Api, day: str, **extra: object) -> dict:
    response = api.post("/v1/reconciliation/runs", {"date": day, **extra})
    assert response.status_code == 200, response.text
    run = response.json()
    assert run["object"] == "reconciliation.run"

    seen: list[dict] = []

    def finished() -> bool:
        seen.append(api.get(f"/v1/reconciliation/runs/{run['id']}").json())
        return seen[-1]["status"] != "running"

    wait_for(finished, timeout=RUN_TIMEOUT, interval=0.1)
    assert seen[-1]["status"] == "succeeded", seen[-1]["failure"]
    return seen[-1]


def exceptions(api: Api, **filters: str) -> list[dict]:
    response = api.get("/v1/reconciliation/exceptions", params={"limit": 100, **filters})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["object"] == "list" and not body["has_more"]
    return body["data"]


def inject(api: Api, day: str, connector: str, **options: object) -> list[dict]:
    response = api.session.post(
        api.base + "/v1/sandbox/reconciliation/discrepancies",
        json={"date": day, "connector": connector, **options},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    return response.json()["data"]


def balance_total(api: Api) -> int:
    body = api.get("/v1/balance").json()
    return sum(b["amount"] for b in body["available"] + body["pending"] if b["currency"] == "usd")


def test_a_clean_day_matches_every_line_and_books_the_fees(api: Api):
    # Given a merchant on its own simulator with captured payments and a refund
    (sim,) = simulators(api, "recon")
    paid = [pay(api, amount) for amount in (1000, 2500, 4000)]
    refund = api.post("/v1/refunds", {"payment_intent": paid[0]["id"], "amount": 300}).json()
    assert refund["status"] == "succeeded"
    before = balance_total(api)

    # When its day is reconciled
    run = reconcile(api, today())

    # Then every line matched, nothing is an exception, and the fees are in the ledger
    assert run["counts"] == {
        "rows": 4,
        "matched": 4,
        "exceptions": 0,
        "repaired": 0,
        "awaiting_settlement": 0,
        "payouts": 1,
        "payouts_matched": 1,
        "awaiting_bank": 0,
    }, run
    assert run["bank_covers"] == [sim] and run["bank_not_covered"] == {}
    assert run["providers"] == [sim]
    fees = sum((a * 290 + 5000) // 10_000 + 30 for a in (1000, 2500, 4000))
    assert run["fees"] == {"usd": fees}
    assert balance_total(api) == before - fees
    fee_txns = api.get("/v1/balance_transactions", params={"type": "stripe_fee"})
    assert fee_txns.status_code == 400  # the list filter knows only Stripe's three kinds
    assert exceptions(api) == []

    # And a second run of the same day changes nothing
    again = reconcile(api, today())
    assert again["counts"]["matched"] == 4 and again["fees"] == {}
    assert balance_total(api) == before - fees


def test_injected_discrepancies_are_each_found_once_and_repaired_where_certain(api: Api):
    # Given a day of payments (three authorized only) and one of each discrepancy
    (sim,) = simulators(api, "recon")
    paid = [pay(api, 1000 + 100 * i) for i in range(8)]
    held = [pay(api, 700, manual=True) for _ in range(3)]
    for pi in paid[:2]:
        assert api.post("/v1/refunds", {"payment_intent": pi["id"]}).json()["status"] == "succeeded"
    made = inject(
        api,
        today(),
        sim,
        seed=11,
        count=6,
        kinds=[
            "unknown_charge",
            "missed_capture",
            "amount_differs",
            "late_settlement",
            "refund_twice",
            "bank_short",
        ],
    )
    assert [m["kind"] for m in made] == [
        "unknown_charge",
        "missed_capture",
        "amount_differs",
        "late_settlement",
        "refund_twice",
        "bank_short",
    ]

    # When the day is reconciled with a zero-day SLA (the late one is then overdue)
    run = reconcile(api, today(), sla_days=0)

    # Then exactly one exception per discrepancy, and no false positive
    found = exceptions(api)
    kinds = Counter(e["kind"] for e in found)
    amount_kind = next(e["kind"] for e in found if e["kind"].startswith("amount_"))
    assert kinds == Counter(
        {
            "missing_in_payflow": 1,
            "missed_capture": 1,
            amount_kind: 1,
            "missing_at_provider": 1,
            "duplicate_settlement": 1,
            "payout_amount_mismatch": 1,
        }
    ), found
    assert run["counts"]["exceptions"] == 6 and run["counts"]["repaired"] == 2
    by_kind = {e["kind"]: e for e in found}

    # The unknown charge was refunded at the provider, with balanced entries
    unknown = by_kind["missing_in_payflow"]
    assert unknown["status"] == "repaired" and unknown["repair"] == "refund_at_provider"
    assert unknown["object_id"] == made[0]["subject"]
    assert len(unknown["ledger_entries"]) == 2
    # The missed capture is recorded: the PaymentIntent is succeeded now
    captured = by_kind["missed_capture"]
    assert captured["status"] == "repaired"
    pi = api.get(f"/v1/payment_intents/{captured['payment_intent']}").json()
    assert pi["status"] == "succeeded" and pi["amount_received"] == 700
    assert captured["payment_intent"] in {h["id"] for h in held}
    # The rest wait for a person
    for kind in (amount_kind, "missing_at_provider", "duplicate_settlement"):
        assert by_kind[kind]["status"] == "open"
    assert by_kind["duplicate_settlement"]["difference"] < 0
    assert by_kind["payout_amount_mismatch"]["difference"] == -100

    # And every new exception was announced through the outbox
    events = api.get(
        "/v1/events", params={"type": "payflow.reconciliation.exception_found", "limit": 20}
    ).json()["data"]
    assert sorted(e["data"]["object"]["id"] for e in events) == sorted(e["id"] for e in found)

    # When a person accepts the provider's amount
    before = balance_total(api)
    differs = by_kind[amount_kind]
    resolved = api.post(
        f"/v1/reconciliation/exceptions/{differs['id']}/resolve", {"resolution": "accept_provider"}
    )
    assert resolved.status_code == 200, resolved.text
    assert resolved.json()["status"] == "resolved"
    # Then the merchant's balance moves by the difference, once
    assert balance_total(api) == before + differs["difference"]
    twice = api.post(
        f"/v1/reconciliation/exceptions/{differs['id']}/resolve", {"resolution": "write_off"}
    )
    assert twice.status_code == 400
    assert twice.json()["error"]["code"] == "reconciliation_exception_unexpected_state"
    # And writing one off leaves the merchant's balance alone
    dup = by_kind["duplicate_settlement"]
    written = api.post(
        f"/v1/reconciliation/exceptions/{dup['id']}/resolve", {"resolution": "write_off"}
    )
    assert written.status_code == 200, written.text
    assert balance_total(api) == before + differs["difference"]
    assert [e["status"] for e in exceptions(api, status="open")] == ["open", "open"]

    # And a rerun of the day finds nothing new
    reconcile(api, today(), sla_days=0)
    assert len(exceptions(api)) == 6


def test_bad_requests_are_refused_stripe_style(api: Api):
    unknown = api.post("/v1/reconciliation/runs", {"date": today(), "colour": "red"})
    assert unknown.status_code == 400
    assert unknown.json()["error"]["code"] == "parameter_unknown"
    bad_date = api.post("/v1/reconciliation/runs", {"date": "2026-13-40"})
    assert bad_date.status_code == 400
    assert bad_date.json()["error"]["param"] == "date"
    missing = api.get("/v1/reconciliation/runs/rcnrun_nope")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "resource_missing"
    bad_kind = api.get("/v1/reconciliation/exceptions", params={"kind": "lost"})
    assert bad_kind.status_code == 400 and bad_kind.json()["error"]["param"] == "kind"
    resolution = api.post("/v1/reconciliation/exceptions/rcx_nope/resolve", {"resolution": "x"})
    assert resolution.status_code == 400
    assert api.get("/v1/reconciliation/runs").json()["data"] == []


def test_the_double_charge_window_is_closed_by_reconciliation(api: Api, merchant: dict):
    # Given a first simulator that charges and loses its answers, and whose lookup is down
    first, second = simulators(api, "first", "second", minimum_calls=100)
    set_simulator(
        api, first, fail_next_calls=20, fail_with="timeout_after_charge", lookup_fails=True
    )

    # When a payment is confirmed: the Reconcile lookup fails, so the payment fails over
    response = api.post(
        "/v1/payment_intents",
        {"amount": 1500, "currency": "usd", "confirm": "true", "payment_method": "pm_card_visa"},
    )
    assert response.status_code == 200, response.text
    pi_id = response.json()["id"]
    wait_for(
        lambda: api.get(f"/v1/payment_intents/{pi_id}").json()["status"] == "succeeded",
        timeout=RUN_TIMEOUT,
    )
    # Then the customer was charged twice, and PayFlow knows only the second charge
    charged = authorizations(pi_id)
    assert sorted(r["connector"] for r in charged) == sorted([first, second])
    outcomes = [
        c["outcome"] for c in api.get(f"/v1/payment_intents/{pi_id}/attempts").json()["data"]
    ]
    assert "reconciled" not in outcomes and outcomes[-1] == "authorized"
    set_simulator(api, first, fail_next_calls=0, lookup_fails=False)
    before = balance_total(api)

    # When the day is reconciled
    run = reconcile(api, today())

    # Then the extra charge is found and refunded at the first provider, and only that
    (found,) = exceptions(api)
    extra = next(r for r in charged if r["connector"] == first)
    assert found["kind"] == "missing_in_payflow" and found["status"] == "repaired"
    assert found["object_id"] == extra["charge_id"] and found["payment_intent"] == pi_id
    assert run["counts"]["repaired"] == 1 and run["counts"]["matched"] == 1
    refunds = [
        r
        for r in services().simulator_ledger.all_records()
        if r.get("operation") == "refund" and r.get("psp_reference") == extra["psp_reference"]
    ]
    assert [(r["status"], r["amount"]) for r in refunds] == [("succeeded", 1500)]
    # The merchant's balance moved only by the kept charge's fee, and the ledger balances
    assert balance_total(api) == before - ((1500 * 290 + 5000) // 10_000 + 30)
    assert services().ledger.check(merchant["id"]).ok

    # And a later run sees the refund as reconciliation's own
    again = reconcile(api, today())
    assert again["counts"]["exceptions"] == 1 and len(exceptions(api)) == 1
    assert again["counts"]["matched"] == 2


def test_payflow_recon_run_reconciles_a_day_from_the_command_line(api: Api, api_url: str, capsys):
    # Given a day with one charge settled for another amount
    (sim,) = simulators(api, "cli")
    pay(api, 2000)
    (made,) = inject(api, today(), sim, seed=3, count=1, kinds=["amount_differs"])

    # When `payflow recon run` reconciles it, the day named as a person would
    code = main(
        ["recon", "run", "--date", "today", "--api-base", api_url, "--api-key", api.session.auth[0]]
    )

    # Then it prints the run and its one open exception, and says so in its exit code
    printed = capsys.readouterr().out
    assert code == 1, printed
    assert "succeeded: 1 lines, 0 matched, 1 exceptions (0 repaired)" in printed
    assert "open" in printed and made["subject"] in printed


def test_the_benchmark_at_a_few_dozen_payments_finds_every_discrepancy_and_nothing_else(
    api_url: str,
):
    # Given 40 payments (two authorized only, two refunded) and one discrepancy of each kind
    from bench.recon import run_bench

    # When the benchmark reconciles their day
    result = run_bench(api_url, payments=40, count=5, seed=5, concurrency=4, admin_key=ADMIN_KEY)

    # Then every discrepancy was found, once, and nothing else
    assert (result.injected, result.found, result.missed, result.false_positives) == (5, 5, 0, 0)
    # 38 charges and 2 refunds, with an unknown charge, a missed capture and a refund paid
    # again, less the charge that settles late
    assert result.lines == 38 + 2 + 3 - 1


def test_stripes_itemized_report_is_read_through_its_reporting_api(
    api: Api, merchant: dict, fake_stripe
):
    # Given a merchant routed to Stripe with two payments and a refund there, and a charge at
    # Stripe for one of its PaymentIntents that PayFlow never heard of
    routing = api.session.post(
        api.base + "/v1/routing",
        json={"connectors": [{"id": "stripe", "kind": "stripe", "priority": 1}]},
        timeout=10,
    )
    assert routing.status_code == 200, routing.text
    paid = [pay(api, amount) for amount in (1200, 3400)]
    assert (
        api.post("/v1/refunds", {"payment_intent": paid[1]["id"], "amount": 400}).json()["status"]
        == "succeeded"
    )
    lost = f"pi_fakelost{uuid.uuid4().hex[:10]}"
    fake_stripe.intents[lost] = {
        **fake_stripe.intents[next(iter(reversed(fake_stripe.intents)))],
        "id": lost,
        "latest_charge": f"ch_fakelost{uuid.uuid4().hex[:8]}",
        "amount": 1200,
        "amount_received": 1200,
        "status": "succeeded",
        "created": int(time.time()),
        "metadata": {
            "payflow_key": f"{paid[0]['id']}:7:stripe",
            "payflow_merchant": merchant["id"],
        },
    }

    # When the day is reconciled
    run = reconcile(api, today())

    # Then Stripe's lines matched PayFlow's, the fees are booked, and the lost charge was
    # refunded at Stripe
    assert run["providers"] == ["stripe"] and run["skipped_providers"] == {}
    assert run["counts"]["rows"] == 4 and run["counts"]["matched"] == 3
    assert run["fees"] == {"usd": sum((a * 290 + 5000) // 10_000 + 30 for a in (1200, 3400))}
    (found,) = exceptions(api)
    assert found["kind"] == "missing_in_payflow" and found["status"] == "repaired"
    assert found["psp_reference"] == lost
    refunded = [r for r in fake_stripe.refunds.values() if r["payment_intent"] == lost]
    assert [(r["amount"], r["status"]) for r in refunded] == [(1200, "succeeded")]


def _paid_through(api: Api, connector: dict, currency: str, amounts: tuple[int, ...]) -> list:
    """The merchant routed to `connector` alone, then a succeeded card payment per amount."""
    routing = api.session.post(
        api.base + "/v1/routing", json={"connectors": [connector]}, timeout=10
    )
    assert routing.status_code == 200, routing.text
    paid = []
    for amount in amounts:
        response = api.post(
            "/v1/payment_intents",
            {
                "amount": amount,
                "currency": currency,
                "confirm": "true",
                "payment_method": "pm_card_visa",
            },
        )
        assert response.json()["status"] == "succeeded", response.text
        paid.append(response.json())
    return paid


def test_razorpays_settlement_recon_is_read_and_matched(api: Api, fake_razorpay):
    # Given a merchant routed to Razorpay with two INR payments and a refund there
    paid = _paid_through(
        api, {"id": "razorpay", "kind": "razorpay", "currencies": ["inr"]}, "inr", (5000, 12000)
    )
    refund = api.post("/v1/refunds", {"payment_intent": paid[0]["id"], "amount": 1000}).json()
    assert refund["status"] == "succeeded", refund
    # ... and one of its payments settled for less than it was captured for
    payment_id = "pay_" + paid[1]["latest_charge"].removeprefix("ch_")
    fake_razorpay.payments[payment_id]["amount"] = 11000

    # When the day is reconciled
    run = reconcile(api, today())

    # Then Razorpay's lines were read, the fees (2% + 18% GST) booked, the short one found
    assert run["providers"] == ["razorpay"] and run["counts"]["rows"] == 3, run
    assert run["counts"]["matched"] == 2
    (short,) = exceptions(api)
    assert (short["kind"], short["difference"]) == ("amount_under", -1000)
    fee = lambda a: (a * 2 + 50) // 100 + ((a * 2 + 50) // 100 * 18 + 50) // 100  # noqa: E731
    assert run["fees"] == {"inr": fee(5000) + fee(11000)}


def dispute(api: Api, charge: str, outcome: str = "needs_response") -> dict:
    response = api.post(f"/v1/sandbox/charges/{charge}/dispute", {"outcome": outcome})
    assert response.status_code == 200, response.text
    return response.json()


def test_disputed_payments_reconcile_with_no_exception(api: Api, merchant: dict):
    # Given two payments on the merchant's simulator, one dispute won and one still open
    simulators(api, "recon")
    won, held = pay(api, 2000), pay(api, 3000)
    dispute(api, won["latest_charge"])
    dispute(api, won["latest_charge"], "won")
    opened = dispute(api, held["latest_charge"])
    before = balance_total(api)

    # When the day is reconciled, past its SLA
    run = reconcile(api, today(), sla_days=0)

    # Then the charges and the three dispute lines (two withdrawals, one reinstatement) matched
    # PayFlow's dispute movements: no exception, no fee booked for the disputes (PayFlow took
    # the dispute fee when the dispute was reported)
    assert exceptions(api) == []
    assert run["counts"]["rows"] == 5 and run["counts"]["matched"] == 5, run
    assert run["counts"]["exceptions"] == 0 and run["counts"]["awaiting_settlement"] == 0
    fees = sum((a * 290 + 5000) // 10_000 + 30 for a in (2000, 3000))
    assert run["fees"] == {"usd": fees}
    assert balance_total(api) == before - fees
    assert opened["balance_transactions"][0]["net"] == -3000 - 1500
    assert services().ledger.check(merchant["id"]).ok


def test_dispute_discrepancies_are_found_and_never_repaired_by_themselves(api: Api):
    # Given a dispute whose withdrawal settles for another amount at the simulator
    (sim,) = simulators(api, "recon")
    first, second = pay(api, 2000), pay(api, 2500)
    opened = dispute(api, first["latest_charge"])
    (made,) = inject(api, today(), sim, seed=7, count=1, kinds=["dispute_amount_differs"])
    assert made["subject"] == f"dp_sim_{first['latest_charge']}"
    assert made["payment_intent"] == first["id"]
    # ... and a dispute the simulator's bank opened whose report never reached PayFlow
    services().simulator_settlement.record_dispute(
        sim,
        second["latest_charge"],
        "dp_never_reported",
        DisputeStatus.NEEDS_RESPONSE,
        None,
        at=services().disputes.now(),
    )

    # When the day is reconciled
    run = reconcile(api, today(), sla_days=0)

    # Then each is one exception waiting for a person, and the rest matched
    found = {e["kind"]: e for e in exceptions(api)}
    amount_kind = next(kind for kind in found if kind.startswith("amount_"))
    assert sorted(found) == sorted([amount_kind, "missing_in_payflow"]), found
    assert run["counts"]["matched"] == 2 and run["counts"]["repaired"] == 0
    differs = found[amount_kind]
    assert differs["object_id"] == opened["id"] and differs["status"] == "open"
    assert differs["payflow_amount"] == -2000 - 1500 and differs["difference"] != 0
    unheard = found["missing_in_payflow"]
    assert unheard["status"] == "open" and unheard["repair"] is None
    assert unheard["object_id"] == "dp_never_reported:dispute"
    assert unheard["provider_amount"] == -2500 - 1500

    # When a person accepts the provider's amount, the balance moves by the difference, once
    before = balance_total(api)
    resolved = api.post(
        f"/v1/reconciliation/exceptions/{differs['id']}/resolve", {"resolution": "accept_provider"}
    )
    assert resolved.status_code == 200, resolved.text
    assert balance_total(api) == before + differs["difference"]

    # And a rerun of the day finds nothing new
    reconcile(api, today(), sla_days=0)
    assert len(exceptions(api)) == 2


def test_a_dispute_the_providers_report_does_not_carry_is_missing_at_provider(
    api: Api, fake_stripe
):
    # Given a Stripe merchant whose payment Stripe's webhook says is disputed, while Stripe's
    # own books (the fake's report) carry no such dispute
    route_to(api, "stripe", payment_method_types=["card"])
    pi = pay(api, 2000)
    response, sent = stripe_dispute_webhook(api, pi, 1200)
    assert response.status_code == 200, response.text
    (opened,) = api.get("/v1/disputes", params={"charge": pi["latest_charge"]}).json()["data"]

    # When the day is reconciled within its SLA, the withdrawal is awaited
    waiting = reconcile(api, today())
    assert waiting["counts"]["awaiting_settlement"] == 1 and exceptions(api) == []

    # Then past it, PayFlow's withdrawal with no line is missing at the provider, and only that
    reconcile(api, today(), sla_days=0)
    found = exceptions(api)
    assert len(found) == 1, [(e["kind"], e["subject"], e["difference"]) for e in found]
    (missing,) = found
    assert missing["kind"] == "missing_at_provider" and missing["status"] == "open"
    assert missing["object_id"] == opened["id"] and missing["subject"] == f"{sent['id']}:dispute"
    assert (missing["provider_amount"], missing["payflow_amount"]) == (0, -1200 - 1500)


@pytest.fixture
def adyen(api: Api, fake_adyen):
    """The fake Adyen delivers its notifications to the sandbox, as Adyen's webhook would (a
    refund's currency is the one Adyen's AUTHORISATION notification reported)."""
    fake_adyen.webhook_url = f"{api.base}/v1/psp_webhooks/adyen"
    yield fake_adyen
    fake_adyen.webhook_url = None


ADYEN = {"id": "adyen", "kind": "adyen", "payment_method_types": ["card"]}


def adyen_fee(amount: int) -> int:
    """What the fake Adyen keeps of a capture: commission 0.12, markup 0.6%, scheme fees 0.2%,
    interchange 0.3%."""
    return 12 + amount * 6 // 1000 + amount * 2 // 1000 + amount * 3 // 1000


def test_adyens_settlement_details_report_is_downloaded_and_matched(api: Api, adyen):
    # Given a merchant routed to Adyen with two EUR payments and a refund there
    paid = _paid_through(api, ADYEN, "eur", (2500, 4000))
    refund = api.post("/v1/refunds", {"payment_intent": paid[0]["id"], "amount": 700}).json()
    wait_for(
        lambda: api.get(f"/v1/refunds/{refund['id']}").json()["status"] == "succeeded",
        timeout=RUN_TIMEOUT,
        interval=0.1,
    )
    # ... and Adyen settled the second payment for less than it was captured for
    short_psp = paid[1]["latest_charge"].removeprefix("ch_")
    (settled,) = [e for e in adyen.journal if e["psp"] == short_psp]
    settled["value"] = 3900
    # ... and the day's batch announced by REPORT_AVAILABLE through PayFlow's (HMAC-checked)
    # webhook
    announced = close_batch(adyen)

    # When the day is reconciled
    run = reconcile(api, today())

    # Then Adyen's report was read (Adyen is no longer skipped), the clean lines matched with
    # their fees booked, and the short settlement is the one exception
    assert run["providers"] == ["adyen"] and run["skipped_providers"] == {}, run
    assert run["counts"]["rows"] == 3 and run["counts"]["matched"] == 2, run
    assert run["fees"] == {"eur": adyen_fee(2500) + adyen_fee(3900)}
    (short,) = exceptions(api)
    assert (short["kind"], short["difference"]) == ("amount_under", -100)
    assert short["provider"] == "adyen" and short["psp_reference"] == short_psp
    # ... read from the announced batch's file
    downloaded = [r.path for r in adyen.requests if r.path.startswith("/reports/")]
    assert any(path.endswith("/" + announced["pspReference"]) for path in downloaded)


def close_batch(adyen) -> dict:
    """Adyen closes its open batch and announces it; PayFlow has stored the announcement."""
    announced = adyen.close_batch()
    event_id = f"REPORT_AVAILABLE:{announced['pspReference']}"
    wait_for(lambda: services().psp_events.stored("adyen", event_id) is not None, timeout=15)
    return announced


def test_adyens_chargeback_lines_are_matched_to_the_disputes_its_notifications_opened(
    api: Api, adyen
):
    # Given a merchant routed to Adyen with two EUR payments there
    paid = _paid_through(api, ADYEN, "eur", (2500, 4000))
    psps = [pi["latest_charge"].removeprefix("ch_") for pi in paid]
    # ... each disputed by a CHARGEBACK notification Adyen signed, PayFlow's dispute opened
    sent = [adyen.dispute(psp, "CHARGEBACK") for psp in psps]

    def opened(pi: dict) -> list[dict]:
        listed = api.get("/v1/disputes", params={"charge": pi["latest_charge"]}).json()
        return listed["data"]

    wait_for(lambda: all(opened(pi) for pi in paid), timeout=RUN_TIMEOUT, interval=0.1)
    disputes = [opened(pi)[0] for pi in paid]
    # ... and Adyen booked the second chargeback for 100 less than it notified
    (short,) = [e for e in adyen.journal if e["modification"] == sent[1]["pspReference"]]
    short["value"] = 3900
    close_batch(adyen)

    # When the day is reconciled
    run = reconcile(api, today())

    # Then the two captures and the first chargeback matched (a dispute's fee is not booked
    # again: PayFlow took it when the dispute opened), and the short chargeback is the one
    # exception, about its dispute
    assert run["providers"] == ["adyen"] and run["skipped_providers"] == {}, run
    assert run["counts"]["rows"] == 4 and run["counts"]["matched"] == 3, run
    assert run["fees"] == {"eur": adyen_fee(2500) + adyen_fee(4000)}
    (found,) = exceptions(api)
    assert (found["kind"], found["object_id"]) == ("amount_under", disputes[1]["id"]), found
    assert found["subject"] == f"{sent[1]['pspReference']}:Chargeback"
    assert (found["provider_amount"], found["payflow_amount"]) == (-3900 - 1500, -4000 - 1500)
    assert found["difference"] == 100 and found["psp_reference"] == psps[1]

    # And a second run finds nothing new
    again = reconcile(api, today())
    assert again["counts"]["matched"] == 3 and len(exceptions(api)) == 1


def test_an_adyen_dispute_won_then_lost_settles_each_of_its_three_lines(api: Api, adyen):
    # Given an Adyen payment charged back, the chargeback reversed, then charged back again,
    # each notification applied before the next is sent (PayFlow moves disputes only forward)
    (pi,) = _paid_through(api, ADYEN, "eur", (3000,))
    psp = pi["latest_charge"].removeprefix("ch_")
    for code, status, expected in (
        ("CHARGEBACK", "Undefended", "needs_response"),
        ("CHARGEBACK_REVERSED", "Won", "won"),
        ("SECOND_CHARGEBACK", "Lost", "lost"),
    ):
        adyen.dispute(psp, code, status=status)
        wait_for(
            lambda expected=expected: (
                [
                    d["status"]
                    for d in api.get("/v1/disputes", params={"charge": pi["latest_charge"]}).json()[
                        "data"
                    ]
                ]
                == [expected]
            ),
            timeout=RUN_TIMEOUT,
            interval=0.1,
        )
    close_batch(adyen)

    # When the day is reconciled past its SLA
    run = reconcile(api, today(), sla_days=0)

    # Then the capture and the dispute's withdrawal, reinstatement and second withdrawal each
    # matched the movement PayFlow booked: nothing is an exception, nothing awaited
    assert run["counts"]["rows"] == 4 and run["counts"]["matched"] == 4, run
    assert run["counts"]["awaiting_settlement"] == 0 and exceptions(api) == []
