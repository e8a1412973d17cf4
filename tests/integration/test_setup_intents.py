"""SetupIntents through the real path, with stripe-python as the client: saving cards for later,
3-D Secure on setup, declines, cancel, lists, expand, idempotency, tenants and webhooks."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import stripe

from chalicelib.container import services
from tests.conftest import Api, new_merchant
from tests.integration.conftest import Hooks
from tests.integration.test_webhooks import verify_both
from tests.unit.test_setup_intent_rules import assert_stripe_shaped

RETURN_URL = "https://shop.example/setup/done"


@pytest.fixture
def client(api_url: str, merchant: dict) -> stripe.StripeClient:
    return stripe.StripeClient(
        merchant["secret_key"], base_addresses={"api": api_url}, max_network_retries=2
    )


def _events(api: Api, type_: str) -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = api.get("/v1/events", params={"type": type_, "limit": 100}).json()[
        "data"
    ]
    return data


def _ids(api: Api, type_: str) -> list[str]:
    return [e["data"]["object"]["id"] for e in _events(api, type_)]


def _saved(client: stripe.StripeClient, customer: str) -> list[str]:
    return [pm.id for pm in client.v1.customers.payment_methods.list(customer).data]


def _shaped(*bodies: Any) -> None:
    """Each SetupIntent or SetupAttempt body validates against Stripe's schema for it."""
    for body in bodies:
        data = body if isinstance(body, dict) else body.to_dict()
        assert_stripe_shaped(data["object"], data)


def _set_up(merchant: dict, pm_id: str) -> bool:
    """Whether the method is marked for off-session use (not shown in Stripe's API)."""
    return services().payment_methods.retrieve(merchant["id"], pm_id).set_up


def test_saving_a_card_for_a_customer(
    client: stripe.StripeClient, api: Api, merchant: dict
) -> None:
    # Given a customer
    customer = client.v1.customers.create(params={"email": "jenny@example.com"})
    # When a SetupIntent confirms Stripe's test Visa for them
    si = client.v1.setup_intents.create(
        params={
            "customer": customer.id,
            "payment_method": "pm_card_visa",
            "confirm": True,
            "metadata": {"order": "42"},
            "description": "card on file",
        }
    )
    # Then it succeeded at once and names the saved copy of the card, attached to the customer
    assert si.id.startswith("seti_") and si.status == "succeeded"
    assert si.client_secret.startswith(f"{si.id}_secret_")
    assert si.usage == "off_session" and si.payment_method_types == ["card"]
    assert si.payment_method.startswith("pm_") and si.payment_method != "pm_card_visa"
    saved = client.v1.payment_methods.retrieve(si.payment_method)
    assert saved.customer == customer.id and saved.card.last4 == "4242"
    assert _set_up(merchant, saved.id)
    assert _saved(client, customer.id) == [si.payment_method]
    assert client.v1.setup_intents.retrieve(si.id).to_dict() == si.to_dict()
    _shaped(si)
    # and one attempt, which succeeded, records the card
    (attempt,) = client.v1.setup_attempts.list(params={"setup_intent": si.id}).data
    assert attempt.id == si.latest_attempt and attempt.status == "succeeded"
    assert attempt.payment_method == si.payment_method
    assert attempt.payment_method_details.card.last4 == "4242"
    _shaped(attempt)
    # and the changes were announced in one transaction with them
    assert _ids(api, "setup_intent.created") == [si.id]
    assert _ids(api, "setup_intent.succeeded") == [si.id]
    assert _ids(api, "payment_method.attached") == [si.payment_method]
    created = _events(api, "setup_intent.created")[0]["data"]["object"]
    assert created["status"] == "requires_confirmation"


