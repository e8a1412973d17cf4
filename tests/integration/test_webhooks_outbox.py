"""The outbox relay under failure (a crash mid-batch, a stream batch handed over twice), and the
delivery handler's batches."""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from chalicelib.container import services
from payflow.sandbox.pollers import stream_record
from tests.conftest import Api
from tests.integration.conftest import Hooks, wait_until_drained
from tests.integration.test_webhooks import create_payment, deliveries_of
from tests.integration.webhook_receiver import Received, eventually


@pytest.fixture(autouse=True)
def _disarm_faults() -> Iterator[None]:
    yield
    services().faults.disarm()


def by_webhook_id(requests: list[Received]) -> dict[str, list[Received]]:
    grouped: dict[str, list[Received]] = defaultdict(list)
    for request in requests:
        grouped[request.webhook_id].append(request)
    return grouped


def test_a_relay_crash_mid_batch_loses_nothing(api: Api, hooks: Hooks, sandbox: Any):
    # Given the relay dies right after queueing its first message, before recording it
    receiver = hooks.receiver()
    hooks.endpoint(receiver)
    services().faults.arm("relay_after_enqueue", 1)

    # When a payment writes several events in one go
    pi = create_payment(api, payment_method="pm_card_visa", confirm="true")

    # Then the batch is handed over again and every event arrives (the payment's events are
    # committed with it, so they are all listed by now)
    events = api.get("/v1/events", params={"limit": 100}).json()["data"]
    mine = [e for e in events if _of_payment(e, pi["id"])]
    assert {"payment_intent.created", "payment_intent.succeeded"} <= {e["type"] for e in mine}
    requests = receiver.wait_for(lambda rs: {e["id"] for e in mine} <= {r.event["id"] for r in rs})
    assert not services().faults.armed("relay_after_enqueue"), "the crash did not happen"
    wait_until_drained(sandbox)  # a duplicate, if any, has arrived by now
    grouped = by_webhook_id(receiver.requests)
    # one delivery per event; a copy, if any slipped through, carries the same webhook-id
    assert len(grouped) == len(mine) == len({r.event["id"] for r in receiver.requests})
    for copies in grouped.values():
        assert len({c.event["id"] for c in copies}) == 1
    for event in mine:
        assert len(deliveries_of(api, event["id"])) == 1
        eventually(lambda e=event: _pending(api, e["id"]) == 0 or _fail(e))
    assert len(requests) >= 2


def _pending(api: Api, event_id: str) -> int:
    count: int = api.get(f"/v1/events/{event_id}").json()["pending_webhooks"]
    return count


def _fail(event: dict[str, Any]) -> bool:
    raise AssertionError(f"pending_webhooks of {event['id']} did not reach 0")


def stream_positions(sandbox: Any) -> dict[str, str]:
    """A LATEST iterator per shard of the payments stream: where the next records will be."""
    streams = sandbox.aws.client("dynamodbstreams")
    arn = sandbox.provisioned.attributes[("PaymentsTable", "StreamArn")]
    return {
        shard["ShardId"]: streams.get_shard_iterator(
            StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="LATEST"
        )["ShardIterator"]
        for shard in streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]
    }


def stream_records_of(
    sandbox: Any, positions: dict[str, str], keys: set[str]
) -> list[dict[str, Any]]:
    """The Lambda-shaped stream records, from `positions` on, that inserted the items whose pk
    is in `keys`."""
    streams = sandbox.aws.client("dynamodbstreams")
    arn = sandbox.provisioned.attributes[("PaymentsTable", "StreamArn")]
    found = []
    for iterator in positions.values():
        while iterator:
            response = streams.get_records(ShardIterator=iterator, Limit=1000)
            for record in response["Records"]:
                pk = record["dynamodb"]["Keys"]["pk"]["S"]
                if record["eventName"] == "INSERT" and pk in keys:
                    found.append(stream_record(record, arn, "us-east-1"))
            if not response["Records"]:
                break
            iterator = response.get("NextShardIterator")
    return found


