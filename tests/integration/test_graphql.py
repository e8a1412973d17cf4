"""/graphql against the sandbox: one query for a payment's whole story, REST's keys and tenant
isolation, read-only, and the depth and cost limits."""

from __future__ import annotations

import requests
from graphql import parse

from chalicelib.api.graphql_schema import MAX_COST, limits
from tests.conftest import Api, new_merchant
from tests.integration.webhook_receiver import eventually

STORY = """
query Story($id: ID!) {
  payment_intent(id: $id) {
    id status amount
    charges { id status balance_transactions { id type amount } }
    refunds { id }
    attempts { attempt connector outcome latency_ms }
    routing
    events { type object deliveries { id status } }
  }
}
"""


def graphql(api: Api, query: str, **variables: object) -> dict:
    response = api.session.post(
        f"{api.base}/graphql", json={"query": query, "variables": variables}, timeout=30
    )
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def pay(api: Api) -> dict:
    response = api.post(
        "/v1/payment_intents",
        {"amount": "3100", "currency": "usd", "payment_method": "pm_card_visa", "confirm": "true"},
    )
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def test_one_query_reads_a_payments_whole_story(api: Api):
    pi = pay(api)

    def story() -> dict:
        body = graphql(api, STORY, id=pi["id"])
        assert "errors" not in body, body
        found = body["data"]["payment_intent"]
        assert "charge.succeeded" in {e["type"] for e in found["events"]}
        return found

    found = eventually(story, timeout=10)
    assert found["id"] == pi["id"] and found["status"] == "succeeded"
    (charge,) = found["charges"]
    assert charge["id"] == pi["latest_charge"]
    assert [t["type"] for t in charge["balance_transactions"]] == ["charge"]
    assert found["attempts"][0]["outcome"] == "authorized"
    assert found["routing"][0]["candidates"][0] == found["attempts"][0]["connector"]
    rest = api.get(f"/v1/payment_intents/{pi['id']}/attempts").json()
    assert found["routing"] == rest["routing"]


def test_same_keys_and_tenant_isolation_as_rest(api: Api, api_url: str):
    pi = pay(api)
    other = Api(api_url, new_merchant(api_url)["secret_key"])
    body = graphql(other, STORY, id=pi["id"])
    assert body["data"]["payment_intent"] is None
    listed = graphql(other, "{ payment_intents { id } }")
    assert listed["data"]["payment_intents"] == []

    anonymous = requests.post(f"{api_url}/graphql", json={"query": "{ connectors { id } }"})
    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["type"] == "invalid_request_error"


def test_it_is_read_only_and_bounded(api: Api):
    mutation = graphql(api, 'mutation { cancel(id: "pi_1") }')
    assert "data" not in mutation and mutation["errors"]
    expensive = graphql(
        api,
        "{ payment_intents(limit: 100) { charges(limit: 100) { balance_transactions(limit: 100)"
        " { id } } } }",
    )
    assert "exceeds the limit" in expensive["errors"][0]["message"]
    too_many = graphql(api, "{ payment_intents(limit: 500) { id } }")
    assert "limit must be between" in too_many["errors"][0]["message"]
    assert too_many["errors"][0]["extensions"]["param"] == "limit"
    broken = graphql(api, "{ payment_intents { id ")
    assert broken["errors"][0]["message"].startswith("Syntax Error")


def test_depth_and_cost_are_measured_through_fragments():
    deep = parse("{ a { b { c { d { e { f { g } } } } } } }")
    assert "depth 7" in limits(deep, {})[0].message
    single = parse("{ payment_intent(id: 1) { charges { id } } }")
    assert limits(single, {}) == []
    spread = parse(
        "query { payment_intents(limit: 100) { ...F } }"
        " fragment F on PaymentIntent { charges(limit: $n) { id amount } }"
    )
    (error,) = limits(spread, {"n": 100})
    assert f"exceeds the limit of {MAX_COST}" in error.message
    assert limits(spread, {"n": 5}) == []