def test_3ds_on_setup_then_the_customer_authenticates(
    client: stripe.StripeClient, api: Api, merchant: dict
) -> None:
    # Given a card that asks for 3-D Secure when it is set up
    customer = client.v1.customers.create()
    si = client.v1.setup_intents.create(
        params={"customer": customer.id, "payment_method": "pm_card_authenticationRequiredOnSetup"}
    )
    assert si.status == "requires_confirmation"
    # When the SetupIntent is confirmed with a return_url
    waiting = client.v1.setup_intents.confirm(si.id, params={"return_url": RETURN_URL})
    # Then it waits for the customer, with a redirect back to the merchant
    assert waiting.status == "requires_action"
    assert waiting.next_action.type == "redirect_to_url"
    assert waiting.next_action.redirect_to_url.return_url == RETURN_URL
    assert waiting.next_action.redirect_to_url.url.endswith(
        f"/v1/sandbox/setup_intents/{si.id}/authenticate"
    )
    assert _saved(client, customer.id) == []
    assert _ids(api, "setup_intent.requires_action") == [si.id]
    _shaped(si, waiting, *client.v1.setup_attempts.list(params={"setup_intent": si.id}).data)
    # When the customer passes the challenge
    done = api.post(f"/v1/sandbox/setup_intents/{si.id}/authenticate", {"outcome": "succeeded"})
    # Then the card is set up and saved
    assert done.status_code == 200, done.text
    body = done.json()
    assert body["status"] == "succeeded" and body["next_action"] is None
    _shaped(body)
    assert _saved(client, customer.id) == [body["payment_method"]]
    assert _set_up(merchant, body["payment_method"])
    assert _ids(api, "setup_intent.succeeded") == [si.id]
    attempt = client.v1.setup_attempts.list(params={"setup_intent": si.id}).data[0]
    assert attempt.status == "succeeded"
    assert attempt.payment_method_details.card.three_d_secure.result == "authenticated"
    # and authenticating again is refused, changing nothing
    again = api.post(f"/v1/sandbox/setup_intents/{si.id}/authenticate", {"outcome": "failed"})
    assert again.status_code == 400
    assert again.json()["error"]["code"] == "setup_intent_unexpected_state"


def test_failed_authentication_then_another_card(client: stripe.StripeClient, api: Api) -> None:
    # Given a card that always asks for 3-D Secure, confirmed for Stripe.js to handle
    customer = client.v1.customers.create()
    si = client.v1.setup_intents.create(
        params={
            "customer": customer.id,
            "payment_method": "pm_card_authenticationRequired",
            "confirm": True,
            "return_url": RETURN_URL,
            "use_stripe_sdk": True,
        }
    )
    # Then Stripe.js is left to run the challenge
    assert si.status == "requires_action" and si.next_action.type == "use_stripe_sdk"
    assert si.next_action.use_stripe_sdk["type"] == "three_d_secure_redirect"
    # When the customer fails it
    failed = api.post(f"/v1/sandbox/setup_intents/{si.id}/authenticate", {"outcome": "failed"})
    # Then the SetupIntent wants a new method, says why, and saved nothing
    body = failed.json()
    assert body["status"] == "requires_payment_method" and body["payment_method"] is None
    assert body["last_setup_error"]["code"] == "setup_intent_authentication_failure"
    assert body["last_setup_error"]["payment_method"]["id"] == "pm_card_authenticationRequired"
    assert _saved(client, customer.id) == []
    assert _ids(api, "setup_intent.setup_failed") == [si.id]
    # When it is confirmed again with a plain card
    retried = client.v1.setup_intents.confirm(si.id, params={"payment_method": "pm_card_visa"})
    # Then it succeeds, and both attempts are listed, newest first
    assert retried.status == "succeeded" and retried.last_setup_error is None
    attempts = client.v1.setup_attempts.list(params={"setup_intent": si.id}).data
    assert [a.status for a in attempts] == ["succeeded", "failed"]
    _shaped(body, retried, *attempts)
    assert attempts[1].setup_error.code == "setup_intent_authentication_failure"
    assert _saved(client, customer.id) == [retried.payment_method]