def test_a_stream_batch_handed_over_twice_is_not_delivered_twice(
    api: Api, hooks: Hooks, sandbox: Any
):
    # Given events that were relayed and delivered
    receiver = hooks.receiver()
    hooks.endpoint(receiver)
    positions = stream_positions(sandbox)
    pi = create_payment(api, payment_method="pm_card_visa", confirm="true")
    receiver.wait_for(lambda rs: any(r.event["type"] == "payment_intent.succeeded" for r in rs))
    events = api.get("/v1/events", params={"limit": 100}).json()["data"]
    mine = {e["id"]: e for e in events if _of_payment(e, pi["id"])}
    eventually(lambda: all(_pending(api, i) == 0 for i in mine) or _fail({"id": list(mine)}))
    delivered = receiver.count()

    # When the relay function is invoked again with the very same records
    records = stream_records_of(sandbox, positions, set(mine))
    assert {json.loads(json.dumps(r))["dynamodb"]["Keys"]["pk"]["S"] for r in records} == set(mine)
    response = sandbox.aws.client("lambda").invoke(
        FunctionName="RelayEvents", Payload=json.dumps({"Records": records})
    )

    # Then nothing new is queued or counted, and the receiver gets nothing more
    assert "FunctionError" not in response, response["Payload"].read()
    assert json.loads(response["Payload"].read()) == {"batchItemFailures": []}
    wait_until_drained(sandbox)
    assert receiver.count() == delivered
    assert len(by_webhook_id(receiver.requests)) == delivered
    for event_id in mine:
        assert _pending(api, event_id) == 0
        assert len(deliveries_of(api, event_id)) == 1


def test_a_late_copy_of_a_message_does_not_reopen_a_failed_delivery(api: Api):
    from chalicelib.container import webhooks
    from chalicelib.domain.webhooks import Attempt, Delivery, DeliveryStatus, Trigger, delivery_id

    # Given a pending delivery of a real event, to an endpoint that answers 500
    pi = create_payment(api, payment_method="pm_card_visa", confirm="true")
    event = next(
        e
        for e in api.get("/v1/events", params={"limit": 100}).json()["data"]
        if e["data"]["object"]["id"] == pi["id"]
    )
    store = webhooks().deliverer._store
    endpoint_id = f"we_late{int(time.time() * 1000)}"
    read_by_both = Delivery(
        id=delivery_id(event["id"], endpoint_id),
        merchant_id=services().merchants.authenticate(api.session.auth[0]),
        event_id=event["id"],
        event_type=event["type"],
        endpoint_id=endpoint_id,
        created=int(time.time()),
        token="t",
    )
    assert store.create_delivery(read_by_both)

    def attempt(n: int) -> Attempt:
        return Attempt(
            attempt=n, created=int(time.time()), trigger=Trigger.SCHEDULED, status_code=500,
            latency_ms=5, url="http://127.0.0.1:9/late",
        )  # fmt: skip

    # When the newest receive's last attempt fails it (its message goes to the dead-letter
    # queue), and then an older copy of the message, whose POST was slow, records its attempt
    assert store.record_attempt(read_by_both, attempt(3), status=DeliveryStatus.FAILED)
    late = store.record_attempt(
        read_by_both, attempt(3), status=DeliveryStatus.PENDING, next_attempt_at=1
    )

    # Then the late attempt is logged, and the delivery stays failed
    assert late is False
    stored = store.delivery(event["id"], endpoint_id)
    assert stored is not None
    assert stored.status == DeliveryStatus.FAILED and stored.attempt_count == 2


def _of_payment(event: dict, pi_id: str) -> bool:
    """An event of the PaymentIntent itself or of one of its charges."""
    obj = event["data"]["object"]
    return bool(obj["id"] == pi_id or obj.get("payment_intent") == pi_id)


