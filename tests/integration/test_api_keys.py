"""Rolling, revoking and deleting: keys stop working when they should, data stays readable."""

from __future__ import annotations

import time

import requests

from chalicelib.container import services
from chalicelib.dal.merchants import MerchantStore
from chalicelib.services.merchants import MerchantService
from tests.conftest import ADMIN_KEY, Api

ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}


def admin(method: str, api_url: str, path: str, **kwargs: object) -> requests.Response:
    return requests.request(method, api_url + path, headers=ADMIN, timeout=10, **kwargs)  # type: ignore[arg-type]


def only_key(api_url: str, merchant_id: str, kind: str = "secret") -> dict:
    """The merchant's one key of `kind` (each merchant starts with a secret and a publishable)."""
    keys = admin("GET", api_url, f"/v1/sandbox/merchants/{merchant_id}").json()["api_keys"]["data"]
    (key,) = [k for k in keys if k["kind"] == kind]
    return key  # type: ignore[no-any-return]


def status_with(api_url: str, key: str) -> int:
    return requests.get(f"{api_url}/v1/payment_intents", auth=(key, ""), timeout=10).status_code


def test_a_roll_without_expiry_replaces_the_key_at_once(api: Api, api_url: str, merchant: dict):
    intent = api.post("/v1/payment_intents", {"amount": 100, "currency": "usd"}).json()["id"]
    key = only_key(api_url, merchant["id"])
    assert key["kind"] == "secret" and key["expires_at"] is None and "secret" not in key
    rolled = admin(
        "POST", api_url, f"/v1/sandbox/merchants/{merchant['id']}/api_keys/{key['id']}/roll"
    )
    assert rolled.status_code == 200, rolled.text
    new = rolled.json()
    assert new["secret"].startswith("sk_test_") and new["kind"] == "secret"
    assert new["previous"]["id"] == key["id"] and new["previous"]["expires_at"] <= time.time()
    old_answer = requests.get(f"{api_url}/v1/payment_intents", auth=(merchant["secret_key"], ""))
    assert old_answer.status_code == 401
    assert old_answer.json()["error"]["code"] == "api_key_expired"
    # The new key is the same merchant: its objects are there.
    fetched = requests.get(f"{api_url}/v1/payment_intents/{intent}", auth=(new["secret"], ""))
    assert fetched.status_code == 200


def test_a_roll_with_expiry_keeps_both_keys_until_then(api_url: str, merchant: dict):
    key = only_key(api_url, merchant["id"])
    path = f"/v1/sandbox/merchants/{merchant['id']}/api_keys/{key['id']}/roll"
    new = admin("POST", api_url, path, data={"expires_in": 3600}).json()
    assert status_with(api_url, merchant["secret_key"]) == 200
    assert status_with(api_url, new["secret"]) == 200
    keys = admin("GET", api_url, f"/v1/sandbox/merchants/{merchant['id']}").json()["api_keys"]
    by_id = {k["id"]: k for k in keys["data"]}
    assert by_id[key["id"]]["expires_at"] == new["previous"]["expires_at"]
    assert abs(new["previous"]["expires_at"] - (time.time() + 3600)) < 60
    assert by_id[new["id"]]["expires_at"] is None
    # A second roll of the old key cannot make it live longer.
    again = admin("POST", api_url, path, data={"expires_in": 7200}).json()
    assert again["previous"]["expires_at"] == new["previous"]["expires_at"]


def test_expiries_out_of_range_are_400_and_change_nothing(api_url: str, merchant: dict):
    key = only_key(api_url, merchant["id"])
    path = f"/v1/sandbox/merchants/{merchant['id']}/api_keys/{key['id']}/roll"
    for data in (
        {"expires_in": -1},
        {"expires_in": 8 * 86_400},
        {"expires_at": int(time.time()) - 10},
        {"expires_in": 10, "expires_at": int(time.time()) + 10},
    ):
        answer = admin("POST", api_url, path, data=data)
        assert answer.status_code == 400, (data, answer.text)
    assert (
        len(
            admin("GET", api_url, f"/v1/sandbox/merchants/{merchant['id']}").json()["api_keys"][
                "data"
            ]
        )
        == 2
    )
    assert status_with(api_url, merchant["secret_key"]) == 200