def test_a_declined_card_fails_with_its_decline_code(client: stripe.StripeClient, api: Api) -> None:
    customer = client.v1.customers.create()
    si = client.v1.setup_intents.create(params={"customer": customer.id})
    assert si.status == "requires_payment_method"
    # When it is confirmed with a card that has no funds
    with pytest.raises(stripe.CardError) as raised:
        client.v1.setup_intents.confirm(
            si.id, params={"payment_method": "pm_card_chargeDeclinedInsufficientFunds"}
        )
    # Then stripe-python raises Stripe's CardError, carrying the SetupIntent
    error = raised.value
    assert error.http_status == 402 and error.code == "card_declined"
    assert error.error is not None and error.error.decline_code == "insufficient_funds"
    assert error.error.setup_intent is not None
    assert error.error.setup_intent.status == "requires_payment_method"
    # and the SetupIntent keeps the failure, with nothing saved
    stored = client.v1.setup_intents.retrieve(si.id)
    assert stored.status == "requires_payment_method" and stored.payment_method is None
    assert stored.last_setup_error.type == "card_error"
    assert stored.last_setup_error.decline_code == "insufficient_funds"
    _shaped(stored, error.error.setup_intent)
    assert _saved(client, customer.id) == []
    assert _ids(api, "setup_intent.setup_failed") == [si.id]
    (attempt,) = client.v1.setup_attempts.list(params={"setup_intent": si.id}).data
    assert attempt.status == "failed" and attempt.setup_error.decline_code == "insufficient_funds"


def test_cancel_and_the_states_that_refuse_it(client: stripe.StripeClient, api: Api) -> None:
    waiting = client.v1.setup_intents.create(
        params={"payment_method": "pm_card_authenticationRequired", "confirm": True}
    )
    canceled = client.v1.setup_intents.cancel(
        waiting.id, params={"cancellation_reason": "requested_by_customer"}
    )
    assert canceled.status == "canceled"
    assert canceled.cancellation_reason == "requested_by_customer"
    assert canceled.next_action is None
    assert _ids(api, "setup_intent.canceled") == [waiting.id]
    (attempt,) = client.v1.setup_attempts.list(params={"setup_intent": waiting.id}).data
    assert attempt.status == "abandoned"
    _shaped(canceled, attempt)
    with pytest.raises(stripe.InvalidRequestError) as again:
        client.v1.setup_intents.confirm(waiting.id, params={"payment_method": "pm_card_visa"})
    assert again.value.code == "setup_intent_unexpected_state"
    succeeded = client.v1.setup_intents.create(
        params={"payment_method": "pm_card_visa", "confirm": True}
    )
    with pytest.raises(stripe.InvalidRequestError) as refused:
        client.v1.setup_intents.cancel(succeeded.id)
    assert refused.value.code == "setup_intent_unexpected_state"
    assert "status of succeeded" in str(refused.value.user_message)
    assert client.v1.setup_intents.retrieve(succeeded.id).status == "succeeded"


def test_setting_up_a_method_saved_earlier_marks_it_without_a_second_attach(
    client: stripe.StripeClient, api: Api, merchant: dict
) -> None:
    customer = client.v1.customers.create()
    pm = client.v1.payment_methods.attach("pm_card_visa", params={"customer": customer.id})
    assert not _set_up(merchant, pm.id)
    si = client.v1.setup_intents.create(
        params={"customer": customer.id, "payment_method": pm.id, "confirm": True}
    )
    assert si.status == "succeeded" and si.payment_method == pm.id
    assert _set_up(merchant, pm.id)
    assert _ids(api, "payment_method.attached") == [pm.id]
    # and a stored method set up without a customer is marked too, and stays unattached
    loose = client.v1.payment_methods.create(params={"type": "card", "card": {"token": "tok_visa"}})
    client.v1.setup_intents.create(params={"payment_method": loose.id, "confirm": True})
    assert _set_up(merchant, loose.id)
    assert client.v1.payment_methods.retrieve(loose.id).customer is None