class SendsFailing:
    """The webhook queue, whose next send raises (SQS failing after the relay's retoken)."""

    def __init__(self, queue: Any) -> None:
        self._queue = queue
        self.failures = 1

    def send(self, message: Any, delay_seconds: int = 0) -> str:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("SQS did not answer")
        return str(self._queue.send(message, delay_seconds))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._queue, name)


@dataclass
class Unsent:
    """A real event, an endpoint that subscribed after the relay passed it, and its delivery as
    a relay run left it that died before sending the delivery's message."""

    event: Any
    endpoint: Any
    delivery: Any
    receiver: Any
    store: Any


@pytest.fixture
def unsent(api: Api, hooks: Hooks, merchant: dict, sandbox: Any) -> Unsent:
    from chalicelib.container import webhooks
    from chalicelib.domain.webhooks import Delivery, delivery_id

    pi = create_payment(api)
    event_id = next(
        e["id"]
        for e in api.get("/v1/events", params={"limit": 100}).json()["data"]
        if e["data"]["object"]["id"] == pi["id"]
    )
    sandbox.pollers.wait_idle(timeout=30)  # the relay is past the event: it opens nothing more
    receiver = hooks.receiver()
    endpoint_id = hooks.endpoint(receiver, ["payment_intent.created"])["id"]
    store, events = webhooks().worker_stores
    event, endpoint = (
        events.get(merchant["id"], event_id),
        store.endpoint(merchant["id"], endpoint_id),
    )
    assert event is not None and endpoint is not None
    delivery = Delivery(
        id=delivery_id(event_id, endpoint_id),
        merchant_id=merchant["id"],
        event_id=event_id,
        event_type=event.type,
        endpoint_id=endpoint_id,
        created=int(time.time()),
        token="first",
    )
    assert store.create_delivery(delivery)
    return Unsent(event, endpoint, delivery, receiver, store)


def dispatcher(queue: Any = None, faults: Any = None) -> Any:
    """A relay's Dispatcher on the sandbox's store and schedule."""
    from chalicelib.container import webhooks
    from chalicelib.faults import Faults
    from chalicelib.webhooks.relay import Dispatcher

    store, _ = webhooks().worker_stores
    return Dispatcher(store, queue or webhooks().queue, webhooks().schedule, faults or Faults())


def test_a_repeat_that_never_sent_its_new_message_is_not_taken_for_delivered(unsent: Unsent):
    from chalicelib.container import webhooks
    from chalicelib.domain.webhooks import Attempt, DeliveryStatus, Trigger

    # Given a delivery whose first run died before sending its message,
    # when a repeat of the batch gives it a new token, and SQS fails its send
    with pytest.raises(ConnectionError):
        dispatcher(SendsFailing(webhooks().queue)).open(unsent.event, unsent.endpoint)
    # and an attempt is logged by the first token's message, read before the new token
    attempt = Attempt(
        attempt=1, created=int(time.time()), trigger=Trigger.SCHEDULED, status_code=500,
        latency_ms=5, url=unsent.endpoint.url,
    )  # fmt: skip
    unsent.store.record_attempt(
        unsent.delivery, attempt, status=DeliveryStatus.PENDING, next_attempt_at=1
    )
    # and the batch comes a third time
    opened = dispatcher().open(unsent.event, unsent.endpoint)

    # Then the third run sends a message for the delivery, and the webhook arrives
    assert opened is not None, "the delivery was left pending with no message"
    _arrives(unsent)


def test_a_repeat_that_dies_between_its_new_token_and_its_send_is_mended_by_the_next(
    unsent: Unsent,
):
    from chalicelib.faults import Faults, InjectedCrash

    # Given a delivery whose first run died before sending its message,
    # when a repeat gives it a new token and dies before sending that token's message
    faults = Faults()
    faults.arm("relay_before_enqueue", 1)
    with pytest.raises(InjectedCrash):
        dispatcher(faults=faults).open(unsent.event, unsent.endpoint)
    token = unsent.store.delivery(unsent.event.id, unsent.endpoint.id).token
    assert token != unsent.delivery.token, "the crash came before the new token"
    # and the batch is handed over again, as a stream hands over a batch whose run failed
    opened = dispatcher().open(unsent.event, unsent.endpoint)

    # Then that run sends a message for the delivery, and the webhook arrives
    assert opened is not None, "the delivery was left pending with no message"
    _arrives(unsent)


