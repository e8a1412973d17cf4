"""Races: one key from 20 threads, one capture from 20 threads."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from chalicelib.container import services
from tests.conftest import Api

THREADS = 20


def test_twenty_creates_with_one_key_make_one_payment_intent(api: Api):
    params = {
        "amount": 1234,
        "currency": "usd",
        "payment_method": "pm_card_visa",
        "confirm": "true",
    }

    def send(_: int):
        local = Api(api.base, api.session.auth[0])
        return local.post("/v1/payment_intents", params, headers={"Idempotency-Key": "race"})

    with ThreadPoolExecutor(THREADS) as pool:
        responses = list(pool.map(send, range(THREADS)))
    statuses = sorted({r.status_code for r in responses})
    assert set(statuses) <= {200, 409}, statuses
    bodies = {r.text for r in responses if r.status_code == 200}
    assert len(bodies) == 1, "every 200 carries the identical PaymentIntent"
    listed = api.get("/v1/payment_intents").json()["data"]
    assert len(listed) == 1
    charges = [
        r
        for r in services().simulator_ledger.all_records()
        if r.get("payment_intent") == listed[0]["id"]
    ]
    assert len(charges) == 1


def test_twenty_captures_capture_once(api: Api):
    pi = api.post(
        "/v1/payment_intents",
        {
            "amount": 5000,
            "currency": "usd",
            "capture_method": "manual",
            "payment_method": "pm_card_visa",
            "confirm": "true",
        },
    ).json()

    def capture(_: int):
        local = Api(api.base, api.session.auth[0])
        return local.post(f"/v1/payment_intents/{pi['id']}/capture")

    with ThreadPoolExecutor(THREADS) as pool:
        responses = list(pool.map(capture, range(THREADS)))
    codes = [r.status_code for r in responses]
    assert codes.count(200) == 1, codes
    assert set(codes) <= {200, 400, 409}, codes
    for response in responses:
        if response.status_code == 400:
            assert response.json()["error"]["code"] == "payment_intent_unexpected_state"
    captures = [
        r
        for r in services().simulator_ledger.all_records()
        if r.get("operation") == "capture" and r["pk"].endswith(f"{pi['id']}:capture")
    ]
    assert len(captures) == 1
    final = api.get(f"/v1/payment_intents/{pi['id']}").json()
    assert final["status"] == "succeeded" and final["amount_received"] == 5000