def test_update_then_confirm(client: stripe.StripeClient) -> None:
    customer = client.v1.customers.create()
    si = client.v1.setup_intents.create(params={"usage": "on_session"})
    updated = client.v1.setup_intents.update(
        si.id,
        params={
            "customer": customer.id,
            "payment_method": "pm_card_mastercard",
            "metadata": {"step": "1"},
        },
    )
    assert updated.status == "requires_confirmation" and updated.customer == customer.id
    assert updated.usage == "on_session" and updated.metadata.to_dict() == {"step": "1"}
    done = client.v1.setup_intents.confirm(si.id)
    assert done.status == "succeeded"
    assert client.v1.payment_methods.retrieve(done.payment_method).card.brand == "mastercard"
    described = client.v1.setup_intents.update(si.id, params={"description": "kept"})
    assert described.description == "kept" and described.status == "succeeded"


def test_lists_filter_by_customer_and_payment_method(client: stripe.StripeClient) -> None:
    a = client.v1.customers.create()
    b = client.v1.customers.create()
    mine = [client.v1.setup_intents.create(params={"customer": a.id}) for _ in range(3)]
    other = client.v1.setup_intents.create(
        params={"customer": b.id, "payment_method": "pm_card_visa", "confirm": True}
    )
    listed = client.v1.setup_intents.list(params={"customer": a.id, "limit": 2})
    assert [s.id for s in listed.data] == [mine[2].id, mine[1].id] and listed.has_more
    assert [s.id for s in listed.auto_paging_iter()] == [s.id for s in reversed(mine)]
    by_method = client.v1.setup_intents.list(params={"payment_method": other.payment_method})
    assert [s.id for s in by_method.data] == [other.id]
    everything = client.v1.setup_intents.list(params={"limit": 100})
    assert {s.id for s in everything.data} == {other.id, *(s.id for s in mine)}
    assert everything.url == "/v1/setup_intents"


def test_expand_payment_method_customer_and_latest_attempt(client: stripe.StripeClient) -> None:
    customer = client.v1.customers.create(params={"name": "Jo"})
    si = client.v1.setup_intents.create(
        params={"customer": customer.id, "payment_method": "pm_card_amex", "confirm": True},
    )
    expanded = client.v1.setup_intents.retrieve(
        si.id,
        params={
            "expand": [
                "payment_method",
                "customer",
                "latest_attempt",
                "latest_attempt.setup_intent",
            ]
        },
    )
    assert expanded.payment_method.card.brand == "amex"
    assert expanded.payment_method.customer == customer.id
    assert expanded.customer.name == "Jo"
    assert expanded.latest_attempt.object == "setup_attempt"
    assert expanded.latest_attempt.setup_intent.id == si.id
    listed = client.v1.setup_intents.list(
        params={"customer": customer.id, "expand": ["data.latest_attempt.payment_method"]}
    )
    assert listed.data[0].latest_attempt.payment_method.id == si.payment_method
    attempts = client.v1.setup_attempts.list(
        params={"setup_intent": si.id, "expand": ["data.setup_intent.customer"]}
    )
    assert attempts.data[0].setup_intent.customer.id == customer.id
    created = client.v1.setup_intents.create(
        params={"payment_method": "pm_card_visa", "expand": ["payment_method"]}
    )
    assert created.payment_method.id == "pm_card_visa"
    with pytest.raises(stripe.InvalidRequestError) as refused:
        client.v1.setup_intents.retrieve(si.id, params={"expand": ["usage"]})
    assert refused.value.code == "parameter_invalid_expand"


