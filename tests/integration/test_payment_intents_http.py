"""PaymentIntents through the real HTTP path of the embedded sandbox."""

from __future__ import annotations

import base64

import requests

from tests.conftest import Api


def create(api: Api, **params: object) -> requests.Response:
    data = {"amount": 2000, "currency": "usd", **params}
    return api.post("/v1/payment_intents", data=data)


def test_create_confirm_and_retrieve(api: Api):
    created = create(api, description="order 42", **{"metadata[order_id]": "42"})
    assert created.status_code == 200, created.text
    pi = created.json()
    assert pi["object"] == "payment_intent" and pi["id"].startswith("pi_")
    assert pi["status"] == "requires_payment_method"
    assert pi["metadata"] == {"order_id": "42"}
    assert created.headers["Request-Id"].startswith("req_")

    confirmed = api.post(
        f"/v1/payment_intents/{pi['id']}/confirm", {"payment_method": "pm_card_visa"}
    )
    assert confirmed.status_code == 200, confirmed.text
    assert confirmed.json()["status"] == "succeeded"
    assert confirmed.json()["amount_received"] == 2000

    fetched = api.get(f"/v1/payment_intents/{pi['id']}").json()
    assert fetched == confirmed.json()


def test_json_bodies_work_like_forms(api: Api):
    response = api.session.post(
        api.base + "/v1/payment_intents",
        json={
            "amount": 1500,
            "currency": "eur",
            "metadata": {"a": "b"},
            "confirm": True,
            "payment_method": "pm_card_mastercard",
        },
        timeout=10,
    )
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "succeeded"


def test_manual_capture_partial(api: Api):
    pi = create(api, capture_method="manual", payment_method="pm_card_visa", confirm="true").json()
    assert pi["status"] == "requires_capture" and pi["amount_capturable"] == 2000
    captured = api.post(f"/v1/payment_intents/{pi['id']}/capture", {"amount_to_capture": 1200})
    assert captured.status_code == 200, captured.text
    body = captured.json()
    assert (body["status"], body["amount_received"], body["amount_capturable"]) == (
        "succeeded",
        1200,
        0,
    )

    again = api.post(f"/v1/payment_intents/{pi['id']}/capture")
    assert again.status_code == 400
    assert again.json()["error"]["code"] == "payment_intent_unexpected_state"


def test_cancel_releases_an_authorization(api: Api):
    pi = create(api, capture_method="manual", payment_method="pm_card_visa", confirm="true").json()
    canceled = api.post(
        f"/v1/payment_intents/{pi['id']}/cancel", {"cancellation_reason": "requested_by_customer"}
    )
    assert canceled.status_code == 200, canceled.text
    body = canceled.json()
    assert body["status"] == "canceled" and body["cancellation_reason"] == "requested_by_customer"
    assert body["amount_capturable"] == 0 and body["canceled_at"]


def test_illegal_transitions_are_400_and_change_nothing(api: Api):
    pi = create(api, payment_method="pm_card_visa", confirm="true").json()
    for action in ("confirm", "capture", "cancel"):
        response = api.post(f"/v1/payment_intents/{pi['id']}/{action}")
        assert response.status_code == 400, action
        error = response.json()["error"]
        assert error["code"] == "payment_intent_unexpected_state"
        assert error["type"] == "invalid_request_error"
    assert api.get(f"/v1/payment_intents/{pi['id']}").json() == pi


def test_declines_are_402_card_errors_recorded_on_the_payment_intent(api: Api):
    response = create(api, payment_method="pm_card_chargeDeclinedInsufficientFunds", confirm="true")
    assert response.status_code == 402
    error = response.json()["error"]
    assert error["type"] == "card_error" and error["code"] == "card_declined"
    assert error["decline_code"] == "insufficient_funds"
    pi = error["payment_intent"]
    assert pi["status"] == "requires_payment_method"
    assert pi["last_payment_error"]["decline_code"] == "insufficient_funds"
    assert api.get(f"/v1/payment_intents/{pi['id']}").json()["status"] == "requires_payment_method"

    retry = api.post(f"/v1/payment_intents/{pi['id']}/confirm", {"payment_method": "pm_card_visa"})
    assert retry.status_code == 200 and retry.json()["status"] == "succeeded"
    assert retry.json()["last_payment_error"] is None


def test_generic_decline(api: Api):
    response = create(api, payment_method="pm_card_chargeDeclined", confirm="true")
    assert response.status_code == 402
    assert response.json()["error"]["code"] == "card_declined"


def test_requires_action_then_authentication(api: Api):
    pi = create(api, payment_method="pm_card_authenticationRequired", confirm="true").json()
    assert pi["status"] == "requires_action" and pi["next_action"]["type"] == "use_stripe_sdk"
    done = api.post(
        f"/v1/sandbox/payment_intents/{pi['id']}/authenticate", {"outcome": "succeeded"}
    )
    assert done.status_code == 200 and done.json()["status"] == "succeeded"

    other = create(api, payment_method="pm_card_authenticationRequired", confirm="true").json()
    failed = api.post(
        f"/v1/sandbox/payment_intents/{other['id']}/authenticate", {"outcome": "failed"}
    )
    assert failed.status_code == 402
    assert failed.json()["error"]["code"] == "payment_intent_authentication_failure"