def test_revoking_a_key_stops_it_now(api_url: str, merchant: dict):
    key = only_key(api_url, merchant["id"])
    path = f"/v1/sandbox/merchants/{merchant['id']}/api_keys/{key['id']}/revoke"
    assert admin("POST", api_url, path).status_code == 200
    assert status_with(api_url, merchant["secret_key"]) == 401
    again = admin("POST", api_url, path)
    assert again.status_code == 400 and again.json()["error"]["code"] == "api_key_expired"
    unknown = admin(
        "POST", api_url, f"/v1/sandbox/merchants/{merchant['id']}/api_keys/key_x/revoke"
    )
    assert unknown.status_code == 404


def test_keys_are_admin_only(api_url: str, merchant: dict):
    key = only_key(api_url, merchant["id"])
    path = f"/v1/sandbox/merchants/{merchant['id']}/api_keys/{key['id']}/roll"
    answer = requests.post(api_url + path, auth=(merchant["secret_key"], ""), timeout=10)
    assert answer.status_code == 403
    assert status_with(api_url, merchant["secret_key"]) == 200


def test_a_deleted_merchant_cannot_call_but_its_data_stays_readable_to_the_admin(
    api: Api, api_url: str, merchant: dict
):
    intent = api.post("/v1/payment_intents", {"amount": 100, "currency": "usd"}).json()["id"]
    deleted = admin("DELETE", api_url, f"/v1/sandbox/merchants/{merchant['id']}")
    assert deleted.status_code == 200 and deleted.json()["deleted"] is True
    assert status_with(api_url, merchant["secret_key"]) == 401
    record = admin("GET", api_url, f"/v1/sandbox/merchants/{merchant['id']}").json()
    assert record["deleted"] is True
    as_merchant = {**ADMIN, "Stripe-Account": merchant["id"]}
    listed = requests.get(f"{api_url}/v1/payment_intents", headers=as_merchant, timeout=10)
    assert listed.status_code == 200 and [pi["id"] for pi in listed.json()["data"]] == [intent]
    write = requests.post(
        f"{api_url}/v1/payment_intents",
        headers=as_merchant,
        data={"amount": 1, "currency": "usd"},
        timeout=10,
    )
    assert write.status_code == 403
    # Stripe-Account is the admin's: a merchant key cannot read another merchant with it.
    other = requests.get(
        f"{api_url}/v1/payment_intents",
        headers={"Authorization": f"Bearer {api.session.auth[0]}", "Stripe-Account": "acct_x"},  # type: ignore[index]
        timeout=10,
    )
    assert other.status_code == 403


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_revocation_reaches_other_warm_instances_within_the_cache_time(merchant: dict):
    # Given two warm instances over the same table, each with its own cache of 5 s
    store = MerchantStore(services().dynamodb, services().settings.payments_table)
    clock = Clock()
    one, two = (
        MerchantService(store, admin_key=ADMIN_KEY, cache_seconds=5, clock=clock) for _ in range(2)
    )
    assert two.authenticate(merchant["secret_key"]) == merchant["id"]
    # When the first revokes the key
    (key,) = [k for k in store.keys(merchant["id"]) if k["kind"] == "secret"]
    one.revoke_key(merchant["id"], key["id"])
    # Then the first refuses it at once; the second until its entry ends, and no longer
    for service, at, works in ((one, 0.0, False), (two, 4.9, True), (two, 5.1, False)):
        clock.now = at
        try:
            service.authenticate(merchant["secret_key"])
            assert works, at
        except Exception as error:
            assert not works and getattr(error, "http_status", None) == 401, (at, error)
