"""What payflow.js's frames call: card details with a publishable key, the served assets, and
the 3-D Secure page's authenticate call with the client_secret."""

from __future__ import annotations

import requests

from tests.conftest import Api

CARD = {
    "type": "card",
    "card[number]": "4242424242424242",
    "card[exp_month]": "12",
    "card[exp_year]": "2034",
    "card[cvc]": "123",
}


def test_a_browser_makes_a_payment_method_from_typed_details(
    api: Api, api_url: str, merchant: dict
) -> None:
    browser = Api(api_url, merchant["publishable_key"])
    # When the frame sends a typed test card with the publishable key
    made = browser.post("/v1/payment_methods", data={**CARD, "card[exp_month]": "7"})
    # Then it is the test card's PaymentMethod, with the typed expiry and nothing secret
    assert made.status_code == 200, made.text
    pm = made.json()
    assert pm["card"]["brand"] == "visa" and pm["card"]["last4"] == "4242"
    assert (pm["card"]["exp_month"], pm["card"]["exp_year"]) == (7, 2034)
    assert "4242424242424242" not in made.text and "123" not in str(pm["card"])
    seen = api.get(f"/v1/payment_methods/{pm['id']}").json()
    assert seen["card"]["exp_month"] == 7
    # and it pays like pm_card_visa
    pi = api.post(
        "/v1/payment_intents",
        data={"amount": 700, "currency": "usd", "payment_method": pm["id"], "confirm": "true"},
    ).json()
    assert pi["status"] == "succeeded"


def test_typed_test_cards_behave_as_their_pm_card_counterparts(
    api: Api, api_url: str, merchant: dict
) -> None:
    browser = Api(api_url, merchant["publishable_key"])
    for number, status, code in [
        ("4000000000000002", "requires_payment_method", "card_declined"),
        ("4000000000009995", "requires_payment_method", "card_declined"),
        ("4000002500003155", "requires_action", None),
    ]:
        pm = browser.post("/v1/payment_methods", data={**CARD, "card[number]": number}).json()
        pi = api.post("/v1/payment_intents", data={"amount": 500, "currency": "usd"}).json()
        confirmed = browser.post(
            f"/v1/payment_intents/{pi['id']}/confirm",
            data={"client_secret": pi["client_secret"], "payment_method": pm["id"]},
        )
        after = api.get(f"/v1/payment_intents/{pi['id']}").json()
        assert after["status"] == status, (number, confirmed.text)
        if code:
            assert confirmed.status_code == 402
            assert after["last_payment_error"]["code"] == code
        else:
            assert after["next_action"]["type"] == "use_stripe_sdk"


def test_bad_typed_details_are_card_errors_that_change_nothing(
    api: Api, api_url: str, merchant: dict
) -> None:
    browser = Api(api_url, merchant["publishable_key"])
    for change, code, param in [
        ({"card[number]": "4242424242424241"}, "incorrect_number", "card[number]"),
        ({"card[number]": "4242"}, "invalid_number", "card[number]"),
        ({"card[exp_month]": "0"}, "invalid_expiry_month", "card[exp_month]"),
        ({"card[exp_year]": "2020"}, "invalid_expiry_year", "card[exp_year]"),
        ({"card[cvc]": "12a"}, "invalid_cvc", "card[cvc]"),
        ({"card[number]": "4111111111111111"}, "card_declined", "card[number]"),
    ]:
        refused = browser.post("/v1/payment_methods", data={**CARD, **change})
        assert refused.status_code == 402, refused.text
        error = refused.json()["error"]
        assert (error["type"], error["code"], error["param"]) == ("card_error", code, param)
    both = browser.post("/v1/payment_methods", data={**CARD, "card[token]": "tok_visa"})
    assert both.status_code == 400
    assert api.get("/v1/payment_methods").json()["data"] == []


def test_a_secret_key_may_not_send_card_numbers(api: Api) -> None:
    refused = api.post("/v1/payment_methods", data=CARD)
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "unsafe_raw_card_data"
    assert api.get("/v1/payment_methods").json()["data"] == []


def test_the_challenge_page_authenticates_with_the_client_secret(
    api: Api, api_url: str, merchant: dict
) -> None:
    pi = api.post(
        "/v1/payment_intents",
        data={
            "amount": 1500,
            "currency": "eur",
            "payment_method": "pm_card_threeDSecure2Required",
            "confirm": "true",
        },
    ).json()
    assert pi["status"] == "requires_action"
    path = f"/v1/sandbox/payment_intents/{pi['id']}/authenticate"
    # The page itself: HTML that may be framed, with no inline script
    page = requests.get(api_url + path, params={"client_secret": pi["client_secret"]}, timeout=10)
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    assert "frame-ancestors *" in page.headers["Content-Security-Policy"]
    assert page.headers["Referrer-Policy"] == "no-referrer"
    assert "challenge.js" in page.text
    browser = Api(api_url, merchant["publishable_key"])
    # Without the client_secret, or with another's, the publishable key does nothing
    assert browser.post(path, data={"outcome": "succeeded"}).status_code == 404
    wrong = browser.post(path, data={"outcome": "succeeded", "client_secret": "pi_1_secret_2"})
    assert wrong.status_code == 404
    assert api.get(f"/v1/payment_intents/{pi['id']}").json()["status"] == "requires_action"
    # With it, the customer's answer goes through as the secret key's would
    done = browser.post(path, data={"outcome": "succeeded", "client_secret": pi["client_secret"]})
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "succeeded"


def test_payflow_js_and_its_frames_are_served(api_url: str) -> None:
    script = requests.get(f"{api_url}/js/v1/payflow.js", timeout=10)
    assert script.status_code == 200
    assert script.headers["Content-Type"].startswith("text/javascript")
    assert "PayFlow" in script.text
    frame = requests.get(f"{api_url}/js/v1/elements.html", timeout=10)
    assert frame.status_code == 200 and 'autocomplete="cc-number"' in frame.text
    assert "connect-src 'self'" in frame.headers["Content-Security-Policy"]
    for missing in ["nothing.js", "challenge.html", "..%2Fapp.py", "payflow.JS"]:
        response = requests.get(f"{api_url}/js/v1/{missing}", timeout=10)
        assert response.status_code == 404, missing
        assert response.json()["error"]["type"] == "invalid_request_error"
