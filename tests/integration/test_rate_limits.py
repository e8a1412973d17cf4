"""Rate limits per key with Stripe's answer, shared through DynamoDB, and nothing else harmed."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests
import stripe

from chalicelib.container import services
from chalicelib.dal.ratelimit import RateLimitStore
from chalicelib.services.ratelimits import RateLimiter
from tests.conftest import ADMIN_KEY, Api
from tests.integration.table_writes import TableWrites

ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}


def set_limits(api_url: str, merchant_id: str, read: int, write: int) -> None:
    answer = requests.post(
        f"{api_url}/v1/sandbox/merchants/{merchant_id}",
        headers=ADMIN,
        data={"rate_limits[read]": read, "rate_limits[write]": write},
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["rate_limits"] == {"read": read, "write": write}


def wait_for_a_fresh_second() -> None:
    # A burst that straddles two seconds would get two budgets.
    time.sleep(1.02 - (time.time() % 1))


def inserted(writes: TableWrites, merchant_id: str) -> int:
    """Items of the merchant's that the payments table gained since the last look."""
    return sum(1 for r in writes.of_merchant(merchant_id) if r["eventName"] == "INSERT")


def test_a_burst_past_the_limit_is_429_like_stripe_and_harms_nothing_else(
    api: Api, api_url: str, merchant: dict, sandbox: Any
):
    # Given a merchant limited to 5 writes a second, and another merchant without limits
    other = requests.post(
        f"{api_url}/v1/sandbox/merchants", headers=ADMIN, data={"name": "bystander"}, timeout=10
    ).json()
    writes = TableWrites(sandbox)
    assert api.post("/v1/payment_intents", {"amount": 99, "currency": "usd"}).status_code == 200
    per_create = inserted(writes, merchant["id"])
    assert per_create > 0
    set_limits(api_url, merchant["id"], read=50, write=5)
    inserted(writes, merchant["id"])  # the limits' own write
    wait_for_a_fresh_second()
    started = time.time()
    # When it sends 20 creates at once
    with ThreadPoolExecutor(10) as pool:
        answers = list(
            pool.map(
                lambda i: api.post(
                    "/v1/payment_intents",
                    {"amount": 100 + i, "currency": "usd"},
                    headers={"Idempotency-Key": f"burst-{merchant['id']}-{i}"},
                ),
                range(20),
            )
        )
    seconds = int(time.time()) - int(started) + 1
    statuses = [a.status_code for a in answers]
    # Then at most 5 a second got through, the rest are Stripe's 429
    assert set(statuses) <= {200, 429} and 429 in statuses, statuses
    assert 1 <= statuses.count(200) <= 5 * seconds, (statuses, seconds)
    refused = next(a for a in answers if a.status_code == 429)
    error = refused.json()["error"]
    assert (error["type"], error["code"]) == ("invalid_request_error", "rate_limit")
    assert refused.headers["Stripe-Should-Retry"] == "true"
    # Nothing of a refused request was written, and its Idempotency-Key was not used up
    created = {a.json()["id"] for a in answers if a.status_code == 200}
    page = api.get("/v1/payment_intents", params={"limit": 100}).json()["data"]
    assert {pi["id"] for pi in page if pi["amount"] != 99} == created
    assert inserted(writes, merchant["id"]) == per_create * len(created)
    index = statuses.index(429)
    wait_for_a_fresh_second()
    retried = api.post(
        "/v1/payment_intents",
        {"amount": 100 + index, "currency": "usd"},
        headers={"Idempotency-Key": f"burst-{merchant['id']}-{index}"},
    )
    assert retried.status_code == 200 and "Idempotent-Replayed" not in retried.headers
    # Reads have their own budget; the other merchant was never limited
    assert api.get("/v1/payment_intents").status_code == 200
    with ThreadPoolExecutor(10) as pool:
        theirs = list(
            pool.map(
                lambda i: (
                    requests.post(
                        f"{api_url}/v1/payment_intents",
                        auth=(other["secret_key"], ""),
                        data={"amount": 100, "currency": "usd"},
                        timeout=30,
                    ).status_code
                ),
                range(20),
            )
        )
    assert theirs == [200] * 20


def test_stripe_python_raises_rate_limit_error(api_url: str, merchant: dict):
    set_limits(api_url, merchant["id"], read=1, write=1)
    client = stripe.StripeClient(
        merchant["secret_key"], base_addresses={"api": api_url}, max_network_retries=0
    )
    wait_for_a_fresh_second()
    with pytest.raises(stripe.RateLimitError) as raised:
        for _ in range(3):
            client.payment_intents.list()
    assert raised.value.http_status == 429
    assert raised.value.json_body["error"]["code"] == "rate_limit"  # type: ignore[index]


def test_stripe_python_retries_a_429_when_it_has_retries(api_url: str, merchant: dict):
    set_limits(api_url, merchant["id"], read=1, write=1)
    client = stripe.StripeClient(
        merchant["secret_key"], base_addresses={"api": api_url}, max_network_retries=3
    )
    wait_for_a_fresh_second()
    # The second call is refused at first, retried with backoff, served in a later second.
    for _ in range(2):
        assert client.payment_intents.list().object == "list"


def test_limits_can_go_back_to_the_defaults(api_url: str, merchant: dict):
    set_limits(api_url, merchant["id"], read=1, write=1)
    answer = requests.post(
        f"{api_url}/v1/sandbox/merchants/{merchant['id']}",
        headers=ADMIN,
        data={"rate_limits": ""},
        timeout=10,
    )
    assert answer.status_code == 200 and answer.json()["rate_limits"] is None
    for _ in range(5):
        assert (
            requests.get(
                f"{api_url}/v1/payment_intents", auth=(merchant["secret_key"], ""), timeout=10
            ).status_code
            == 200
        )


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_instances_share_one_budget_and_lease_it_in_few_writes():
    # Given three instances over the one shared table, a limit of 100 a second, leases of 10
    store = RateLimitStore(services().dynamodb, services().settings.rate_limit_table or "")
    clock = Clock(float(int(time.time()) + 1000))
    instances = [RateLimiter(store, lease=0.1, clock=clock) for _ in range(3)]
    bucket = f"test-{time.time_ns()}"
    served = 0
    # When they take 150 requests between them in one second
    for i in range(150):
        try:
            instances[i % 3].check(bucket, "write", 100)
            served += 1
        except Exception as error:
            assert getattr(error, "http_status", None) == 429
    # Then exactly the limit was served, counted once in the shared counter
    assert served <= 100 and served >= 100 - 3 * 10
    assert store.used(f"{bucket}:write", int(clock.now)) == served
    trips = sum(instance.stats.round_trips for instance in instances)
    checks = sum(instance.stats.checks for instance in instances)
    assert trips / checks < 0.25, (trips, checks)
    # And the next second starts a new budget
    clock.now += 1
    instances[0].check(bucket, "write", 100)