def _arrives(unsent: Unsent) -> None:
    event_id, endpoint_id = unsent.event.id, unsent.endpoint.id
    unsent.receiver.wait_for(lambda rs: any(r.event["id"] == event_id for r in rs))
    delivered = eventually(lambda: _delivered(unsent.store, event_id, endpoint_id))
    assert delivered.dispatched is True


def _delivered(store: Any, event_id: str, endpoint_id: str) -> Any:
    from chalicelib.domain.webhooks import DeliveryStatus

    delivery = store.delivery(event_id, endpoint_id)
    assert delivery is not None and delivery.status == DeliveryStatus.SUCCEEDED, delivery
    return delivery


class Counting:
    """A store, counting the calls of one of its methods."""

    def __init__(self, store: Any, method: str) -> None:
        self._store = store
        self._method = method
        self.calls = 0

    def __getattr__(self, name: str) -> Any:
        found = getattr(self._store, name)
        if name != self._method:
            return found

        def counted(*args: Any) -> Any:
            self.calls += 1
            return found(*args)

        return counted


def test_a_batch_reads_each_endpoint_and_each_event_once_for_all_its_messages(
    api: Api, hooks: Hooks
):
    from chalicelib.container import webhooks
    from chalicelib.webhooks.delivery import Deliverer, EndpointHealth
    from chalicelib.webhooks.sender import PinnedSender

    # Given two delivered events, each to the same two endpoints
    receivers = [hooks.receiver(), hooks.receiver()]
    endpoints = {hooks.endpoint(r, ["payment_intent.created"])["id"] for r in receivers}
    created = [create_payment(api)["id"] for _ in range(2)]
    for receiver in receivers:
        receiver.wait_for(lambda rs: len(rs) >= 2)
    events = [
        e["id"]
        for e in api.get("/v1/events", params={"type": "payment_intent.created"}).json()["data"]
        if e["data"]["object"]["id"] in created
    ]
    ids = [d["id"] for event in events for d in deliveries_of(api, event)]
    assert (
        len(ids) == 4
        and {d["webhook_endpoint"] for e in events for d in deliveries_of(api, e)} == endpoints
    )
    # and a delivery handler whose stores count their reads
    store, event_store = webhooks().worker_stores
    endpoint_reads = Counting(store, "endpoint")
    event_reads = Counting(event_store, "with_deliveries")
    deliverer = Deliverer(
        endpoint_reads,
        event_reads,
        webhooks().queue,
        PinnedSender(5, allow_private=True),
        webhooks().schedule,
        EndpointHealth(endpoint_reads, disable_after_seconds=3600),
    )

    # When one batch asks for a manual attempt of each, and then a second batch for one
    def batch(delivery_ids: list[str]) -> list[dict[str, Any]]:
        return [
            {
                "messageId": f"m{i}",
                "receiptHandle": f"r{i}",
                "body": json.dumps({"delivery": d, "trigger": "manual"}),
                "attributes": {"ApproximateReceiveCount": "1"},
            }
            for i, d in enumerate(delivery_ids)
        ]

    assert deliverer.handle(batch(ids)) == []
    assert (endpoint_reads.calls, event_reads.calls) == (2, 2)
    assert deliverer.handle(batch(ids[:1])) == []

    # Then every attempt was posted, the first batch reading each endpoint and each event once
    # for its four messages, and the next batch reading them again
    for receiver in receivers:
        receiver.wait_for(lambda rs: len(rs) >= 2 + 2)
    assert (endpoint_reads.calls, event_reads.calls) == (3, 3)
    for delivery_id in ids:
        attempts = api.get(f"/v1/webhook_deliveries/{delivery_id}").json()["attempts"]
        assert attempts[-1]["trigger"] == "manual"
