"""Publishable keys: with an intent's client_secret, exactly what Stripe.js may do."""

from __future__ import annotations

import stripe

from tests.conftest import Api


def _browser(api_url: str, merchant: dict) -> stripe.StripeClient:
    return stripe.StripeClient(merchant["publishable_key"], base_addresses={"api": api_url})


def test_a_browser_confirms_its_payment_with_the_client_secret(
    api: Api, api_url: str, merchant: dict
) -> None:
    # Given a PaymentIntent the server made, and a browser holding only the publishable key
    assert merchant["publishable_key"].startswith("pk_test_")
    pi = api.post("/v1/payment_intents", data={"amount": 1200, "currency": "usd"}).json()
    browser = Api(api_url, merchant["publishable_key"])
    # When the browser makes a card PaymentMethod and confirms with the client_secret
    pm = browser.post("/v1/payment_methods", data={"type": "card", "card[token]": "tok_visa"})
    assert pm.status_code == 200, pm.text
    seen = browser.get(
        f"/v1/payment_intents/{pi['id']}", params={"client_secret": pi["client_secret"]}
    )
    assert seen.status_code == 200 and seen.json()["status"] == "requires_payment_method"
    confirmed = browser.post(
        f"/v1/payment_intents/{pi['id']}/confirm",
        data={"client_secret": pi["client_secret"], "payment_method": pm.json()["id"]},
    )
    # Then the payment went through, as the server sees it too
    assert confirmed.status_code == 200, confirmed.text
    assert confirmed.json()["status"] == "succeeded"
    assert api.get(f"/v1/payment_intents/{pi['id']}").json()["amount_received"] == 1200


def test_a_publishable_key_can_do_nothing_else(api: Api, api_url: str, merchant: dict) -> None:
    pi = api.post("/v1/payment_intents", data={"amount": 1200, "currency": "usd"}).json()
    browser = Api(api_url, merchant["publishable_key"])
    # Without the client_secret, or with another one, the intent reads as unknown
    assert browser.get(f"/v1/payment_intents/{pi['id']}").status_code == 404
    wrong = browser.get(
        f"/v1/payment_intents/{pi['id']}", params={"client_secret": "pi_x_secret_y"}
    )
    assert wrong.status_code == 404 and wrong.json()["error"]["param"] == "client_secret"
    confirm = browser.post(
        f"/v1/payment_intents/{pi['id']}/confirm", data={"payment_method": "pm_card_visa"}
    )
    assert confirm.status_code == 404
    # and every server-side call is refused as Stripe refuses it
    for method, path, data in [
        ("get", "/v1/payment_intents", None),
        ("post", "/v1/payment_intents", {"amount": "100", "currency": "usd"}),
        ("post", f"/v1/payment_intents/{pi['id']}/cancel", {}),
        ("post", "/v1/customers", {}),
        ("get", "/v1/charges", None),
        ("post", "/v1/refunds", {"payment_intent": pi["id"]}),
    ]:
        response = getattr(browser, method)(path, **({"data": data} if data is not None else {}))
        assert response.status_code == 403, (path, response.text)
        assert "publishable API key" in response.json()["error"]["message"]
    # and nothing changed
    assert api.get(f"/v1/payment_intents/{pi['id']}").json()["status"] == "requires_payment_method"


def test_setup_intents_from_the_browser(api: Api, api_url: str, merchant: dict) -> None:
    customer = api.post("/v1/customers", data={"email": "b@example.com"}).json()
    si = api.post("/v1/setup_intents", data={"customer": customer["id"]}).json()
    browser = _browser(api_url, merchant)
    found = browser.v1.setup_intents.retrieve(
        si["id"], params={"client_secret": si["client_secret"]}
    )
    assert found.status == "requires_payment_method"
    done = browser.v1.setup_intents.confirm(
        si["id"], params={"client_secret": si["client_secret"], "payment_method": "pm_card_visa"}
    )
    assert done.status == "succeeded"
    saved = api.get(f"/v1/customers/{customer['id']}/payment_methods").json()["data"]
    assert [m["id"] for m in saved] == [done.payment_method]


def test_a_secret_key_may_send_the_client_secret_too(api: Api) -> None:
    pi = api.post("/v1/payment_intents", data={"amount": 900, "currency": "usd"}).json()
    ok = api.get(f"/v1/payment_intents/{pi['id']}", params={"client_secret": pi["client_secret"]})
    assert ok.status_code == 200
    for wrong in ("nope", "\u0663\u0660"):
        bad = api.get(f"/v1/payment_intents/{pi['id']}", params={"client_secret": wrong})
        assert bad.status_code == 404, bad.text
