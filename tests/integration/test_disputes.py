"""Disputes through HTTP on the embedded sandbox: opened, won and lost by the simulator and by
providers' webhooks (in any order, more than once), answered by the merchant with stripe-python,
their money balanced in the ledger."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from typing import Any

import pytest
import requests
import stripe

from chalicelib.container import services
from payflow.sandbox.pollers import wait_for
from tests.conformance.recorder import recorded_session
from tests.conftest import RAZORPAY_WEBHOOK_SECRET, STRIPE_WEBHOOK_SECRET, Api
from tests.fakes.adyen_server import MERCHANT_ACCOUNT, FakeAdyen, notification_body, sign
from tests.fakes.razorpay_server import FakeRazorpay
from tests.integration.test_psp_webhooks import confirm, psp_reference, results, route_to

FEE = 1500


def paid(api: Api, amount: int = 2000, currency: str = "usd") -> dict[str, Any]:
    response = api.post(
        "/v1/payment_intents",
        {
            "amount": amount,
            "currency": currency,
            "payment_method": "pm_card_visa",
            "confirm": "true",
        },
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert body["status"] == "succeeded", body
    return body


def simulate(api: Api, charge: str, outcome: str = "needs_response", **extra: Any) -> Any:
    return api.post(f"/v1/sandbox/charges/{charge}/dispute", {"outcome": outcome, **extra})


def available(api: Api, currency: str = "usd") -> int:
    body = api.get("/v1/balance").json()
    return sum(b["amount"] for b in body["available"] if b["currency"] == currency)


def dispute_events(api: Api, dispute_id: str) -> list[str]:
    """The dispute's event types, sorted: events of one change share a millisecond, so their
    ids (and list order) among themselves are not meaningful."""
    listed = api.get("/v1/events", params={"limit": 100}).json()["data"]
    return sorted(e["type"] for e in listed if e["data"]["object"].get("id") == dispute_id)


def assert_ledger_balanced(api: Api) -> None:
    merchant = services().merchants.authenticate(api.session.auth[0])
    report = services().ledger.check(merchant)
    assert report.ok, (report.unbalanced, report.drift)


@pytest.fixture
def sdk(api_url: str, merchant: dict):
    """The module-level stripe-python, pointed at the sandbox, as the README shows."""
    saved = stripe.api_base, stripe.api_key, stripe.max_network_retries, stripe.default_http_client
    stripe.api_base, stripe.api_key, stripe.max_network_retries = api_url, merchant["secret_key"], 2
    stripe.default_http_client = stripe.RequestsClient(session=recorded_session())
    yield stripe
    (
        stripe.api_base,
        stripe.api_key,
        stripe.max_network_retries,
        stripe.default_http_client,
    ) = saved


# -- the simulator, and the merchant's side through stripe-python ------------------------------


def test_a_chargeback_withdraws_the_funds_and_fee_and_winning_reinstates_them(api: Api, sdk):
    # Given a captured payment of 20.00
    pi = paid(api)
    assert available(api) == 2000

    # When the cardholder's bank opens a chargeback
    opened = simulate(api, pi["latest_charge"], reason="fraudulent")

    # Then the dispute needs a response, the amount and the fee left the balance
    assert opened.status_code == 200, opened.text
    dispute = opened.json()
    assert (dispute["status"], dispute["amount"], dispute["reason"]) == (
        "needs_response",
        2000,
        "fraudulent",
    )
    assert dispute["charge"] == pi["latest_charge"] and dispute["payment_intent"] == pi["id"]
    assert available(api) == -FEE
    [withdrawal] = dispute["balance_transactions"]
    assert (withdrawal["amount"], withdrawal["fee"], withdrawal["net"]) == (-2000, FEE, -3500)
    assert withdrawal["reporting_category"] == "dispute" and withdrawal["type"] == "adjustment"
    assert api.get(f"/v1/charges/{pi['latest_charge']}").json()["disputed"] is True

    # When the merchant gathers evidence, then submits it (stripe-python)
    listed = stripe.Dispute.list(charge=pi["latest_charge"], expand=["data.charge"])
    assert [d.id for d in listed.data] == [dispute["id"]]
    assert listed.data[0].charge.disputed is True
    txn = api.get(f"/v1/balance_transactions/{withdrawal['id']}", params={"expand[]": "source"})
    assert txn.json()["source"]["id"] == dispute["id"]
    modified = stripe.Dispute.modify(
        dispute["id"],
        evidence={"customer_name": "Jane Doe", "uncategorized_text": "Delivered on time."},
        metadata={"case": "42"},
    )
    assert modified.status == "needs_response"
    assert modified.evidence.customer_name == "Jane Doe"
    submitted = stripe.Dispute.modify(
        dispute["id"], evidence={"shipping_carrier": "UPS"}, submit=True
    )
    assert submitted.status == "under_review"
    assert submitted.evidence_details.submission_count == 1
    assert submitted.evidence.uncategorized_text == "Delivered on time."
    assert submitted.metadata["case"] == "42"

    # And the bank decides for the merchant, reported twice
    won = simulate(api, pi["latest_charge"], "won")
    again = simulate(api, pi["latest_charge"], "won")

    # Then the amount and the fee are back, once
    assert won.status_code == 200 and won.json()["status"] == "won"
    assert again.json() == won.json()
    assert available(api) == 2000
    reinstated = stripe.Dispute.retrieve(dispute["id"]).balance_transactions
    assert [(t.amount, t.fee, t.net) for t in reinstated] == [
        (-2000, FEE, -3500),
        (2000, -FEE, 3500),
    ]
    assert dispute_events(api, dispute["id"]) == sorted(
        [
            "charge.dispute.created",
            "charge.dispute.funds_withdrawn",
            "charge.dispute.updated",
            "charge.dispute.updated",
            "charge.dispute.funds_reinstated",
            "charge.dispute.closed",
        ]
    )
    txns = api.get("/v1/balance_transactions", params={"type": "adjustment"}).json()["data"]
    assert sorted(t["net"] for t in txns) == [-3500, 3500]
    assert_ledger_balanced(api)

    # And a closed dispute takes no more evidence
    late = api.post(f"/v1/disputes/{dispute['id']}", {"evidence[customer_name]": "x"})
    assert late.status_code == 400 and late.json()["error"]["code"] == "dispute_already_closed"


def test_closing_a_dispute_accepts_the_loss(api: Api, sdk):
    pi = paid(api, 3000)
    dispute = simulate(api, pi["latest_charge"]).json()

    closed = stripe.Dispute.close(dispute["id"])

    assert closed.status == "lost"
    assert available(api) == -FEE
    assert dispute_events(api, dispute["id"]) == [
        "charge.dispute.closed",
        "charge.dispute.created",
        "charge.dispute.funds_withdrawn",
    ]
    # A disputed charge cannot be refunded (the bank took the money back already)
    refund = api.post("/v1/refunds", {"payment_intent": pi["id"]})
    assert refund.status_code == 400 and refund.json()["error"]["code"] == "charge_disputed"
    # A late "won" from the bank cannot revive a lost dispute; closing twice is refused.
    assert simulate(api, pi["latest_charge"], "won").json()["status"] == "lost"
    with pytest.raises(stripe.InvalidRequestError) as refused:
        stripe.Dispute.close(dispute["id"])
    assert refused.value.code == "dispute_already_closed"
    assert available(api) == -FEE
    assert_ledger_balanced(api)


def test_an_inquiry_moves_no_money_until_it_becomes_a_chargeback(api: Api):
    pi = paid(api)
    inquiry = simulate(api, pi["latest_charge"], "warning_needs_response").json()
    assert inquiry["status"] == "warning_needs_response"
    assert inquiry["balance_transactions"] == [] and available(api) == 2000
    assert inquiry["payment_method_details"]["card"]["case_type"] == "inquiry"
    assert inquiry["is_charge_refundable"] is True
    assert inquiry["evidence_details"]["due_by"] > inquiry["created"]
    # An inquiry takes no money: the merchant may still refund part of the payment
    partial = api.post("/v1/refunds", {"payment_intent": pi["id"], "amount": 500})
    assert partial.status_code == 200, partial.text
    wait_for(lambda: available(api) == 1500, 30)

    chargeback = simulate(api, pi["latest_charge"], "needs_response").json()

    assert chargeback["id"] == inquiry["id"] and chargeback["status"] == "needs_response"
    assert chargeback["is_charge_refundable"] is False
    assert available(api) == 1500 - 2000 - FEE
    refused = api.post("/v1/refunds", {"payment_intent": pi["id"], "amount": 500})
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "charge_disputed"
    lost = simulate(api, pi["latest_charge"], "lost").json()
    assert lost["status"] == "lost" and available(api) == 1500 - 2000 - FEE
    assert_ledger_balanced(api)


def test_a_dispute_reported_closed_first_still_moves_its_money_once(api: Api):
    # A "lost" that arrives before the opening: withdrawn and paid out in one step
    pi = paid(api)
    lost = simulate(api, pi["latest_charge"], "lost").json()
    assert lost["status"] == "lost" and available(api) == -FEE
    late_open = simulate(api, pi["latest_charge"], "needs_response").json()
    assert late_open["status"] == "lost" and available(api) == -FEE
    assert dispute_events(api, lost["id"]) == [
        "charge.dispute.closed",
        "charge.dispute.created",
        "charge.dispute.funds_withdrawn",
    ]
    assert_ledger_balanced(api)


def test_bad_dispute_requests_are_refused_and_change_nothing(api: Api):
    pi = paid(api)
    dispute = simulate(api, pi["latest_charge"]).json()
    path = f"/v1/disputes/{dispute['id']}"

    unknown = api.post(path, {"evidence[favourite_color]": "blue"})
    top = api.post(path, {"colour": "blue"})
    listed = api.get("/v1/disputes", params={"status": "won"})
    closed_extra = api.post(f"{path}/close", {"submit": "true"})

    for response, param in (
        (unknown, "evidence[favourite_color]"),
        (top, "colour"),
        (listed, "status"),
        (closed_extra, "submit"),
    ):
        assert response.status_code == 400, response.text
        error = response.json()["error"]
        assert (error["code"], error["param"], error["type"]) == (
            "parameter_unknown",
            param,
            "invalid_request_error",
        )
    assert api.get("/v1/disputes/du_nope").status_code == 404
    assert simulate(api, "ch_nope").status_code == 404
    assert simulate(api, pi["latest_charge"], "maybe").status_code == 400
    held = api.post(
        "/v1/payment_intents",
        {
            "amount": 900,
            "currency": "usd",
            "payment_method": "pm_card_visa",
            "confirm": "true",
            "capture_method": "manual",
        },
    ).json()
    uncaptured = simulate(api, held["latest_charge"])
    assert uncaptured.status_code == 400, uncaptured.text
    assert api.get(path).json() == dispute
    assert available(api) == -FEE


# -- providers' dispute webhooks ----------------------------------------------------------------


def razorpay_dispute(
    api: Api, name: str, payment_id: str, dispute_id: str, status: str, **entity: Any
) -> requests.Response:
    body = json.dumps(
        {
            "entity": "event",
            "account_id": "acc_fake",
            "event": name,
            "contains": ["payment", "dispute"],
            "payload": {
                "payment": {"entity": {"id": payment_id, "entity": "payment"}},
                "dispute": {
                    "entity": {
                        "id": dispute_id,
                        "entity": "dispute",
                        "payment_id": payment_id,
                        "amount": 2000,
                        "currency": "INR",
                        "amount_deducted": 0,
                        "reason_code": "4855",
                        "respond_by": int(time.time()) + 7 * 86400,
                        "status": status,
                        "phase": "chargeback",
                        "created_at": int(time.time()),
                        **entity,
                    }
                },
            },
            "created_at": int(time.time()),
        }
    ).encode()
    signature = hmac.new(RAZORPAY_WEBHOOK_SECRET.encode(), body, hashlib.sha256).hexdigest()
    return requests.post(
        f"{api.base}/v1/psp_webhooks/razorpay",
        data=body,
        headers={
            "Content-Type": "application/json",
            "X-Razorpay-Signature": signature,
            "X-Razorpay-Event-Id": f"evt_{name}_{dispute_id}",
        },
        timeout=30,
    )


def test_razorpay_dispute_webhooks_in_any_order(api: Api, fake_razorpay: FakeRazorpay):
    # Given a Razorpay payment
    route_to(api, "razorpay", currencies=["inr"])
    pi = confirm(api, "pm_card_visa", "inr")
    assert pi["status"] == "succeeded", pi
    payment_id = psp_reference(api, pi["id"])
    dispute_id = f"disp_{uuid.uuid4().hex[:14]}"

    # When Razorpay reports the dispute won before it reports it opened, and repeats itself
    won = razorpay_dispute(api, "payment.dispute.won", payment_id, dispute_id, "won")
    created = razorpay_dispute(api, "payment.dispute.created", payment_id, dispute_id, "open")
    repeated = razorpay_dispute(api, "payment.dispute.won", payment_id, dispute_id, "won")

    # Then one dispute, won, whose money went out and came back
    assert (results(won), results(created), results(repeated)) == (
        ["applied"],
        ["unchanged"],
        ["duplicate"],
    )
    [dispute] = api.get("/v1/disputes", params={"payment_intent": pi["id"]}).json()["data"]
    assert (dispute["status"], dispute["reason"]) == ("won", "product_not_received")
    assert dispute["charge"] == pi["latest_charge"]
    assert available(api, "inr") == 2000
    found = services().disputes.by_reference("razorpay", dispute_id)
    assert found is not None and found.id == dispute["id"]
    assert_ledger_balanced(api)


def adyen_item(code: str, dispute_psp: str, payment_psp: str, **extra: str) -> dict[str, Any]:
    item: dict[str, Any] = {
        "amount": {"value": 2000, "currency": "EUR"},
        "eventCode": code,
        "eventDate": "2026-12-01T12:00:00+00:00",
        "merchantAccountCode": MERCHANT_ACCOUNT,
        "merchantReference": "",
        "originalReference": payment_psp,
        "pspReference": dispute_psp,
        "reason": "",
        "success": "true",
    }
    item["additionalData"] = {"chargebackReasonCode": "10.4", **extra}
    item["additionalData"]["hmacSignature"] = sign(item)
    return item


def test_adyen_chargeback_reversed_then_second_chargeback(api: Api, fake_adyen: FakeAdyen):
    route_to(api, "adyen", payment_method_types=["card"])
    pi = confirm(api, "pm_card_visa", "eur")
    assert pi["status"] == "succeeded", pi
    payment_psp = psp_reference(api, pi["id"])
    dispute_psp = f"DSP{uuid.uuid4().hex[:12].upper()}"

    def send(*items: dict[str, Any]) -> list[str]:
        response = requests.post(
            f"{api.base}/v1/psp_webhooks/adyen", json=notification_body(list(items)), timeout=30
        )
        return results(response)

    notice = adyen_item("NOTIFICATION_OF_CHARGEBACK", dispute_psp, payment_psp)
    chargeback = adyen_item("CHARGEBACK", dispute_psp, payment_psp, disputeStatus="Undefended")
    reversed_ = adyen_item("CHARGEBACK_REVERSED", dispute_psp, payment_psp, disputeStatus="Won")
    second = adyen_item("SECOND_CHARGEBACK", dispute_psp, payment_psp, disputeStatus="Lost")

    assert send(notice, chargeback) == ["applied", "unchanged"]
    [dispute] = api.get("/v1/disputes", params={"charge": pi["latest_charge"]}).json()["data"]
    assert (dispute["status"], dispute["reason"]) == ("needs_response", "fraudulent")
    assert available(api, "eur") == -FEE
    assert send(reversed_) == ["applied"]
    assert available(api, "eur") == 2000
    # The issuer declined the defence after all: withdrawn again, and lost
    assert send(second, reversed_) == ["applied", "duplicate"]
    lost = api.get(f"/v1/disputes/{dispute['id']}").json()
    assert lost["status"] == "lost" and len(lost["balance_transactions"]) == 3
    assert available(api, "eur") == -FEE
    assert_ledger_balanced(api)


def stripe_dispute_webhook(
    api: Api, pi: dict[str, Any], amount: int
) -> tuple[requests.Response, dict[str, Any]]:
    """Stripe announces a new chargeback of `pi`'s charge (signed as Stripe signs): PayFlow's
    answer, and the dispute as Stripe sent it."""
    dispute = {
        "id": f"du_{uuid.uuid4().hex[:24]}",
        "object": "dispute",
        "amount": amount,
        "charge": pi["latest_charge"],
        "currency": "usd",
        "payment_intent": psp_reference(api, pi["id"]),
        "reason": "product_unacceptable",
        "status": "needs_response",
        "evidence_details": {"due_by": int(time.time()) + 86400},
        "balance_transactions": [],
    }
    return send_stripe_dispute(api, dispute, "charge.dispute.created"), dispute


def send_stripe_dispute(api: Api, dispute: dict[str, Any], event_type: str) -> requests.Response:
    """Stripe's `event_type` event about `dispute` as it now stands, signed as Stripe signs."""
    payload = json.dumps(
        {
            "id": f"evt_{uuid.uuid4().hex[:16]}",
            "object": "event",
            "type": event_type,
            "data": {"object": dispute},
        }
    )
    timestamp = int(time.time())
    v1 = hmac.new(
        STRIPE_WEBHOOK_SECRET.encode(), f"{timestamp}.{payload}".encode(), hashlib.sha256
    ).hexdigest()
    return requests.post(
        f"{api.base}/v1/psp_webhooks/stripe",
        data=payload,
        headers={"Content-Type": "application/json", "Stripe-Signature": f"t={timestamp},v1={v1}"},
        timeout=30,
    )


