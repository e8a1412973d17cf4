"""An endpoint's deliveries listed by status, in the session's embedded sandbox: a pending or
failed delivery is found without reading the endpoint's succeeded history.

The deliveries are written through the data layer (the writes the relay and the delivery
handler make), for events that were never sent, so no message is queued and nothing changes
them while the test reads them back through the API.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from typing import Any

import pytest

from chalicelib.container import services
from chalicelib.dal.dynamo import paged, to_attrs
from chalicelib.dal.objects import ObjectStore
from chalicelib.dal.webhooks import WebhookStore
from chalicelib.domain.ids import new_id
from chalicelib.domain.webhooks import Attempt, Delivery, DeliveryStatus, Trigger, delivery_id
from payflow.cli import main
from tests.conftest import Api
from tests.integration.conftest import Hooks

HISTORY = 150
"""Succeeded deliveries around the open ones: what a status listing must not read."""


class ReadCounter:
    """The sandbox's DynamoDB client, counting the items its Queries read (before filters)."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.exceptions = client.exceptions
        self.read = 0

    def query(self, **params: Any) -> dict[str, Any]:
        response: dict[str, Any] = self._client.query(**params)
        self.read += response["ScannedCount"]
        return response

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def store(client: Any = None) -> WebhookStore:
    client = client or services().dynamodb
    table = services().settings.payments_table
    return WebhookStore(client, table, ObjectStore(client, table))


def attempt(number: int, status_code: int) -> Attempt:
    return Attempt(
        attempt=number,
        created=int(time.time()),
        trigger=Trigger.SCHEDULED,
        status_code=status_code,
        latency_ms=3,
        url="http://127.0.0.1:9/hooks",
    )


@pytest.fixture
def history(hooks: Hooks, merchant: dict[str, Any]) -> dict[str, Any]:
    """An endpoint with HISTORY succeeded deliveries, and among them, oldest first: one failed,
    one pending after a failed attempt, one failed by its endpoint, one failed then resent
    (pending again), one failed after a retry, one never attempted (pending)."""
    endpoint = hooks.endpoint(hooks.receiver(), ["payment_intent.created"])
    webhooks = store()
    deliveries = []
    for _ in range(HISTORY + 6):
        event_id = new_id("evt")
        delivery = Delivery(
            id=delivery_id(event_id, endpoint["id"]),
            merchant_id=merchant["id"],
            event_id=event_id,
            event_type="payment_intent.created",
            endpoint_id=endpoint["id"],
            created=int(time.time()),
            token="t0",
        )
        assert webhooks.create_delivery(delivery)
        deliveries.append(delivery)
        time.sleep(0.002)  # ids order by the millisecond
    step = HISTORY // 6
    open_ones = deliveries[step::step][:6]
    for delivery in deliveries:
        if delivery not in open_ones:
            assert webhooks.record_attempt(
                delivery, attempt(1, 200), status=DeliveryStatus.SUCCEEDED
            )
    failed, retrying, gone, resent, retried, untouched = open_ones
    assert webhooks.record_attempt(failed, attempt(1, 500), status=DeliveryStatus.FAILED)
    assert webhooks.record_attempt(
        retrying, attempt(1, 500), status=DeliveryStatus.PENDING, next_attempt_at=2**31
    )
    assert webhooks.fail(gone)
    assert webhooks.record_attempt(resent, attempt(1, 500), status=DeliveryStatus.FAILED)
    assert webhooks.retoken(resent, "t1", next_attempt_at=None, reset_status=True)
    assert webhooks.record_attempt(retried, attempt(1, 500), status=DeliveryStatus.PENDING)
    assert webhooks.record_attempt(retried, attempt(2, 500), status=DeliveryStatus.FAILED)
    return {
        "endpoint": endpoint,
        "pending": [d.id for d in reversed(open_ones) if d in (retrying, resent, untouched)],
        "failed": [d.id for d in reversed(open_ones) if d in (failed, gone, retried)],
    }


