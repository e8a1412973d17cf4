"""The official stripe-python SDK, unchanged, against the sandbox."""

from __future__ import annotations

import pytest
import stripe

from tests.conformance.recorder import recorded_session


@pytest.fixture
def client(api_url: str, merchant: dict) -> stripe.StripeClient:
    return stripe.StripeClient(
        merchant["secret_key"],
        base_addresses={"api": api_url},
        max_network_retries=2,
        # stripe-python's own requests client, on a session whose bodies are checked.
        http_client=stripe.RequestsClient(session=recorded_session()),
    )


@pytest.fixture
def global_sdk(api_url: str, merchant: dict):
    """The module-level SDK with only api_base (and the key) changed, as the README shows."""
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


def test_module_level_sdk_full_lifecycle(global_sdk):
    pi = stripe.PaymentIntent.create(
        amount=2000, currency="usd", metadata={"order_id": "42"}, payment_method_types=["card"]
    )
    assert pi.status == "requires_payment_method" and pi.metadata["order_id"] == "42"
    pi = stripe.PaymentIntent.modify(pi.id, description="updated", payment_method="pm_card_visa")
    assert pi.status == "requires_confirmation" and pi.description == "updated"
    pi = stripe.PaymentIntent.confirm(pi.id, capture_method="manual")
    assert pi.status == "requires_capture"
    pi = stripe.PaymentIntent.capture(pi.id, amount_to_capture=1500)
    assert pi.status == "succeeded" and pi.amount_received == 1500
    assert stripe.PaymentIntent.retrieve(pi.id).amount_received == 1500


def test_client_create_cancel_list_and_paging(client: stripe.StripeClient):
    ids = [
        client.v1.payment_intents.create(params={"amount": 100 + i, "currency": "eur"}).id
        for i in range(4)
    ]
    canceled = client.v1.payment_intents.cancel(ids[0], params={"cancellation_reason": "abandoned"})
    assert canceled.status == "canceled"
    page = client.v1.payment_intents.list(params={"limit": 3})
    assert len(page.data) == 3 and page.has_more
    every = [pi.id for pi in page.auto_paging_iter()]
    assert every == ids[::-1]


def test_decline_raises_card_error(client: stripe.StripeClient):
    with pytest.raises(stripe.CardError) as raised:
        client.v1.payment_intents.create(
            params={
                "amount": 2000,
                "currency": "usd",
                "confirm": True,
                "payment_method": "pm_card_chargeDeclinedInsufficientFunds",
            }
        )
    error = raised.value
    assert error.code == "card_declined" and error.http_status == 402
    assert error.error.decline_code == "insufficient_funds"
    assert error.error.payment_intent.status == "requires_payment_method"


def test_errors_map_onto_the_sdks_exception_classes(client: stripe.StripeClient, api_url: str):
    with pytest.raises(stripe.InvalidRequestError) as missing:
        client.v1.payment_intents.retrieve("pi_missing")
    assert missing.value.http_status == 404 and missing.value.code == "resource_missing"
    with pytest.raises(stripe.InvalidRequestError) as invalid:
        client.v1.payment_intents.create(params={"amount": -1, "currency": "usd"})
    assert invalid.value.param == "amount"
    with pytest.raises(stripe.AuthenticationError):
        stripe.StripeClient(
            "sk_test_nobody", base_addresses={"api": api_url}
        ).v1.payment_intents.list()


def test_sdk_idempotency_key_replays(client: stripe.StripeClient):
    params = {"amount": 700, "currency": "usd", "payment_method": "pm_card_visa", "confirm": True}
    first = client.v1.payment_intents.create(params=params, options={"idempotency_key": "sdk-1"})
    second = client.v1.payment_intents.create(params=params, options={"idempotency_key": "sdk-1"})
    assert first.id == second.id
    assert second.last_response.headers["Idempotent-Replayed"] == "true"
    with pytest.raises(stripe.IdempotencyError):
        client.v1.payment_intents.create(
            params={**params, "amount": 701}, options={"idempotency_key": "sdk-1"}
        )


def test_sdk_sends_its_own_idempotency_key_on_every_post(client: stripe.StripeClient):
    pi = client.v1.payment_intents.create(params={"amount": 10, "currency": "usd"})
    assert pi.last_response.headers["Idempotency-Key"]
