"""Analytics and connector alerts against the sandbox: the rollup consumer folds each PSP call
once, a failure spike raises one alert sent as a PayFlow event through the webhooks, and the
report reads the counters."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from chalicelib.dal.analytics import AnalyticsStore, Fold
from chalicelib.dal.dynamo import from_attrs
from chalicelib.dal.objects import ObjectStore
from chalicelib.domain.analytics import Granularity
from chalicelib.services.analytics import AnalyticsService
from tests.conftest import ADMIN_KEY, Api
from tests.integration.webhook_receiver import eventually, receiving


def pay(api: Api, payment_method: str = "pm_card_visa") -> dict:
    response = api.post(
        "/v1/payment_intents",
        {"amount": "2500", "currency": "usd", "payment_method": payment_method, "confirm": "true"},
    )
    assert response.status_code in (200, 402), response.text
    body = response.json()
    return body if response.status_code == 200 else body["error"]["payment_intent"]


def own_simulators(api: Api) -> tuple[str, str]:
    """Route the merchant to two simulators of its own (primary, backup), with a circuit that
    does not open during a test: faults switched on them touch no other test's connectors."""
    name = f"sim_{uuid.uuid4().hex[:10]}"
    primary, backup = f"{name}_a", f"{name}_b"
    routing = {
        "connectors": [
            {"id": c, "kind": "simulator", "priority": rank + 1}
            for rank, c in enumerate((primary, backup))
        ],
        "circuit_breaker": {"minimum_calls": 1000},
    }
    response = api.session.post(f"{api.base}/v1/routing", json=routing, timeout=30)
    assert response.status_code == 200, response.text
    return primary, backup


@pytest.fixture
def failing_simulator(api: Api, api_url: str) -> Iterator[str]:
    """The merchant's primary simulator fails every call meanwhile; its id."""
    primary, _ = own_simulators(api)
    admin = Api(api_url, ADMIN_KEY)
    assert admin.post(f"/v1/connectors/{primary}", {"error_rate": "1"}).status_code == 200
    try:
        yield primary
    finally:
        admin.post(f"/v1/connectors/{primary}", {"error_rate": "0"})


def report(api: Api) -> dict:
    response = api.get("/v1/analytics")
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def test_a_failure_spike_raises_one_alert_delivered_as_a_payflow_event(
    api: Api, failing_simulator: str
) -> None:
    # Given a rule of 50% over 3 calls and an endpoint subscribed to the alert type only
    rule = {"threshold": "0.5", "window_seconds": "120", "minimum_calls": "3"}
    assert api.post("/v1/alert_settings", rule).json()["minimum_calls"] == 3
    with receiving() as hook:
        endpoint = api.post(
            "/v1/webhook_endpoints",
            {"url": hook.url, "enabled_events[]": ["payflow.connector.alert"]},
        )
        assert endpoint.status_code == 200, endpoint.text
        try:
            # When payments meet a simulator that fails every call
            for _ in range(3):
                pay(api)

            # Then one alert fires, and the webhook carries it
            got = hook.wait_for(lambda r: len(r) >= 1, timeout=15)
            event = got[0].event
            assert event["type"] == "payflow.connector.alert"
            alert = event["data"]["object"]
            assert alert["object"] == "connector_alert"
            assert alert["connector"] == failing_simulator
            assert alert["status"] == "firing" and alert["success_rate"] < 0.5
            listed = api.get("/v1/alerts").json()["data"]
            assert [(a["id"], a["status"]) for a in listed] == [(alert["id"], "firing")]
            # More failures while it fires raise nothing new
            pay(api)
            time.sleep(1.5)
            assert len(api.get("/v1/alerts").json()["data"]) == 1
            assert hook.count() == 1
        finally:
            api.session.delete(f"{api.base}/v1/webhook_endpoints/{endpoint.json()['id']}")

    # And the report shows the simulator's errors and the failover's successes
    simulator = report(api)["by_connector"][failing_simulator]["total"]
    assert simulator["succeeded"] == 0 and simulator["reasons"].get("PspUnavailable", 0) >= 3


