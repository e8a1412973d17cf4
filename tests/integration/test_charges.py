"""Charges and the PaymentIntent parameters integrations send, through the real path."""

from __future__ import annotations

import pytest
import stripe

from tests.conftest import Api


@pytest.fixture
def client(api_url: str, merchant: dict) -> stripe.StripeClient:
    return stripe.StripeClient(
        merchant["secret_key"], base_addresses={"api": api_url}, max_network_retries=2
    )


def _types(api: Api, object_id: str) -> list[str]:
    events = api.get("/v1/events", params={"limit": 100}).json()["data"]
    return sorted(e["type"] for e in events if e["data"]["object"]["id"] == object_id)


def _pay(client: stripe.StripeClient, **params: object) -> stripe.PaymentIntent:
    return client.v1.payment_intents.create(
        params={"amount": 2000, "currency": "usd", "confirm": True, **params}  # type: ignore[typeddict-item]
    )


def test_a_payment_makes_a_captured_charge(client: stripe.StripeClient, api: Api) -> None:
    # Given a payment with receipt and descriptor parameters
    pi = _pay(
        client,
        payment_method="pm_card_visa",
        receipt_email="jenny@example.com",
        statement_descriptor_suffix="ORDER 42",
        transfer_group="order_42",
        shipping={"name": "Jenny", "address": {"line1": "1 Main St", "country": "US"}},
        expand=["latest_charge.balance_transaction"],
    )
    # Then its latest charge is the PSP's authorization, captured, with its ledger entry
    charge = pi.latest_charge
    assert pi.status == "succeeded" and charge.object == "charge"
    assert charge.captured and charge.paid and charge.amount_captured == 2000
    assert charge.balance_transaction.amount == 2000
    assert charge.payment_method_details.card.last4 == "4242"
    assert charge.outcome.type == "authorized" and charge.receipt_email == "jenny@example.com"
    assert charge.statement_descriptor_suffix == "ORDER 42" and charge.shipping.name == "Jenny"
    assert pi.transfer_group == "order_42"
    assert client.v1.charges.retrieve(charge.id).payment_intent == pi.id
    assert [c.id for c in client.v1.charges.list(params={"payment_intent": pi.id}).data] == [
        charge.id
    ]
    assert _types(api, charge.id) == ["charge.succeeded"]


def test_partial_capture_then_refund_by_charge(client: stripe.StripeClient, api: Api) -> None:
    pi = _pay(client, payment_method="pm_card_mastercard", capture_method="manual")
    charge = client.v1.charges.retrieve(pi.latest_charge)
    assert pi.status == "requires_capture" and not charge.captured
    # When 1500 of 2000 is captured, then 500 refunded by charge
    client.v1.payment_intents.capture(
        pi.id, params={"amount_to_capture": 1500, "statement_descriptor_suffix": "PART"}
    )
    captured = client.v1.charges.retrieve(charge.id)
    assert captured.captured and captured.amount_captured == 1500
    assert captured.amount_refunded == 500 and not captured.refunded
    refund = client.v1.refunds.create(params={"charge": charge.id})
    assert refund.payment_intent == pi.id and refund.charge == charge.id
    assert refund.amount == 1500
    after = client.v1.charges.retrieve(charge.id)
    # Then the charge shows all of it refunded, and each move was announced
    assert after.amount_refunded == 2000 and after.refunded
    assert [r.id for r in client.v1.refunds.list(params={"charge": charge.id}).data] == [refund.id]
    assert set(_types(api, charge.id)) >= {"charge.succeeded", "charge.captured"}


def test_a_decline_makes_a_failed_charge(client: stripe.StripeClient, api: Api) -> None:
    with pytest.raises(stripe.CardError) as raised:
        _pay(client, payment_method="pm_card_chargeDeclinedInsufficientFunds")
    charge_id = raised.value.error.charge
    charge = client.v1.charges.retrieve(charge_id)
    assert charge.status == "failed" and not charge.paid
    assert charge.failure_code == "card_declined" and charge.outcome.type == "issuer_declined"
    assert charge.outcome.reason == "insufficient_funds"
    pi = client.v1.payment_intents.retrieve(charge.payment_intent)
    assert pi.latest_charge == charge_id
    assert _types(api, charge_id) == ["charge.failed"]


def test_cancel_releases_an_uncaptured_charge(client: stripe.StripeClient) -> None:
    pi = _pay(client, payment_method="pm_card_visa", capture_method="manual")
    client.v1.payment_intents.cancel(pi.id)
    charge = client.v1.charges.retrieve(pi.latest_charge)
    assert charge.refunded and charge.amount_refunded == 2000 and not charge.captured


def test_saving_a_card_then_paying_off_session(client: stripe.StripeClient, api: Api) -> None:
    customer = client.v1.customers.create(params={"email": "saver@example.com"})
    # Given a first payment that saves its card for later
    first = _pay(
        client,
        customer=customer.id,
        payment_method="pm_card_visa",
        setup_future_usage="off_session",
    )
    saved = first.payment_method
    assert first.status == "succeeded" and saved.startswith("pm_") and saved != "pm_card_visa"
    methods = client.v1.customers.payment_methods.list(customer.id).data
    assert [m.id for m in methods] == [saved]
    assert _types(api, saved) == ["payment_method.attached"]
    # When the merchant charges it later without the customer
    later = _pay(client, customer=customer.id, payment_method=saved, off_session=True)
    # Then it goes through, and lists by customer find both payments
    assert later.status == "succeeded"
    mine = client.v1.payment_intents.list(params={"customer": customer.id}).data
    assert {p.id for p in mine} == {first.id, later.id}
    assert len(client.v1.charges.list(params={"customer": customer.id}).data) == 2


