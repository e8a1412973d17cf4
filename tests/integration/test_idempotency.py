"""Idempotency-Key with Stripe's semantics, on DynamoDB conditional writes."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
import requests

from chalicelib.container import services
from chalicelib.dal.dynamo import from_attrs
from tests.conftest import IDEMPOTENCY_LEASE_MS, Api

PARAMS = {"amount": 2000, "currency": "usd", "payment_method": "pm_card_visa", "confirm": "true"}


def create(api: Api, key: str, **overrides: object):
    return api.post(
        "/v1/payment_intents", {**PARAMS, **overrides}, headers={"Idempotency-Key": key}
    )


def payment_intents_of(api: Api) -> list[dict]:
    return api.get("/v1/payment_intents", params={"limit": 100}).json()["data"]


@contextmanager
def dynamodb_calls() -> Iterator[Counter]:
    """Count the DynamoDB requests the API's handlers send (botocore event hooks). The stream
    and queue consumers share the client from their poller threads, still busy with earlier
    tests' records: their calls are not the request's."""
    calls: Counter = Counter()
    events = services().dynamodb.meta.events

    def count(event_name: str, **_: object) -> None:
        if not threading.current_thread().name.startswith("poller-"):
            calls[event_name.rsplit(".", 1)[-1]] += 1

    events.register("before-send.dynamodb", count)
    try:
        yield calls
    finally:
        events.unregister("before-send.dynamodb", count)


def test_same_key_replays_the_first_response(api: Api):
    first = create(api, "order-1")
    second = create(api, "order-1")
    assert first.status_code == second.status_code == 200
    assert second.json() == first.json()
    assert second.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert len(payment_intents_of(api)) == 1


def test_errors_from_execution_are_replayed_too(api: Api):
    first = create(api, "declined", payment_method="pm_card_chargeDeclined")
    second = create(api, "declined", payment_method="pm_card_chargeDeclined")
    assert first.status_code == second.status_code == 402
    assert second.json() == first.json() and second.headers["Idempotent-Replayed"] == "true"


def test_form_and_json_with_the_same_meaning_are_the_same_request(api: Api):
    form = create(api, "mixed")
    json_body = api.session.post(
        api.base + "/v1/payment_intents",
        json={"amount": 2000, "currency": "usd", "payment_method": "pm_card_visa", "confirm": True},
        headers={"Idempotency-Key": "mixed"},
        timeout=10,
    )
    assert json_body.json()["id"] == form.json()["id"]


def test_same_key_other_parameters_is_an_idempotency_error(api: Api):
    create(api, "order-2")
    reused = create(api, "order-2", amount=999)
    assert reused.status_code == 400
    assert reused.json()["error"]["type"] == "idempotency_error"
    assert len(payment_intents_of(api)) == 1


def test_keys_are_scoped_per_endpoint_parameters_and_per_merchant(api: Api, api_url, merchant):
    from tests.conftest import new_merchant

    other = Api(api_url, new_merchant(api_url)["secret_key"])
    mine, theirs = create(api, "shared-key"), create(other, "shared-key")
    assert mine.status_code == theirs.status_code == 200
    assert mine.json()["id"] != theirs.json()["id"]


def test_validation_failures_are_not_stored(api: Api):
    bad = create(api, "fix-me", amount="-5")
    assert bad.status_code == 400
    good = create(api, "fix-me")
    assert good.status_code == 200 and "Idempotent-Replayed" not in good.headers


def test_key_longer_than_255_is_refused(api: Api):
    response = create(api, "k" * 256)
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "Idempotency-Key"
    assert create(api, "k" * 255).status_code == 200


def test_key_in_use_by_a_running_request_is_409(api: Api, merchant: dict):
    # Hold the key the way a slow first request would: claimed, not completed.
    from chalicelib.api import params as p
    from chalicelib.domain.idempotency import fingerprint

    parsed = p.validate(p.CreatePaymentIntent, PARAMS).model_dump(mode="json", exclude_unset=True)
    services().idempotency.claim(
        merchant["id"], "busy", fingerprint("POST", "/v1/payment_intents", parsed), "pi_reserved"
    )
    response = create(api, "busy")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "idempotency_key_in_use"
    assert response.headers["Stripe-Should-Retry"] == "true"


def retry_until_the_lease_expires(send: Callable[[], requests.Response]) -> requests.Response:
    """`send()` again while it answers 409 idempotency_key_in_use (which changes nothing), as
    stripe-python does, until the dead request's lease expires; then its answer."""
    deadline = time.monotonic() + IDEMPOTENCY_LEASE_MS / 1000 + 5
    while True:
        response = send()
        busy = response.status_code == 409
        if not busy or time.monotonic() > deadline:
            return response
        assert response.json()["error"]["code"] == "idempotency_key_in_use", response.text
        time.sleep(0.1)


def test_abandoned_claim_expires_and_the_retry_creates_the_reserved_object(api: Api):
    services().faults.arm("before_commit")
    crashed = create(api, "crash-before")
    assert crashed.status_code == 500
    assert payment_intents_of(api) == []
    assert create(api, "crash-before").status_code == 409  # the dead request's lease is live
    retried = retry_until_the_lease_expires(lambda: create(api, "crash-before"))
    assert retried.status_code == 200
    assert [pi["id"] for pi in payment_intents_of(api)] == [retried.json()["id"]]


