"""What the dashboard reads beyond Stripe's API: payments by connector and by payment method
type (through their indexes), a payment's Step Functions executions with their history and
the connector's raw answer of each call, and each circuit's history of moves."""

from __future__ import annotations

from typing import Any

from chalicelib.container import services
from chalicelib.dal.objects import ObjectStore
from tests.conftest import Api, new_merchant
from tests.integration.test_orchestration import (
    _route_stripe_first,
    attempts,
    pay,
    set_simulator,
    simulators,
    wait_for_cooldown,
)


def ids(api: Api, path: str, **params: object) -> list[str]:
    response = api.get(path, params=params)
    assert response.status_code == 200, response.text
    return [pi["id"] for pi in response.json()["data"]]


class RecordingClient:
    """The sandbox's DynamoDB client, remembering the parameters of every Query."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.queries: list[dict[str, Any]] = []

    def query(self, **params: Any) -> Any:
        self.queries.append(params)
        return self._client.query(**params)


def test_payments_are_listed_by_connector_and_by_payment_method_type(api: Api):
    # Given: two payments routed to one simulator, then a success and a decline at another
    first, _ = simulators(api, "first", "spare")
    at_first = [pay(api).json()["id"] for _ in range(2)]
    second, _ = simulators(api, "second", "spare")
    at_second = pay(api).json()["id"]
    declined = pay(api, "pm_card_chargeDeclined").json()["error"]["payment_intent"]["id"]
    unconfirmed = api.post("/v1/payment_intents", {"amount": 500, "currency": "usd"}).json()["id"]

    # Then: each connector lists its own payments, newest first, the decline where it was
    # declined; a payment never confirmed has no connector
    listed = ids(api, "/v1/payment_intents", connector=first)
    assert listed == list(reversed(at_first))
    assert ids(api, "/v1/payment_intents", connector=second) == [declined, at_second]
    by_card = ids(api, "/v1/payment_intents", payment_method_type="card", limit=100)
    assert {*at_first, at_second, declined} <= set(by_card) and unconfirmed not in by_card
    assert ids(api, "/v1/payment_intents", connector=first, payment_method_type="card") == (listed)
    assert ids(api, "/v1/payment_intents", connector=first, payment_method_type="upi") == []
    # Pages follow Stripe's cursors inside the index too
    page = api.get("/v1/payment_intents", params={"connector": first, "limit": 1}).json()
    assert [p["id"] for p in page["data"]] == [at_first[1]] and page["has_more"]
    after = ids(api, "/v1/payment_intents", connector=first, starting_after=at_first[1])
    assert after == [at_first[0]]
    # Search pins the connector the same way, with the other filters on top
    query = f"connector:'{second}' AND status:'succeeded'"
    found = api.get("/v1/payment_intents/search", params={"query": query}).json()
    assert [p["id"] for p in found["data"]] == [at_second]


def test_a_connector_filter_is_one_query_of_its_index(api: Api, merchant: dict):
    # Given: a merchant with payments at two connectors
    simulators(api, "first", "spare")
    pay(api)
    second, _ = simulators(api, "second", "spare")
    wanted = pay(api).json()["id"]
    merchant_id = merchant["id"]
    recording = RecordingClient(services().dynamodb)
    store = ObjectStore(recording, services().settings.payments_table)

    # When
    page = store.list("payment_intent", merchant_id, limit=10, indexed=("connector", second))

    # Then: one Query of the connector's partition, however many payments the merchant has
    assert [item["id"] for item in page.items] == [wanted]
    assert len(recording.queries) == 1
    query = recording.queries[0]
    assert query["IndexName"] == "gsi2" and query["Limit"] == 11
    assert "FilterExpression" not in query


def test_bad_filters_are_refused(api: Api):
    unknown = api.get("/v1/payment_intents", params={"connectr": "sim_a"})
    assert unknown.status_code == 400
    assert unknown.json()["error"]["code"] == "parameter_unknown"
    for param, value in (("connector", "Not An Id"), ("payment_method_type", "cheque")):
        bad = api.get("/v1/payment_intents", params={param: value})
        assert bad.status_code == 400, bad.text
        assert bad.json()["error"]["param"] == param


def test_a_payment_the_handler_answered_has_no_execution_and_keeps_the_raw_answer(api: Api):
    primary, _ = simulators(api, "primary", "backup")
    pi = pay(api).json()

    assert api.get(f"/v1/payment_intents/{pi['id']}/executions").json()["data"] == []
    (call,) = attempts(api, pi["id"])["data"]
    answer = call["answer"]
    assert answer["status"] == "authorized" and answer["connector"] == primary
    assert answer["payment_intent"] == pi["id"] and answer["psp_reference"].startswith("sim_")


def test_a_handed_over_payment_shows_its_execution_history_and_each_calls_answer(api: Api):
    # Given: the primary fails the handler's call and the state machine's first try
    primary, backup = simulators(api, "primary", "backup", minimum_calls=10)
    set_simulator(api, primary, fail_next_calls=2, fail_with="unavailable")

    # When
    pi = pay(api).json()
    assert pi["status"] == "succeeded"
    (execution,) = api.get(f"/v1/payment_intents/{pi['id']}/executions").json()["data"]

    # Then: the execution of attempt 1, finished, with its states in order: the failed
    # Authorize at the primary is in the history, retried there and answered
    assert execution["name"] == f"{pi['id']}-attempt-1" and execution["attempt"] == 1
    assert execution["status"] == "succeeded"
    assert execution["started_ms"] <= execution["stopped_ms"]
    events = execution["events"]
    assert [e["id"] for e in events] == sorted(e["id"] for e in events)
    entered = [e for e in events if e["type"].endswith("StateEntered")]
    assert entered[0]["state"] != "Finalize" and entered[-1]["state"] == "Finalize"
    authorize = [e for e in entered if e.get("state") == "Authorize"]
    assert authorize and {e.get("connector") for e in authorize} == {primary}
    assert any(e.get("error") == "PspUnavailable" for e in events)
    # And every call has the connector's answer: the failures' own words, then the success
    calls = attempts(api, pi["id"])["data"]
    assert [c["outcome"] for c in calls] == ["PspUnavailable", "PspUnavailable", "authorized"]
    assert calls[0]["answer"] == {
        "error": "PspUnavailable",
        "message": f"{primary}: scripted unavailable",
    }
    assert calls[-1]["answer"]["status"] == "authorized" and backup not in str(calls)
    # GraphQL reads the same, with the page's one query
    query = "query($id: ID!) { payment_intent(id: $id) { executions attempts { answer } } }"
    body = api.session.post(
        api.base + "/graphql", json={"query": query, "variables": {"id": pi["id"]}}, timeout=30
    ).json()
    story = body["data"]["payment_intent"]
    assert story["executions"][0]["events"] == events
    assert story["attempts"][0]["answer"]["error"] == "PspUnavailable"


def test_another_merchants_payment_has_no_executions_to_show(api: Api, api_url: str):
    pi = pay(api).json()
    other = Api(api_url, new_merchant(api_url)["secret_key"])
    response = other.get(f"/v1/payment_intents/{pi['id']}/executions")
    assert response.status_code == 404


def test_a_circuit_keeps_its_moves_and_why(api: Api):
    # Given: the primary's circuit opens (3 failures in 3 calls), cools down, and its probe
    # succeeds
    primary, _ = simulators(api, "primary", "backup", minimum_calls=3, cooldown_seconds=1)
    set_simulator(api, primary, fail_next_calls=3, fail_with="unavailable")
    pay(api)
    wait_for_cooldown(primary, 1)
    pay(api)

    # When
    history = api.get(f"/v1/connectors/{primary}/circuit_history").json()

    # Then: newest first, each move with its state before and after, its time and reason
    moves = [(m["from"], m["to"]) for m in history["data"]]
    assert moves == [("half_open", "closed"), ("open", "half_open"), ("closed", "open")]
    opened = history["data"][-1]
    assert opened["calls"] == 3 and opened["failures"] == 3
    assert opened["reason"].startswith("3 of 3 calls failed in 60 s (100%, threshold 50%")
    assert history["data"][0]["reason"] == "the probe call succeeded"
    times = [m["at_ms"] for m in history["data"]]
    assert times == sorted(times, reverse=True)
    one = api.get(f"/v1/connectors/{primary}/circuit_history", params={"limit": 1}).json()
    assert len(one["data"]) == 1 and one["has_more"]


def test_circuit_history_of_a_connector_not_routed_to_is_a_404(api: Api):
    simulators(api, "primary")
    missing = api.get("/v1/connectors/not_mine/circuit_history")
    assert missing.status_code == 404 and missing.json()["error"]["param"] == "connector"
    bad = api.get("/v1/connectors/not_mine/circuit_history", params={"limt": 2})
    assert bad.json()["error"]["code"] == "parameter_unknown"


def test_stripes_answer_is_kept_without_its_client_secret(api: Api, fake_stripe):
    # Given: the merchant routes to Stripe (the fake Stripe API on 127.0.0.1)
    _route_stripe_first(api)

    # When
    pi = pay(api, capture_method="manual").json()
    declined = pay(api, "pm_card_chargeDeclinedInsufficientFunds").json()

    # Then: Stripe's PaymentIntent as it answered, less what must never be stored
    (call,) = attempts(api, pi["id"])["data"]
    assert call["connector"] == "stripe" and call["answer"]["object"] == "payment_intent"
    assert call["answer"]["status"] == "requires_capture"
    assert "client_secret" not in call["answer"] and "secret" not in str(call["answer"])
    # A decline's answer is Stripe's error body
    (refused,) = attempts(api, declined["error"]["payment_intent"]["id"])["data"]
    assert refused["answer"]["error"]["decline_code"] == "insufficient_funds"
