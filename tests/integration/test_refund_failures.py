"""A refund a provider reports failed after paying it out (Razorpay refund.failed, Adyen
REFUND_FAILED, Stripe's refund updated to failed): failed, its money back with the merchant,
once, through HTTP on the embedded sandbox."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests

from payflow.sandbox.pollers import wait_for
from tests.conftest import RAZORPAY_WEBHOOK_SECRET, STRIPE_WEBHOOK_SECRET, Api
from tests.fakes.adyen_server import MERCHANT_ACCOUNT, FakeAdyen, notification_body, sign
from tests.fakes.razorpay_server import FakeRazorpay
from tests.integration.test_disputes import assert_ledger_balanced, available
from tests.integration.test_psp_webhooks import (  # noqa: F401 (adyen: a fixture)
    adyen,
    confirm,
    psp_reference,
    results,
    route_to,
)


def refunded(api: Api, pi: dict[str, Any], amount: int) -> dict[str, Any]:
    response = api.post("/v1/refunds", {"payment_intent": pi["id"], "amount": amount})
    assert response.status_code == 200, response.text
    refund: dict[str, Any] = response.json()
    # The saga may still be running when the create's wait ends (a loaded machine).
    wait_for(lambda: api.get(f"/v1/refunds/{refund['id']}").json()["status"] != "pending", 30)
    settled: dict[str, Any] = api.get(f"/v1/refunds/{refund['id']}").json()
    assert settled["status"] == "succeeded", settled
    return settled


def events_about(api: Api, refund_id: str) -> list[str]:
    listed = api.get("/v1/events", params={"limit": 100}).json()["data"]
    return [e["type"] for e in listed if e["data"]["object"].get("id") == refund_id]


def assert_failed_and_given_back(
    api: Api, pi: dict[str, Any], refund: dict[str, Any], currency: str
) -> None:
    failed = api.get(f"/v1/refunds/{refund['id']}").json()
    assert failed["status"] == "failed", failed
    assert failed["failure_balance_transaction"].startswith("txn_refund_failure_")
    txn = api.get(f"/v1/balance_transactions/{failed['failure_balance_transaction']}").json()
    assert (txn["type"], txn["amount"]) == ("refund_failure", refund["amount"])
    assert available(api, currency) == pi["amount"]
    assert api.get(f"/v1/charges/{pi['latest_charge']}").json()["amount_refunded"] == 0
    kinds = events_about(api, refund["id"])
    for kind in ("refund.failed", "refund.updated", "charge.refund.updated"):
        assert kinds.count(kind) == 1 if kind != "refund.updated" else kinds.count(kind) == 2
    assert_ledger_balanced(api)


def test_razorpay_refund_failed_after_it_was_paid_out(api: Api, fake_razorpay: FakeRazorpay):
    # Given a Razorpay payment refunded in part, the refund paid out
    route_to(api, "razorpay", currencies=["inr"])
    pi = confirm(api, "pm_card_visa", "inr")
    refund = refunded(api, pi, 700)
    assert available(api, "inr") == 2000 - 700
    payment_id = psp_reference(api, pi["id"])
    entity = next(
        r
        for r in fake_razorpay.refunds.values()
        if (r.get("notes") or {}).get("payflow_key") == refund["id"]
    )

    # When Razorpay reports it failed, twice
    body = json.dumps(
        {
            "entity": "event",
            "event": "refund.failed",
            "contains": ["refund", "payment"],
            "payload": {
                "refund": {"entity": {**entity, "status": "failed"}},
                "payment": {"entity": {"id": payment_id}},
            },
            "created_at": int(time.time()),
        }
    ).encode()
    signature = hmac.new(RAZORPAY_WEBHOOK_SECRET.encode(), body, hashlib.sha256).hexdigest()
    headers = {
        "Content-Type": "application/json",
        "X-Razorpay-Signature": signature,
        "X-Razorpay-Event-Id": f"evt_rf_{uuid.uuid4().hex[:10]}",
    }
    first = requests.post(f"{api.base}/v1/psp_webhooks/razorpay", data=body, headers=headers)
    second = requests.post(f"{api.base}/v1/psp_webhooks/razorpay", data=body, headers=headers)

    # Then the refund failed once and the merchant has the money back
    assert (results(first), results(second)) == (["applied"], ["duplicate"])
    assert_failed_and_given_back(api, pi, refund, "inr")
    # And the payment can be refunded again (Razorpay's side counts the failed refund back too)
    fake_razorpay.payments[payment_id]["amount_refunded"] -= 700
    assert refunded(api, pi, 2000)["amount"] == 2000
    assert available(api, "inr") == 0
    assert_ledger_balanced(api)


@pytest.mark.usefixtures("adyen")  # its notifications reach the sandbox, as Adyen's would
def test_adyen_refund_failed_notification(api: Api, fake_adyen: FakeAdyen):
    route_to(api, "adyen", payment_method_types=["card"])
    pi = confirm(api, "pm_card_visa", "eur")
    refund = refunded(api, pi, 500)
    item: dict[str, Any] = {
        "amount": {"value": 500, "currency": "EUR"},
        "eventCode": "REFUND_FAILED",
        "eventDate": "2026-12-01T12:00:00+00:00",
        "merchantAccountCode": MERCHANT_ACCOUNT,
        "merchantReference": refund["id"],
        "originalReference": psp_reference(api, pi["id"]),
        "pspReference": f"RF{uuid.uuid4().hex[:12].upper()}",
        "reason": "",
        "success": "true",
    }
    item["additionalData"] = {"hmacSignature": sign(item)}

    def send() -> requests.Response:
        return requests.post(
            f"{api.base}/v1/psp_webhooks/adyen", json=notification_body([item]), timeout=30
        )

    assert (results(send()), results(send())) == (["applied"], ["duplicate"])
    assert_failed_and_given_back(api, pi, refund, "eur")


def test_stripes_refund_updated_to_failed(api: Api, fake_stripe):
    route_to(api, "stripe", payment_method_types=["card"])
    pi = confirm(api, "pm_card_visa", "usd")
    refund = refunded(api, pi, 900)
    payload = json.dumps(
        {
            "id": f"evt_{uuid.uuid4().hex[:16]}",
            "object": "event",
            "type": "charge.refund.updated",
            "data": {
                "object": {
                    "id": f"re_stripe{uuid.uuid4().hex[:10]}",
                    "object": "refund",
                    "amount": 900,
                    "status": "failed",
                    "failure_reason": "expired_or_canceled_card",
                    "payment_intent": psp_reference(api, pi["id"]),
                    "metadata": {"payflow_key": refund["id"]},
                }
            },
        }
    )
    timestamp = int(time.time())
    v1 = hmac.new(
        STRIPE_WEBHOOK_SECRET.encode(), f"{timestamp}.{payload}".encode(), hashlib.sha256
    ).hexdigest()

    def send(_: int) -> list[str]:
        return results(
            requests.post(
                f"{api.base}/v1/psp_webhooks/stripe",
                data=payload,
                headers={
                    "Content-Type": "application/json",
                    "Stripe-Signature": f"t={timestamp},v1={v1}",
                },
                timeout=30,
            )
        )

    # Three copies at once (a provider's retry racing its first delivery): one applies it
    with ThreadPoolExecutor(3) as pool:
        answers = sorted(a for copy in pool.map(send, range(3)) for a in copy)
    assert answers.count("applied") == 1, answers
    assert set(answers) <= {"applied", "unchanged", "duplicate"}
    assert_failed_and_given_back(api, pi, refund, "usd")
    assert api.get(f"/v1/refunds/{refund['id']}").json()["failure_reason"] == (
        "expired_or_canceled_card"
    )
