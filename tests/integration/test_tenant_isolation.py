"""A merchant never sees or changes another merchant's objects."""

from __future__ import annotations

import pytest

from tests.conftest import Api, new_merchant


@pytest.fixture
def other(api_url: str) -> Api:
    return Api(api_url, new_merchant(api_url)["secret_key"])


def test_every_endpoint_answers_404_for_another_merchants_payment_intent(api: Api, other: Api):
    pi = api.post(
        "/v1/payment_intents",
        {
            "amount": 100,
            "currency": "usd",
            "capture_method": "manual",
            "payment_method": "pm_card_visa",
        },
    ).json()
    path = f"/v1/payment_intents/{pi['id']}"
    attempts = [
        other.get(path),
        other.post(path, {"metadata[x]": "stolen"}),
        other.post(f"{path}/confirm"),
        other.post(f"{path}/capture"),
        other.post(f"{path}/cancel"),
        other.post(f"/v1/sandbox/payment_intents/{pi['id']}/authenticate"),
    ]
    unknown = other.get("/v1/payment_intents/pi_unknown000000000000000000")
    for response in attempts:
        assert response.status_code == 404, response.text
        assert response.json()["error"]["code"] == "resource_missing"
        assert response.json()["error"]["message"].replace(pi["id"], "X") == (
            unknown.json()["error"]["message"].replace("pi_unknown000000000000000000", "X")
        )
    assert other.get("/v1/payment_intents").json()["data"] == []
    assert api.get(path).json() == pi


def test_cursors_from_another_merchant_reveal_nothing(api: Api, other: Api):
    theirs = [
        other.post("/v1/payment_intents", {"amount": 1, "currency": "usd"}).json()["id"]
        for _ in range(2)
    ]
    api.post("/v1/payment_intents", {"amount": 1, "currency": "usd"})
    page = api.get("/v1/payment_intents", params={"starting_after": theirs[-1]}).json()
    assert all(pi["id"] not in theirs for pi in page["data"])