def test_the_report_counts_calls_declines_and_volume_once_each(api: Api, sandbox: Any) -> None:
    paid = [pay(api) for _ in range(2)]
    pay(api, "pm_card_chargeDeclined")

    def folded() -> dict:
        body = report(api)
        assert body["total"]["calls"] >= 3
        return body

    body = eventually(folded, timeout=10)
    total = body["total"]
    assert total["outcomes"].get("declined") == 1
    assert total["reasons"] == {"generic_decline": 1}
    assert total["volume"] == {"usd": 5000}
    assert body["by_method"]["card"]["total"]["calls"] == total["calls"]
    assert (
        sum(body["by_connector"][c]["total"]["calls"] for c in body["by_connector"])
        == (total["calls"])
    )
    assert all(p is not None for p in total["latency_ms"].values())

    # A stream record handled again (a Lambda retry) adds nothing
    client = sandbox.aws.client("dynamodb")
    ids = sandbox.provisioned.physical_ids
    store = _store(sandbox)
    # (the confirm handler's own call is recorded in the attempt's routing decision)
    attempts = client.query(
        TableName=ids["PaymentsTable"],
        KeyConditionExpression="pk = :pk AND begins_with(sk, :a)",
        ExpressionAttributeValues={":pk": {"S": paid[0]["id"]}, ":a": {"S": "routing#"}},
    )["Items"]
    assert attempts and from_attrs(attempts[0])["data"]["calls"][0]["outcome"] == "authorized"
    replay = [{"eventName": "INSERT", "dynamodb": {"NewImage": item}} for item in attempts]
    assert AnalyticsService(store).handle(replay) == {"folded": 0}
    assert report(api)["total"] == total


def _store(sandbox: Any) -> AnalyticsStore:
    client = sandbox.aws.client("dynamodb")
    ids = sandbox.provisioned.physical_ids
    return AnalyticsStore(
        client,
        ids["AnalyticsTable"],
        ids["PaymentsTable"],
        ObjectStore(client, ids["PaymentsTable"]),
    )


def test_a_batch_folds_together_and_a_replayed_fact_in_it_adds_nothing(sandbox: Any) -> None:
    # Given the analytics store and three calls of one bucket, two of them folded already
    store = _store(sandbox)
    merchant = f"acct_fold_{uuid.uuid4().hex[:8]}"
    at = 1_800_000_030

    def call(n: int) -> Fold:
        return Fold(merchant, f"pi_{n}", "routing#0001#0", at, ("simulator", "card"), {"calls": n})

    assert store.fold([call(1), call(2)]) == 2
    # When a batch brings one of them again with a new one
    assert store.fold([call(2), call(4)]) == 1
    # Then each was counted once, in every granularity
    for granularity in (Granularity.MINUTE, Granularity.HOUR, Granularity.DAY):
        (bucket,) = store.buckets(merchant, granularity, 0, at)
        assert bucket["calls"] == 1 + 2 + 4, granularity


def test_bad_ranges_and_settings_are_stripe_shaped_errors(api: Api) -> None:
    wide = api.get("/v1/analytics", params={"created[gte]": 0, "interval": "hour"})
    assert wide.status_code == 400 and wide.json()["error"]["param"] == "interval"
    backwards = api.get("/v1/analytics", params={"created[gte]": 2000, "created[lte]": 1000})
    assert backwards.status_code == 400 and backwards.json()["error"]["param"] == "created"
    bad = api.post("/v1/alert_settings", {"threshold": "2"})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "threshold"
    assert api.get("/v1/alert_settings").json()["threshold"] == 0.8


def test_the_dead_letter_queue_is_read_and_redriven_by_the_admin_only(api: Api, api_url: str):
    admin = Api(api_url, ADMIN_KEY)
    assert api.get("/v1/sandbox/webhook_dlq").status_code in (401, 403)
    with receiving(default=500) as hook:
        endpoint = api.post(
            "/v1/webhook_endpoints",
            {"url": hook.url, "enabled_events[]": ["payment_intent.created"]},
        ).json()
        try:
            # Given a delivery that failed its three scheduled attempts
            pi = api.post("/v1/payment_intents", {"amount": "700", "currency": "usd"}).json()
            hook.wait_for(lambda got: len(got) >= 3, timeout=20)

            def dead_lettered() -> int:
                body = admin.get("/v1/sandbox/webhook_dlq").json()
                assert body["object"] == "webhook_dead_letter_queue"
                assert body["dead_lettered"] >= 1
                return int(body["dead_lettered"])

            eventually(dead_lettered, timeout=15)
            # When the admin redrives, the message gets a fresh schedule: a fourth attempt
            moved = admin.post("/v1/sandbox/webhook_dlq/redrive", {"limit": "100"}).json()
            assert moved["moved"] >= 1
            hook.wait_for(lambda got: len(got) >= 4, timeout=20)
            events = [r.event["data"]["object"]["id"] for r in hook.requests]
            assert set(events) == {pi["id"]}
        finally:
            api.session.delete(f"{api.base}/v1/webhook_endpoints/{endpoint['id']}")