def listed(api: Api, endpoint_id: str, **params: Any) -> dict[str, Any]:
    response = api.get(f"/v1/webhook_endpoints/{endpoint_id}/deliveries", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_pending_and_failed_deliveries_are_listed_from_their_own_index(api: Api, history):
    endpoint_id = history["endpoint"]["id"]
    for status in ("pending", "failed"):
        # When listed by status, newest first
        page = listed(api, endpoint_id, status=status, limit=100)

        # Then exactly the deliveries with that status
        assert [d["id"] for d in page["data"]] == history[status]
        assert {d["status"] for d in page["data"]} == {status}
        assert page["has_more"] is False

        # And a page at a time, both ways, with the cursors Stripe's lists take
        first = listed(api, endpoint_id, status=status, limit=2)
        assert [d["id"] for d in first["data"]] == history[status][:2] and first["has_more"]
        rest = listed(api, endpoint_id, status=status, limit=2, starting_after=history[status][1])
        assert [d["id"] for d in rest["data"]] == history[status][2:] and not rest["has_more"]
        back = listed(api, endpoint_id, status=status, limit=2, ending_before=history[status][2])
        assert [d["id"] for d in back["data"]] == history[status][:2]

    succeeded = listed(api, endpoint_id, status="succeeded", limit=100)
    assert len(succeeded["data"]) == 100 and succeeded["has_more"]
    assert {d["status"] for d in succeeded["data"]} == {"succeeded"}
    rest = listed(
        api, endpoint_id, status="succeeded", limit=100, starting_after=succeeded["data"][-1]["id"]
    )
    assert len(rest["data"]) == HISTORY - 100 and not rest["has_more"]
    # Without a status, every delivery, in one order
    first = listed(api, endpoint_id, limit=100)
    second = listed(api, endpoint_id, limit=100, starting_after=first["data"][-1]["id"])
    everything = first["data"] + second["data"]
    assert first["has_more"] and not second["has_more"]
    assert [d["id"] for d in everything] == sorted((d["id"] for d in everything), reverse=True)
    assert Counter(d["status"] for d in everything) == {
        "succeeded": HISTORY,
        "pending": 3,
        "failed": 3,
    }


def test_a_status_listing_reads_only_the_deliveries_with_that_status(history):
    endpoint_id = history["endpoint"]["id"]
    for status in (DeliveryStatus.PENDING, DeliveryStatus.FAILED):
        # When the store lists one status
        counter = ReadCounter(services().dynamodb)
        found, has_more = store(counter).deliveries_of_endpoint(
            endpoint_id, limit=10, status=status
        )

        # Then it read those deliveries and no other
        assert [d.id for d in found] == history[status.value] and not has_more
        assert counter.read == len(history[status.value])


def test_an_index_entry_is_kept_exactly_while_a_delivery_has_not_succeeded(history):
    # Every delivery of the endpoint, as stored
    table = services().settings.payments_table
    items = list(
        paged(
            services().dynamodb.query,
            {
                "TableName": table,
                "IndexName": "gsi1",
                "KeyConditionExpression": "gsi1pk = :pk",
                "ExpressionAttributeValues": to_attrs(
                    {":pk": f"{history['endpoint']['id']}#webhook_delivery"}
                ),
            },
        )
    )
    assert len(items) == HISTORY + 6
    for item in items:
        if item["status"] == "succeeded":
            assert "gsi3pk" not in item and "gsi3sk" not in item, item
        else:
            assert item["gsi3pk"] == f"{item['endpoint_id']}#webhook_delivery#{item['status']}"
            assert item["gsi3sk"] == item["id"]


def test_deliveries_stored_before_the_index_are_listed_once_backfilled(
    api: Api, history, merchant: dict[str, Any], sandbox: Any, capsys: Any
):
    # Given: the endpoint's deliveries as an older PayFlow stored them, without gsi3 keys, and
    # a succeeded one with keys it no longer needs
    endpoint_id = history["endpoint"]["id"]
    table = services().settings.payments_table
    stored = list(store().stored_deliveries(endpoint_id))
    for values in stored:
        if values["status"] != "succeeded":
            services().dynamodb.update_item(
                TableName=table,
                Key=to_attrs({"pk": values["pk"], "sk": values["sk"]}),
                UpdateExpression="REMOVE gsi3pk, gsi3sk",
            )
    stale = next(v for v in stored if v["status"] == "succeeded")
    services().dynamodb.update_item(
        TableName=table,
        Key=to_attrs({"pk": stale["pk"], "sk": stale["sk"]}),
        UpdateExpression="SET gsi3pk = :pk, gsi3sk = :sk",
        ExpressionAttributeValues=to_attrs(
            {":pk": f"{endpoint_id}#webhook_delivery#pending", ":sk": stale["id"]}
        ),
    )
    assert listed(api, endpoint_id, status="failed")["data"] == []
    assert [d["id"] for d in listed(api, endpoint_id, status="pending")["data"]] == [stale["id"]]

    # When: the backfill walks them, stopped by its limit halfway through and resumed
    def command(*options: str) -> str:
        argv = ["backfill-indexes", "--aws-endpoint", sandbox.aws_url, "--merchant"]
        assert main([*argv, merchant["id"], "--kind", "webhook_delivery", *options]) == 0
        return str(capsys.readouterr().out)

    first = command("--limit", str(HISTORY // 2))
    cursor = first.rsplit("--resume ", 1)[1].split()[0]
    rest = command("--resume", cursor)

    # Then: every delivery was read once, and the open ones and the stale one written
    counts = [
        re.search(r"webhook_delivery: (\d+) scanned, (\d+) updated", out) for out in (first, rest)
    ]
    assert all(counts)
    assert sum(int(c[1]) for c in counts if c) == HISTORY + 6
    assert sum(int(c[2]) for c in counts if c) == 6 + 1
    for status in ("pending", "failed"):
        assert [d["id"] for d in listed(api, endpoint_id, status=status)["data"]] == history[status]
    # And: a second run finds nothing to do
    again = command()
    assert (
        f"webhook_delivery: {HISTORY + 6} scanned, 0 updated, {HISTORY + 6} already current"
        in again
    )