def test_crash_after_commit_replays_the_committed_object(api: Api):
    """A plain create commits the object, its event and the idempotency completion in one
    transaction: a crash between 'object written' and 'response recorded' cannot exist, and a
    crash right after the commit leaves a completed record that the retry replays."""
    services().faults.arm("after_commit")
    plain = {"amount": 2000, "currency": "usd"}
    crashed = api.post("/v1/payment_intents", plain, headers={"Idempotency-Key": "crash-after"})
    assert crashed.status_code == 500
    retried = api.post("/v1/payment_intents", plain, headers={"Idempotency-Key": "crash-after"})
    assert retried.status_code == 200 and retried.headers["Idempotent-Replayed"] == "true"
    assert [pi["id"] for pi in payment_intents_of(api)] == [retried.json()["id"]]


def test_crash_after_an_answered_confirm_commits_is_replayed_at_once(api: Api):
    """A confirm the PSP answered at once commits its response in the same transaction as the
    PaymentIntent: a request that dies right after that commit has nothing left undone, and
    its retry is the stored answer."""
    services().faults.arm("after_commit")
    crashed = create(api, "crash-answered")
    assert crashed.status_code == 500
    replay = create(api, "crash-answered")
    assert replay.status_code == 200, replay.text
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json()["status"] == "succeeded"
    assert [pi["id"] for pi in payment_intents_of(api)] == [replay.json()["id"]]
    assert len(authorizations_of(replay.json()["id"])) == 1


def test_crash_after_handing_a_payment_to_the_orchestration_loses_nothing(api: Api):
    """A confirm whose first PSP call got no answer commits `processing` and hands the
    attempt to the state machine, so its response cannot ride in that transaction. If the
    request dies right after the commit, the stream still starts the execution, and the retry
    (once the dead request's lease expires) takes over the reserved id and answers with the
    outcome: one PaymentIntent, one charge."""
    fail_next_call_of_the_default_connector()
    services().faults.arm("after_commit")
    crashed = create(api, "crash-confirm")
    assert crashed.status_code == 500
    assert create(api, "crash-confirm").status_code == 409  # the dead request's lease is live
    retried = retry_until_the_lease_expires(lambda: create(api, "crash-confirm"))
    assert retried.status_code == 200, retried.text
    assert retried.json()["status"] == "succeeded"
    assert [pi["id"] for pi in payment_intents_of(api)] == [retried.json()["id"]]
    assert len(authorizations_of(retried.json()["id"])) == 1
    replay = create(api, "crash-confirm")
    assert replay.headers["Idempotent-Replayed"] == "true" and replay.json() == retried.json()


def authorizations_of(pi_id: str) -> list[dict]:
    return [
        r
        for r in services().simulator_ledger.all_records()
        if r.get("operation") == "authorize" and r.get("payment_intent") == pi_id
    ]


def fail_next_call_of_the_default_connector() -> None:
    """The default routing's first connector answers its next call with a 503."""
    first = services().connectors.defaults.connectors[0].id
    services().connectors.update_settings(first, {"fail_next_calls": 1})


def test_server_errors_from_execution_are_stored_and_replayed(api: Api):
    services().faults.arm("before_commit", crash=False)
    plain = {"amount": 2000, "currency": "usd"}
    first = api.post("/v1/payment_intents", plain, headers={"Idempotency-Key": "boom"})
    second = api.post("/v1/payment_intents", plain, headers={"Idempotency-Key": "boom"})
    assert first.status_code == second.status_code == 500
    assert first.json()["error"]["type"] == "api_error"
    assert second.headers["Idempotent-Replayed"] == "true"
    assert second.json() == first.json()
    assert "Traceback" not in first.text
    assert payment_intents_of(api) == []


def test_round_trip_budget_create_two_replay_one(api: Api):
    api.get("/v1/payment_intents")  # warm the API-key cache, as a warm Lambda has it
    plain = {"amount": 500, "currency": "usd"}
    with dynamodb_calls() as calls:
        created = api.post("/v1/payment_intents", plain, headers={"Idempotency-Key": "budget"})
    assert created.status_code == 200
    assert sum(calls.values()) <= 2, calls
    with dynamodb_calls() as calls:
        replay = api.post("/v1/payment_intents", plain, headers={"Idempotency-Key": "budget"})
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert sum(calls.values()) == 1, calls


def test_record_holds_the_response_and_expires_in_24_hours(api: Api, merchant: dict):
    create(api, "stored")
    settings = services().settings
    item = services().dynamodb.get_item(
        TableName=settings.idempotency_table, Key={"pk": {"S": f"{merchant['id']}#stored"}}
    )["Item"]
    record = from_attrs(item)
    assert record["status"] == "completed" and record["response_status"] == 200
    assert 86_000 < record["expires_at"] - time.time() <= 86_400


@pytest.fixture(autouse=True)
def _disarm_faults():
    yield
    services().faults.disarm()