def test_off_session_payment_that_needs_the_customer(client: stripe.StripeClient) -> None:
    customer = client.v1.customers.create()
    card = client.v1.payment_methods.attach(
        "pm_card_authenticationRequired", params={"customer": customer.id}
    )
    with pytest.raises(stripe.CardError) as raised:
        _pay(client, customer=customer.id, payment_method=card.id, off_session=True)
    assert raised.value.code == "authentication_required"
    pi = raised.value.error.payment_intent
    assert pi.status == "requires_payment_method"


def test_a_card_set_up_once_pays_off_session_later(client: stripe.StripeClient, api: Api) -> None:
    customer = client.v1.customers.create()
    # Given a card that asks for 3-D Secure on session, authenticated on its first payment
    first = _pay(
        client,
        customer=customer.id,
        payment_method="pm_card_authenticationRequiredOnSetup",
        setup_future_usage="off_session",
    )
    assert first.status == "requires_action"
    done = api.post(
        f"/v1/sandbox/payment_intents/{first.id}/authenticate", data={"outcome": "succeeded"}
    ).json()
    assert done["status"] == "succeeded", done
    saved = done["payment_method"]
    assert client.v1.payment_methods.retrieve(saved).customer == customer.id
    # When the saved card is charged off session
    later = _pay(client, customer=customer.id, payment_method=saved, off_session=True)
    # Then it needs no authentication: the card was set up
    assert later.status == "succeeded"


def test_error_on_requires_action_and_return_url(client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.CardError) as raised:
        _pay(client, payment_method="pm_card_threeDSecure2Required", error_on_requires_action=True)
    assert raised.value.code == "authentication_required"
    pi = _pay(
        client,
        payment_method="pm_card_threeDSecure2Required",
        return_url="https://shop.example/done",
    )
    assert pi.status == "requires_action" and pi.next_action.type == "redirect_to_url"
    assert pi.next_action.redirect_to_url.return_url == "https://shop.example/done"


def test_card_capture_method_option(client: stripe.StripeClient) -> None:
    pi = _pay(
        client,
        payment_method="pm_card_visa",
        payment_method_options={"card": {"capture_method": "manual"}},
        automatic_payment_methods={"enabled": True},
    )
    assert pi.status == "requires_capture" and pi.capture_method == "automatic"
    assert pi.payment_method_options.card.capture_method == "manual"
    assert pi.automatic_payment_methods.enabled is True


def test_expand_on_payment_intents(client: stripe.StripeClient, api: Api) -> None:
    customer = client.v1.customers.create(params={"name": "Ex"})
    pi = _pay(
        client,
        customer=customer.id,
        payment_method="pm_card_amex",
        expand=["customer", "payment_method", "latest_charge.payment_intent"],
    )
    assert pi.customer.name == "Ex" and pi.payment_method.card.brand == "amex"
    assert pi.latest_charge.payment_intent.id == pi.id
    listed = client.v1.payment_intents.list(params={"expand": ["data.latest_charge"]})
    assert listed.data[0].latest_charge.object == "charge"
    too_deep = api.get(
        f"/v1/payment_intents/{pi.id}",
        params={
            "expand[]": "latest_charge.payment_intent.latest_charge.payment_intent.latest_charge"
        },
    )
    assert too_deep.status_code == 400 and "4 levels" in too_deep.json()["error"]["message"]
    unknown = api.get(f"/v1/payment_intents/{pi.id}", params={"expand[]": "amount"})
    assert unknown.status_code == 400 and unknown.json()["error"]["param"] == "expand"


def test_unsupported_parameters_are_refused(api: Api, client: stripe.StripeClient) -> None:
    before = api.get("/v1/payment_intents").json()["data"]
    for params in (
        {"amount": "100", "currency": "usd", "application_fee_amount": "10"},
        {"amount": "100", "currency": "usd", "confirmation_method": "manual"},
        {"amount": "100", "currency": "usd", "customer": "cus_missing"},
        {"amount": "100", "currency": "usd", "expand[]": "nothing"},
    ):
        response = api.post("/v1/payment_intents", data=params)
        assert response.status_code in (400, 404), params
        assert response.json()["error"]["type"] == "invalid_request_error"
    assert api.get("/v1/payment_intents").json()["data"] == before
    pi = _pay(client, payment_method="pm_card_visa", capture_method="manual")
    partial = api.post(f"/v1/payment_intents/{pi.id}/capture", data={"final_capture": "false"})
    assert partial.status_code == 400


def test_another_customers_method_is_refused(client: stripe.StripeClient) -> None:
    alice = client.v1.customers.create()
    bob = client.v1.customers.create()
    card = client.v1.payment_methods.attach("pm_card_visa", params={"customer": alice.id})
    with pytest.raises(stripe.InvalidRequestError):
        _pay(client, customer=bob.id, payment_method=card.id)
    with pytest.raises(stripe.InvalidRequestError):
        _pay(client, payment_method=card.id)


def test_search_charges(client: stripe.StripeClient) -> None:
    big = _pay(client, payment_method="pm_card_visa", amount=9100, metadata={"order": "7"})
    with pytest.raises(stripe.CardError):
        _pay(client, payment_method="pm_card_chargeDeclined")
    found = client.v1.charges.search(params={"query": "amount>9000 AND status:'succeeded'"})
    assert [c.id for c in found.data] == [big.latest_charge]
    failed = client.v1.charges.search(
        params={"query": "status:'failed'", "expand": ["data.payment_intent"]}
    )
    assert len(failed.data) == 1 and failed.data[0].payment_intent.object == "payment_intent"
    assert client.v1.charges.search(params={"query": "metadata['order']:'7'"}).data[0].id == (
        big.latest_charge
    )
