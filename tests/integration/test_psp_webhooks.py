"""Provider webhooks in, through HTTP on the embedded sandbox: each provider's signature, each
event stored once, applied in any order and only forward, with one merchant event per change
and the ledger balanced."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from typing import Any

import pytest
import requests

from chalicelib.container import services
from payflow.sandbox.pollers import wait_for
from tests.conftest import RAZORPAY_WEBHOOK_SECRET, STRIPE_WEBHOOK_SECRET, Api
from tests.fakes.adyen_server import MERCHANT_ACCOUNT, FakeAdyen, notification_body, sign
from tests.fakes.razorpay_server import FakeRazorpay


def route_to(api: Api, kind: str, connector_id: str = "", **rules: Any) -> None:
    """This merchant routes everything to one connector of `kind` (id: the kind's name)."""
    connector = {
        "id": connector_id or kind,
        "kind": kind,
        "payment_method_types": ["card", "upi"],
        **rules,
    }
    response = api.session.post(api.base + "/v1/routing", json={"connectors": [connector]})
    assert response.status_code == 200, response.text


def confirm(api: Api, pm: str, currency: str, **extra: str) -> dict[str, Any]:
    response = api.post(
        "/v1/payment_intents",
        {"amount": 2000, "currency": currency, "payment_method": pm, "confirm": "true", **extra},
    )
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def status(api: Api, pi_id: str) -> str:
    return str(api.get(f"/v1/payment_intents/{pi_id}").json()["status"])


def events_of(api: Api, pi_id: str) -> list[str]:
    listed = api.get("/v1/events", params={"limit": 100}).json()["data"]
    return [e["type"] for e in listed if e["data"]["object"].get("id") == pi_id]


def assert_ledger_balanced(api: Api) -> None:
    report = services().ledger.check(services().merchants.authenticate(api.session.auth[0]))
    assert report.ok, (report.unbalanced, report.drift)


def available(api: Api, currency: str) -> int:
    body = api.get("/v1/balance").json()
    return sum(b["amount"] for b in body["available"] if b["currency"] == currency)


# -- Razorpay ----------------------------------------------------------------------------------


def razorpay_webhook(
    api: Api, name: str, payment: dict[str, Any], event_id: str, secret: str = ""
) -> requests.Response:
    body = json.dumps(
        {
            "entity": "event",
            "account_id": "acc_fake",
            "event": name,
            "contains": ["payment"],
            "payload": {"payment": {"entity": payment}},
            "created_at": int(time.time()),
        }
    ).encode()
    signature = hmac.new(
        (secret or RAZORPAY_WEBHOOK_SECRET).encode(), body, hashlib.sha256
    ).hexdigest()
    return requests.post(
        f"{api.base}/v1/psp_webhooks/razorpay",
        data=body,
        headers={
            "Content-Type": "application/json",
            "X-Razorpay-Signature": signature,
            "X-Razorpay-Event-Id": event_id,
        },
        timeout=30,
    )


def results(response: requests.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [e["result"] for e in response.json()["events"]]


def test_razorpay_webhooks_finish_a_3ds_payment_once_in_any_order(
    api: Api, fake_razorpay: FakeRazorpay
):
    # Given a card payment routed to Razorpay, waiting for the customer's 3-D Secure
    route_to(api, "razorpay", currencies=["inr"])
    pi = confirm(api, "pm_card_authenticationRequired", "inr")
    assert pi["status"] == "requires_action", pi
    requests.get(pi["next_action"]["redirect_to_url"]["url"], params={"succeeded": "1"})
    payment = fake_razorpay.payments[pi["next_action"]["redirect_to_url"]["url"].split("/")[-1]]
    suffix = uuid.uuid4().hex[:8]

    # When Razorpay reports the capture before the authorization, then repeats the capture
    captured = razorpay_webhook(api, "payment.captured", payment, f"evt_cap_{suffix}")
    authorized = razorpay_webhook(api, "payment.authorized", payment, f"evt_auth_{suffix}")
    again = razorpay_webhook(api, "payment.captured", payment, f"evt_cap_{suffix}")

    # Then the capture moved it, the late authorization changed nothing, the copy was skipped
    assert (results(captured), results(authorized), results(again)) == (
        ["applied"],
        ["unchanged"],
        ["duplicate"],
    )
    done = api.get(f"/v1/payment_intents/{pi['id']}").json()
    assert (done["status"], done["amount_received"]) == ("succeeded", 2000)
    assert done["latest_charge"] == "ch_" + payment["id"].removeprefix("pay_")
    assert events_of(api, pi["id"]).count("payment_intent.succeeded") == 1
    assert available(api, "inr") == 2000
    assert_ledger_balanced(api)


@pytest.mark.parametrize("connector_id", ["razorpay", "razorpay_in"])
def test_a_upi_approval_arrives_by_razorpays_webhook(
    api: Api, fake_razorpay: FakeRazorpay, connector_id: str
):
    # Given a UPI payment whose collect request waits on the customer's phone (at a connector
    # the merchant may have named as it likes: the webhook URL names the provider)
    route_to(api, "razorpay", connector_id, currencies=["inr"])
    pi = confirm(api, "pm_upi_success", "inr")
    assert pi["status"] == "requires_action", pi
    assert pi["next_action"] == {"type": "upi_await_notification"}
    reference = psp_reference(api, pi["id"])

    # When the customer approves and Razorpay says so, twice
    requests.get(f"{fake_razorpay.url}/_fake/authenticate/{reference}", params={"succeeded": "1"})
    payment = fake_razorpay.payments[reference]
    event_id = f"evt_upi_{uuid.uuid4().hex[:8]}"
    first = razorpay_webhook(api, "payment.captured", payment, event_id)
    second = razorpay_webhook(api, "payment.captured", payment, event_id)

    # Then the payment succeeded once
    assert (results(first), results(second)) == (["applied"], ["duplicate"])
    assert status(api, pi["id"]) == "succeeded"
    assert events_of(api, pi["id"]).count("payment_intent.succeeded") == 1
    assert_ledger_balanced(api)


def test_a_failed_authentication_reported_by_razorpay_declines_the_payment(
    api: Api, fake_razorpay: FakeRazorpay
):
    route_to(api, "razorpay", currencies=["inr"])
    pi = confirm(api, "pm_card_authenticationRequired", "inr")
    url = pi["next_action"]["redirect_to_url"]["url"]
    requests.get(url, params={"succeeded": "0"})
    payment = fake_razorpay.payments[url.split("/")[-1]]
    response = razorpay_webhook(api, "payment.failed", payment, f"evt_{uuid.uuid4().hex}")
    assert results(response) == ["applied"]
    failed = api.get(f"/v1/payment_intents/{pi['id']}").json()
    assert failed["status"] == "requires_payment_method"
    assert failed["last_payment_error"]["code"] == "payment_intent_authentication_failure"
    assert events_of(api, pi["id"]).count("payment_intent.payment_failed") == 1


def test_a_wrongly_signed_webhook_is_refused_and_changes_nothing(
    api: Api, fake_razorpay: FakeRazorpay
):
    route_to(api, "razorpay", currencies=["inr"])
    pi = confirm(api, "pm_card_authenticationRequired", "inr")
    url = pi["next_action"]["redirect_to_url"]["url"]
    requests.get(url, params={"succeeded": "1"})
    payment = fake_razorpay.payments[url.split("/")[-1]]
    forged = razorpay_webhook(api, "payment.captured", payment, "evt_forged", secret="guess")
    assert forged.status_code == 400
    assert forged.json()["error"]["code"] == "psp_webhook_invalid"
    assert status(api, pi["id"]) == "requires_action"
    unknown = requests.post(f"{api.base}/v1/psp_webhooks/nobody", data=b"{}", timeout=10)
    assert unknown.status_code == 404


# -- Adyen -------------------------------------------------------------------------------------


@pytest.fixture
def adyen(api: Api, fake_adyen: FakeAdyen):
    """The fake Adyen delivers its notifications to the sandbox, as Adyen's webhook would."""
    fake_adyen.webhook_url = f"{api.base}/v1/psp_webhooks/adyen"
    yield fake_adyen
    fake_adyen.webhook_url = None


def test_adyens_authorisation_notification_finishes_a_3ds_payment(api: Api, adyen: FakeAdyen):
    route_to(api, "adyen", payment_method_types=["card"])
    pi = confirm(api, "pm_card_authenticationRequired", "eur")
    assert pi["status"] == "requires_action", pi

    # When the shopper authenticates, Adyen sends AUTHORISATION (to the sandbox)
    requests.get(pi["next_action"]["redirect_to_url"]["url"], params={"succeeded": "1"})

    # Then the PaymentIntent succeeds, once, and a repeated notification is a duplicate
    wait_for(lambda: status(api, pi["id"]) == "succeeded", timeout=15)
    item = next(
        n
        for n in adyen.notifications
        if n["eventCode"] == "AUTHORISATION" and n["merchantReference"].startswith(pi["id"])
    )
    repeated = requests.post(
        f"{api.base}/v1/psp_webhooks/adyen", json=notification_body([item]), timeout=30
    )
    assert results(repeated) == ["duplicate"]
    assert events_of(api, pi["id"]).count("payment_intent.succeeded") == 1
    assert available(api, "eur") == 2000
    assert_ledger_balanced(api)


def test_adyen_manual_capture_with_notifications_late_and_repeated(api: Api, adyen: FakeAdyen):
    route_to(api, "adyen", payment_method_types=["card"])
    pi = confirm(api, "pm_card_visa", "eur", capture_method="manual")
    assert pi["status"] == "requires_capture", pi
    # AUTHORISATION races the confirm's own answer: it may arrive before the confirm has
    # committed (then it is answered 409, kept unapplied, and applied when Adyen delivers it
    # again); whichever lands first moves the PaymentIntent, the other finds nothing to do.
    event_id = f"AUTHORISATION:{psp_reference(api, pi['id'])}"

    def authorised() -> dict[str, Any] | None:
        return services().psp_events.stored("adyen", event_id)

    wait_for(lambda: (authorised() or {}).get("applied") is True, timeout=15)
    record = authorised()
    assert record is not None and record["applied"] is True
    assert record["outcome"] in ("applied", "unchanged")
    assert events_of(api, pi["id"]).count("payment_intent.amount_capturable_updated") == 1
    captured = api.post(f"/v1/payment_intents/{pi['id']}/capture", {"amount_to_capture": 1500})
    assert captured.status_code == 200, captured.text
    assert captured.json()["amount_received"] == 1500

    # The CAPTURE notification arrives after PayFlow's own capture: nothing moves twice.
    def capture_item() -> dict[str, Any] | None:
        return adyen.find_notification("CAPTURE", f"{pi['id']}:capture")

    wait_for(lambda: capture_item() is not None, timeout=15)
    capture = capture_item()
    assert capture is not None
    late = requests.post(
        f"{api.base}/v1/psp_webhooks/adyen", json=notification_body([capture]), timeout=30
    )
    assert results(late) in (["unchanged"], ["duplicate"])
    assert events_of(api, pi["id"]).count("payment_intent.succeeded") == 1
    assert available(api, "eur") == 1500
    assert_ledger_balanced(api)


# -- Stripe ------------------------------------------------------------------------------------


def test_a_capture_made_at_stripe_reaches_payflow_by_stripes_webhook(api: Api, fake_stripe):
    route_to(api, "stripe", payment_method_types=["card"])
    pi = confirm(api, "pm_card_visa", "usd", capture_method="manual")
    assert pi["status"] == "requires_capture", pi
    intent = dict(fake_stripe.intents[psp_reference(api, pi["id"])])
    intent.update(status="succeeded", amount_received=2000)
    payload = json.dumps(
        {
            "id": f"evt_{uuid.uuid4().hex[:16]}",
            "object": "event",
            "type": "payment_intent.succeeded",
            "data": {"object": intent},
        }
    )
    timestamp = int(time.time())
    v1 = hmac.new(
        STRIPE_WEBHOOK_SECRET.encode(), f"{timestamp}.{payload}".encode(), hashlib.sha256
    ).hexdigest()

    def send() -> requests.Response:
        return requests.post(
            f"{api.base}/v1/psp_webhooks/stripe",
            data=payload,
            headers={
                "Content-Type": "application/json",
                "Stripe-Signature": f"t={timestamp},v1={v1}",
            },
            timeout=30,
        )

    assert (results(send()), results(send())) == (["applied"], ["duplicate"])
    assert status(api, pi["id"]) == "succeeded"
    assert events_of(api, pi["id"]).count("payment_intent.succeeded") == 1
    assert_ledger_balanced(api)


def psp_reference(api: Api, pi_id: str) -> str:
    """The provider's payment behind a PayFlow PaymentIntent."""
    merchant = services().merchants.authenticate(api.session.auth[0])
    reference = services().payment_intents.retrieve(merchant, pi_id).psp_reference
    assert reference is not None
    return reference


# -- the orchestration over the providers' connectors ------------------------------------------


def test_a_razorpay_timeout_that_charged_is_found_not_charged_again(
    api: Api, fake_razorpay: FakeRazorpay
):
    # Given Razorpay pays but its answer comes after the connector gave up
    route_to(api, "razorpay", currencies=["inr"], timeout_ms=1000)
    fake_razorpay.misbehave("timeout_after_charge", path="/v1/payments/create")

    # When the state machine retries the attempt
    pi = confirm(api, "pm_card_visa", "inr")

    # Then it found the payment made for this attempt's key instead of paying again
    assert pi["status"] == "succeeded", pi
    paid = [
        p
        for p in fake_razorpay.payments.values()
        if p["notes"].get("payflow_payment_intent") == pi["id"]
    ]
    assert len(paid) == 1 and paid[0]["status"] == "captured"
    outcomes = [
        a["outcome"] for a in api.get(f"/v1/payment_intents/{pi['id']}/attempts").json()["data"]
    ]
    assert outcomes[0] == "PspTimeout" and outcomes[-1] in ("authorized", "reconciled")


def test_an_adyen_timeout_that_charged_is_replayed_by_its_idempotency_key(
    api: Api, fake_adyen: FakeAdyen
):
    route_to(api, "adyen", payment_method_types=["card"], timeout_ms=1000)
    fake_adyen.misbehave("timeout_after_charge", path="/v72/payments")
    pi = confirm(api, "pm_card_visa", "eur")
    assert pi["status"] == "succeeded", pi
    made = [p for p in fake_adyen.payments.values() if p["merchantReference"].startswith(pi["id"])]
    assert len(made) == 1


def test_a_capture_after_the_routing_changed_still_reaches_razorpay(
    api: Api, fake_razorpay: FakeRazorpay
):
    route_to(api, "razorpay", currencies=["inr"])
    pi = confirm(api, "pm_card_visa", "inr", capture_method="manual")
    assert pi["status"] == "requires_capture", pi
    reset = api.post("/v1/routing", {"use_defaults": "true"})
    assert reset.status_code == 200, reset.text
    captured = api.post(f"/v1/payment_intents/{pi['id']}/capture")
    assert captured.status_code == 200, captured.text
    assert fake_razorpay.payments[psp_reference(api, pi["id"])]["status"] == "captured"


def test_an_event_for_a_payment_not_committed_yet_is_kept_and_asked_again(adyen: FakeAdyen, api):
    # The first PSP call is made before the confirm writes anything: a provider that answers
    # by webhook at once can name a PaymentIntent PayFlow has not stored yet.
    pi_id = f"pi_notyet{uuid.uuid4().hex[:12]}"
    item: dict[str, Any] = {
        "amount": {"value": 1200, "currency": "EUR"},
        "eventCode": "AUTHORISATION",
        "eventDate": "2026-12-01T12:00:00+00:00",
        "merchantAccountCode": MERCHANT_ACCOUNT,
        "merchantReference": f"{pi_id}:1:adyen",
        "pspReference": f"PSP{uuid.uuid4().hex[:12].upper()}",
        "reason": "",
        "success": "true",
    }
    item["additionalData"] = {"hmacSignature": sign(item)}
    response = requests.post(
        f"{api.base}/v1/psp_webhooks/adyen", json=notification_body([item]), timeout=30
    )
    assert response.status_code == 409, response.text
    assert response.json()["error"]["code"] == "payment_intent_not_yet_known"
    stored = services().psp_events.stored("adyen", f"AUTHORISATION:{item['pspReference']}")
    assert stored is not None and stored["applied"] is False
    again = requests.post(
        f"{api.base}/v1/psp_webhooks/adyen", json=notification_body([item]), timeout=30
    )
    assert again.status_code == 409  # still unknown: still not dropped as a duplicate