def test_retry_with_the_same_idempotency_key_gives_the_same_setup_intent(
    client: stripe.StripeClient, api: Api
) -> None:
    customer = client.v1.customers.create()
    params: dict[str, Any] = {
        "customer": customer.id,
        "payment_method": "pm_card_visa",
        "confirm": True,
    }
    first = client.v1.setup_intents.create(params=params, options={"idempotency_key": "seti-1"})
    second = client.v1.setup_intents.create(params=params, options={"idempotency_key": "seti-1"})
    assert second.id == first.id and second.payment_method == first.payment_method
    assert _ids(api, "setup_intent.created") == [first.id]
    assert len(_saved(client, customer.id)) == 1
    with pytest.raises(stripe.IdempotencyError):
        client.v1.setup_intents.create(
            params={**params, "usage": "on_session"}, options={"idempotency_key": "seti-1"}
        )
    # a confirm retried with its key replays its answer instead of confirming twice
    si = client.v1.setup_intents.create(params={"payment_method": "pm_card_authenticationRequired"})
    once = client.v1.setup_intents.confirm(si.id, options={"idempotency_key": "confirm-1"})
    twice = client.v1.setup_intents.confirm(si.id, options={"idempotency_key": "confirm-1"})
    assert twice.latest_attempt == once.latest_attempt
    assert len(client.v1.setup_attempts.list(params={"setup_intent": si.id}).data) == 1


def test_errors_stripe_gives_change_nothing(client: stripe.StripeClient, api: Api) -> None:
    unknown = api.post("/v1/setup_intents", {"single_use[amount]": "100"})
    assert unknown.status_code == 400
    assert unknown.json()["error"]["code"] == "parameter_unknown"
    assert unknown.json()["error"]["param"] == "single_use"
    no_confirm = api.post("/v1/setup_intents", {"return_url": RETURN_URL})
    assert no_confirm.json()["error"]["param"] == "return_url"
    sdk_only = api.post("/v1/setup_intents", {"use_stripe_sdk": "true"})
    assert sdk_only.json()["error"]["param"] == "use_stripe_sdk"
    both = api.post(
        "/v1/setup_intents",
        {"payment_method_types[0]": "card", "automatic_payment_methods[enabled]": "true"},
    )
    assert both.status_code == 400
    bad_usage = api.post("/v1/setup_intents", {"usage": "sometimes"})
    assert bad_usage.json()["error"]["param"] == "usage"
    missing = api.post("/v1/setup_intents", {"confirm": "true"})
    assert missing.status_code == 400
    assert missing.json()["error"]["code"] == "setup_intent_unexpected_state"
    unknown_pm = api.post("/v1/setup_intents", {"payment_method": "pm_nope"})
    assert unknown_pm.status_code == 404
    assert api.get("/v1/setup_intents").json()["data"] == []
    # a method saved to one customer cannot be set up for another
    jo, kim = client.v1.customers.create(), client.v1.customers.create()
    jos = client.v1.payment_methods.attach("pm_card_visa", params={"customer": jo.id})
    with pytest.raises(stripe.InvalidRequestError) as foreign:
        client.v1.setup_intents.create(params={"customer": kim.id, "payment_method": jos.id})
    assert foreign.value.code == "payment_method_unexpected_state"
    with pytest.raises(stripe.InvalidRequestError) as no_customer:
        client.v1.setup_intents.create(params={"payment_method": jos.id})
    assert no_customer.value.code == "payment_method_unexpected_state"
    si = client.v1.setup_intents.create(params={"customer": kim.id})
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.setup_intents.confirm(si.id, params={"payment_method": jos.id})
    assert client.v1.setup_intents.retrieve(si.id).status == "requires_payment_method"
    upi = api.post(f"/v1/setup_intents/{si.id}/confirm", {"payment_method": "pm_upi_success"})
    assert upi.status_code == 400 and upi.json()["error"]["param"] == "payment_method"
    # a customer deleted while their SetupIntent waited has nothing saved for them
    gone = client.v1.customers.create()
    waiting = client.v1.setup_intents.create(
        params={"customer": gone.id, "payment_method": "pm_card_authenticationRequired"}
    )
    client.v1.setup_intents.confirm(waiting.id)
    client.v1.customers.delete(gone.id)
    late = api.post(f"/v1/sandbox/setup_intents/{waiting.id}/authenticate")
    assert late.status_code == 400 and late.json()["error"]["param"] == "customer"
    assert client.v1.setup_intents.retrieve(waiting.id).status == "requires_action"
    no_intent = api.get("/v1/setup_attempts")
    assert no_intent.json()["error"]["code"] == "parameter_missing"
    missing_si = api.get("/v1/setup_intents/seti_doesnotexist")
    assert missing_si.status_code == 404
    assert missing_si.json()["error"]["message"] == "No such setupintent: 'seti_doesnotexist'"