def test_stripes_dispute_webhook_opens_the_dispute(api: Api, fake_stripe):
    route_to(api, "stripe", payment_method_types=["card"])
    pi = confirm(api, "pm_card_visa", "usd")
    assert pi["status"] == "succeeded", pi
    response, dispute = stripe_dispute_webhook(api, pi, 1200)
    assert results(response) == ["applied"]
    [opened] = api.get("/v1/disputes", params={"charge": pi["latest_charge"]}).json()["data"]
    assert (opened["amount"], opened["reason"]) == (1200, "product_unacceptable")
    assert opened["evidence_details"]["due_by"] == dispute["evidence_details"]["due_by"]
    assert available(api) == 2000 - 1200 - FEE
    assert_ledger_balanced(api)


def test_razorpay_asks_for_evidence_again(api: Api, fake_razorpay: FakeRazorpay):
    route_to(api, "razorpay", currencies=["inr"])
    pi = confirm(api, "pm_card_visa", "inr")
    payment_id = psp_reference(api, pi["id"])
    dispute_id = f"disp_{uuid.uuid4().hex[:14]}"
    opened = razorpay_dispute(api, "payment.dispute.created", payment_id, dispute_id, "open")
    assert results(opened) == ["applied"]
    [dispute] = api.get("/v1/disputes", params={"charge": pi["latest_charge"]}).json()["data"]
    path = f"/v1/disputes/{dispute['id']}"
    assert api.post(path, {"evidence[receipt]": "file_1", "submit": "true"}).status_code == 200

    # When Razorpay finds the evidence insufficient
    again = razorpay_dispute(api, "payment.dispute.action_required", payment_id, dispute_id, "open")

    # Then the dispute needs a response again, its money still held, and takes a new submission
    assert results(again) == ["applied"]
    assert api.get(path).json()["status"] == "needs_response"
    assert available(api, "inr") == -FEE
    resubmitted = api.post(path, {"evidence[uncategorized_text]": "Signed", "submit": "true"})
    assert resubmitted.json()["evidence_details"]["submission_count"] == 2
    assert_ledger_balanced(api)