def test_update_before_confirmation(api: Api):
    pi = create(api).json()
    updated = api.post(
        f"/v1/payment_intents/{pi['id']}",
        {"amount": 3000, "payment_method": "pm_card_visa", "metadata[x]": "1"},
    )
    assert updated.status_code == 200, updated.text
    body = updated.json()
    assert (body["amount"], body["status"], body["metadata"]) == (
        3000,
        "requires_confirmation",
        {"x": "1"},
    )
    api.post(f"/v1/payment_intents/{pi['id']}/confirm")
    late = api.post(f"/v1/payment_intents/{pi['id']}", {"amount": 10})
    assert late.status_code == 400
    assert late.json()["error"]["code"] == "payment_intent_unexpected_state"


def test_list_pages_newest_first(api: Api):
    ids = [create(api, amount=100 + i).json()["id"] for i in range(5)]
    first = api.get("/v1/payment_intents", params={"limit": 2}).json()
    assert first["object"] == "list" and first["url"] == "/v1/payment_intents"
    assert [pi["id"] for pi in first["data"]] == ids[::-1][:2] and first["has_more"]
    second = api.get(
        "/v1/payment_intents", params={"limit": 2, "starting_after": first["data"][-1]["id"]}
    ).json()
    assert [pi["id"] for pi in second["data"]] == ids[::-1][2:4] and second["has_more"]
    last = api.get(
        "/v1/payment_intents", params={"limit": 2, "starting_after": second["data"][-1]["id"]}
    ).json()
    assert [pi["id"] for pi in last["data"]] == [ids[0]] and not last["has_more"]
    back = api.get("/v1/payment_intents", params={"limit": 2, "ending_before": ids[1]}).json()
    assert [pi["id"] for pi in back["data"]] == [ids[3], ids[2]] and back["has_more"]
    default = api.get("/v1/payment_intents").json()
    assert len(default["data"]) == 5 and not default["has_more"]


def test_validation_errors_are_400_naming_the_parameter_and_write_nothing(api: Api):
    cases = [
        ({"currency": "usd"}, "amount"),
        ({"amount": "-1", "currency": "usd"}, "amount"),
        ({"amount": "1.5", "currency": "usd"}, "amount"),
        ({"amount": "100000000", "currency": "usd"}, "amount"),
        ({"amount": "100", "currency": "zzz"}, "currency"),
        ({"amount": "100", "currency": "usd", "colour": "red"}, "colour"),
        ({"amount": "100", "currency": "usd", "metadata[" + "k" * 41 + "]": "v"}, "metadata"),
        ({"amount": "100", "currency": "usd", "payment_method": "pm_nope"}, "payment_method"),
    ]
    for data, param in cases:
        response = api.post("/v1/payment_intents", data)
        assert response.status_code in (400, 404), (data, response.text)
        assert response.json()["error"]["param"] == param, data
    assert api.get("/v1/payment_intents").json()["data"] == []


def test_malformed_json_and_wrong_content_type(api: Api):
    bad_json = api.session.post(
        api.base + "/v1/payment_intents",
        data=b"{oops",
        headers={"Content-Type": "application/json"},
        timeout=10,
    )
    assert bad_json.status_code == 400
    assert bad_json.json()["error"]["type"] == "invalid_request_error"
    xml = api.session.post(
        api.base + "/v1/payment_intents",
        data=b"<amount>1</amount>",
        headers={"Content-Type": "application/xml"},
        timeout=10,
    )
    assert xml.status_code == 400 and xml.json()["error"]["param"] == "Content-Type"


def test_unknown_ids_and_routes_are_stripe_shaped_404s(api: Api):
    missing = api.get("/v1/payment_intents/pi_doesnotexist")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "resource_missing"
    route = api.get("/v1/nothing_here")
    assert route.status_code == 404 and route.json()["error"]["type"] == "invalid_request_error"
    method = api.session.delete(api.base + "/v1/payment_intents", timeout=10)
    assert method.status_code == 404


def test_authentication(api_url: str, merchant: dict):
    key = merchant["secret_key"]
    assert requests.get(f"{api_url}/v1/payment_intents", timeout=10).status_code == 401
    wrong = requests.get(f"{api_url}/v1/payment_intents", auth=("sk_test_wrong", ""), timeout=10)
    assert wrong.status_code == 401
    assert "sk_test_wrong" not in wrong.text
    bearer = requests.get(
        f"{api_url}/v1/payment_intents", headers={"Authorization": f"Bearer {key}"}, timeout=10
    )
    assert bearer.status_code == 200
    basic = base64.b64encode(f"{key}:".encode()).decode()
    assert (
        requests.get(
            f"{api_url}/v1/payment_intents", headers={"Authorization": f"Basic {basic}"}, timeout=10
        ).status_code
        == 200
    )


def test_merchant_creation_needs_the_admin_key(api_url: str, merchant: dict):
    as_merchant = requests.post(
        f"{api_url}/v1/sandbox/merchants", auth=(merchant["secret_key"], ""), timeout=10
    )
    assert as_merchant.status_code == 403
    assert requests.post(f"{api_url}/v1/sandbox/merchants", timeout=10).status_code == 401
    assert merchant["id"].startswith("acct_") and merchant["secret_key"].startswith("sk_test_")


def test_demo_merchant_key_works(api_url: str):
    response = requests.get(
        f"{api_url}/v1/payment_intents", auth=("sk_test_demo_for_tests", ""), timeout=10
    )
    assert response.status_code == 200


def test_health(api_url: str):
    response = requests.get(f"{api_url}/health", timeout=10)
    assert response.status_code == 200 and response.json() == {"status": "ok"}