def test_concurrent_confirms_save_the_card_once(
    client: stripe.StripeClient, api: Api, api_url: str, merchant: dict
) -> None:
    # Given one SetupIntent, confirmed by two clients at once (no SDK retries)
    customer = client.v1.customers.create()
    si = client.v1.setup_intents.create(
        params={"customer": customer.id, "payment_method": "pm_card_visa"}
    )
    clients = [Api(api_url, merchant["secret_key"]) for _ in range(2)]
    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(lambda c: c.post(f"/v1/setup_intents/{si.id}/confirm"), clients))
    # Then exactly one confirm won; the other lost the race (409) or came after it (400)
    statuses = sorted(a.status_code for a in answers)
    assert statuses in ([200, 400], [200, 409]), [a.text for a in answers]
    assert len(client.v1.setup_attempts.list(params={"setup_intent": si.id}).data) == 1
    assert len(_saved(client, customer.id)) == 1
    assert _ids(api, "setup_intent.succeeded") == [si.id]


def test_automatic_payment_methods(client: stripe.StripeClient) -> None:
    si = client.v1.setup_intents.create(
        params={"automatic_payment_methods": {"enabled": True}, "payment_method": "pm_upi_success"}
    )
    assert si.automatic_payment_methods.enabled is True
    assert si.payment_method_types == ["card", "upi"]
    _shaped(si)
    assert client.v1.setup_intents.confirm(si.id).status == "succeeded"
    chosen = client.v1.setup_intents.create(params={"allowed_payment_method_types": ["upi"]})
    assert chosen.payment_method_types == ["upi"] and chosen.allowed_payment_method_types == ["upi"]


def test_tenants_are_isolated(client: stripe.StripeClient, api: Api, api_url: str) -> None:
    customer = client.v1.customers.create()
    mine = client.v1.setup_intents.create(
        params={"customer": customer.id, "payment_method": "pm_card_authenticationRequired"}
    )
    other = Api(api_url, new_merchant(api_url)["secret_key"])
    for response in (
        other.get(f"/v1/setup_intents/{mine.id}"),
        other.post(f"/v1/setup_intents/{mine.id}", {"description": "x"}),
        other.post(f"/v1/setup_intents/{mine.id}/confirm"),
        other.post(f"/v1/setup_intents/{mine.id}/cancel"),
        other.post(f"/v1/sandbox/setup_intents/{mine.id}/authenticate"),
        other.get("/v1/setup_attempts", params={"setup_intent": mine.id}),
        other.post("/v1/setup_intents", {"customer": customer.id}),
    ):
        assert response.status_code == 404, response.text
    assert other.get("/v1/setup_intents", params={"customer": customer.id}).json()["data"] == []
    assert client.v1.setup_intents.retrieve(mine.id).status == "requires_confirmation"


def test_webhooks_deliver_the_setup_and_the_saved_method(
    client: stripe.StripeClient, hooks: Hooks
) -> None:
    receiver = hooks.receiver()
    endpoint = hooks.endpoint(receiver)
    customer = client.v1.customers.create()
    si = client.v1.setup_intents.create(
        params={"customer": customer.id, "payment_method": "pm_card_visa", "confirm": True}
    )
    wanted = {"setup_intent.created", "setup_intent.succeeded", "payment_method.attached"}
    requests = receiver.wait_for(lambda rs: wanted <= {r.event["type"] for r in rs})
    events = {r.event["type"]: verify_both(r, endpoint["secret"]) for r in requests}
    assert events["setup_intent.created"]["data"]["object"]["id"] == si.id
    assert events["setup_intent.succeeded"]["data"]["object"]["id"] == si.id
    assert events["payment_method.attached"]["data"]["object"]["id"] == si.payment_method
    assert events["payment_method.attached"]["data"]["object"]["customer"] == customer.id
