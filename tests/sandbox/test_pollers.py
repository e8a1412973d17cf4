"""SQS and DynamoDB Streams pollers: Lambda event shapes and AWS delivery semantics."""

from __future__ import annotations

import json
import logging
import random
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from payflow.sandbox.event_filters import record_filter
from payflow.sandbox.pollers import (
    Duplicates,
    PollerGroup,
    SqsPoller,
    StreamPoller,
    drain,
    stream_record,
    wait_for,
)
from payflow.sandbox.provision import AwsClients


@pytest.fixture
def queue(clients: AwsClients, unique: Callable[[str], str]) -> dict[str, str]:
    """A queue with a 1 s visibility timeout whose messages reach a DLQ on the 3rd receive."""
    sqs = clients.sqs
    dlq_url = sqs.create_queue(QueueName=unique("dlq"))["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])
    redrive = {"deadLetterTargetArn": dlq_arn["Attributes"]["QueueArn"], "maxReceiveCount": 2}
    url = sqs.create_queue(
        QueueName=unique("jobs"),
        Attributes={"VisibilityTimeout": "1", "RedrivePolicy": json.dumps(redrive)},
    )["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
    return {"url": url, "arn": arn["Attributes"]["QueueArn"], "dlq_url": dlq_url}


@pytest.fixture
def table(clients: AwsClients, unique: Callable[[str], str]) -> dict[str, str]:
    name = unique("events")
    description = clients.dynamodb.create_table(
        TableName=name,
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )["TableDescription"]
    return {"name": name, "stream_arn": description["LatestStreamArn"]}


def bodies(event: dict[str, Any]) -> list[str]:
    return [record["body"] for record in event["Records"]]


def queue_depth(sqs: Any, url: str) -> int:
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(
        attributes["ApproximateNumberOfMessagesNotVisible"]
    )


# --- SQS --------------------------------------------------------------------------------------


def test_sqs_event_has_lambda_shape_and_success_deletes(
    clients: AwsClients, queue: dict[str, str]
) -> None:
    sqs = clients.sqs
    sqs.send_message(
        QueueUrl=queue["url"],
        MessageBody='{"id": "evt_1"}',
        MessageAttributes={
            "kind": {"DataType": "String", "StringValue": "payment.succeeded"},
            "blob": {"DataType": "Binary", "BinaryValue": b"\x01\x02"},
        },
    )
    events: list[dict[str, Any]] = []
    poller = SqsPoller(
        sqs, queue["url"], queue["arn"], lambda e, c: events.append(e), wait_seconds=0
    )

    assert drain(poller) == 1

    (record,) = events[0]["Records"]
    assert record["body"] == '{"id": "evt_1"}'
    assert record["eventSource"] == "aws:sqs"
    assert record["eventSourceARN"] == queue["arn"]
    assert record["awsRegion"] == "us-east-1"
    assert record["md5OfBody"] and record["messageId"] and record["receiptHandle"]
    assert record["attributes"]["ApproximateReceiveCount"] == "1"
    assert {"SentTimestamp", "SenderId", "ApproximateFirstReceiveTimestamp"} <= set(
        record["attributes"]
    )
    assert record["messageAttributes"]["kind"] == {
        "stringValue": "payment.succeeded",
        "stringListValues": [],
        "binaryListValues": [],
        "dataType": "String",
    }
    assert record["messageAttributes"]["blob"]["binaryValue"] == "AQI="
    assert queue_depth(sqs, queue["url"]) == 0
    assert poller.is_idle(poller.mark())


def test_partial_batch_failure_redelivers_only_the_failed_message(
    clients: AwsClients, queue: dict[str, str]
) -> None:
    sqs = clients.sqs
    for body in ("a", "b", "c"):
        sqs.send_message(QueueUrl=queue["url"], MessageBody=body)
    deliveries: Counter[str] = Counter()

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        failures = []
        for record in event["Records"]:
            deliveries[record["body"]] += 1
            if record["body"] == "b" and deliveries["b"] == 1:
                failures.append({"itemIdentifier": record["messageId"]})
        return {"batchItemFailures": failures}

    poller = SqsPoller(sqs, queue["url"], queue["arn"], handler, wait_seconds=1)

    # "b" returns after the 1 s visibility timeout; the others were deleted at once
    wait_for(lambda: poller.poll_once() and deliveries["b"] == 2, timeout=10)

    assert deliveries == Counter({"a": 1, "b": 2, "c": 1})
    assert queue_depth(sqs, queue["url"]) == 0


def test_a_raising_handler_deletes_nothing_and_the_redrive_policy_moves_to_the_dlq(
    clients: AwsClients, queue: dict[str, str]
) -> None:
    sqs = clients.sqs
    sqs.send_message(QueueUrl=queue["url"], MessageBody="poison")
    receive_counts: list[str] = []

    def handler(event: dict[str, Any], context: Any) -> None:
        receive_counts.extend(r["attributes"]["ApproximateReceiveCount"] for r in event["Records"])
        raise RuntimeError("endpoint down")

    poller = SqsPoller(sqs, queue["url"], queue["arn"], handler, wait_seconds=1)

    # maxReceiveCount is 2: two failed deliveries, then the queue itself moves the message
    wait_for(lambda: not poller.poll_once() and queue_depth(sqs, queue["dlq_url"]) == 1, 10)

    assert receive_counts == ["1", "2"]
    assert queue_depth(sqs, queue["url"]) == 0
    moved = sqs.receive_message(QueueUrl=queue["dlq_url"])["Messages"]
    assert [m["Body"] for m in moved] == ["poison"]
    # and each run that raised is counted by what it raised (a chaos run reports them)
    assert poller.raised.by_type == {"RuntimeError": 2}


# --- DynamoDB Streams ---------------------------------------------------------------------------


def test_stream_records_reach_the_handler_in_lambda_shape(
    clients: AwsClients, streams: Any, table: dict[str, str]
) -> None:
    ddb = clients.dynamodb
    events: list[dict[str, Any]] = []
    poller = StreamPoller(
        streams, table["stream_arn"], lambda e, c: events.append(e), starting_position="LATEST"
    )
    poller.prepare()
    ddb.put_item(TableName=table["name"], Item={"pk": {"S": "pi_1"}, "status": {"S": "processing"}})
    ddb.put_item(
        TableName=table["name"],
        Item={"pk": {"S": "pi_1"}, "status": {"S": "succeeded"}, "raw": {"B": b"\x00"}},
    )

    drain(poller)

    records = [record for event in events for record in event["Records"]]
    assert [r["eventName"] for r in records] == ["INSERT", "MODIFY"]
    insert, modify = records
    assert insert["eventSource"] == "aws:dynamodb"
    assert insert["eventVersion"] == "1.1"
    assert insert["eventSourceARN"] == table["stream_arn"]
    assert insert["awsRegion"] == "us-east-1"
    assert isinstance(insert["dynamodb"]["ApproximateCreationDateTime"], int)
    assert insert["dynamodb"]["Keys"] == {"pk": {"S": "pi_1"}}
    assert insert["dynamodb"]["StreamViewType"] == "NEW_AND_OLD_IMAGES"
    assert "OldImage" not in insert["dynamodb"]
    assert modify["dynamodb"]["OldImage"]["status"] == {"S": "processing"}
    assert modify["dynamodb"]["NewImage"]["status"] == {"S": "succeeded"}
    assert modify["dynamodb"]["NewImage"]["raw"] == {"B": "AA=="}
    assert int(modify["dynamodb"]["SequenceNumber"]) > int(insert["dynamodb"]["SequenceNumber"])
    json.dumps(events)  # exactly what a Lambda would receive: plain JSON


def test_records_read_as_they_came_are_the_events_boto3_parsing_gives(
    aws: Any, clients: AwsClients, streams: Any, table: dict[str, str]
) -> None:
    parsed = aws.client("dynamodbstreams")
    shard = parsed.describe_stream(StreamArn=table["stream_arn"])["StreamDescription"]["Shards"][0]
    iterator = {"StreamArn": table["stream_arn"], "ShardId": shard["ShardId"]}
    iterator["ShardIteratorType"] = "TRIM_HORIZON"
    item = {
        "pk": {"S": "pi_2"},
        "amount": {"N": "1099"},
        "blob": {"B": b"\x00\xffpacked"},
        "blobs": {"BS": [b"\x01", b"\x02"]},
        "tags": {"SS": ["a", "b"]},
        "nested": {"M": {"raw": {"B": b"\x07"}, "list": {"L": [{"B": b"\x08"}, {"NULL": True}]}}},
        "live": {"BOOL": False},
    }
    clients.dynamodb.put_item(TableName=table["name"], Item=item)
    clients.dynamodb.put_item(TableName=table["name"], Item={**item, "amount": {"N": "5"}})

    def events(client: Any, encoded: bool) -> list[dict[str, Any]]:
        start = client.get_shard_iterator(**iterator)["ShardIterator"]
        records = client.get_records(ShardIterator=start, Limit=10)["Records"]
        return [
            stream_record(r, table["stream_arn"], "us-east-1", encoded=encoded) for r in records
        ]

    # Both ways give the same two Lambda records, binary values base64-encoded in both
    wire, boto = events(streams, encoded=True), events(parsed, encoded=False)
    assert wire == boto
    assert [r["eventName"] for r in wire] == ["INSERT", "MODIFY"]
    assert wire[1]["dynamodb"]["OldImage"]["nested"]["M"]["raw"] == {"B": "Bw=="}


def test_a_failed_read_as_it_came_raises_a_client_error_as_boto3_would(
    streams: Any, table: dict[str, str]
) -> None:
    from botocore.exceptions import ClientError

    # moto answers an iterator it never issued with a bare 500
    with pytest.raises(ClientError) as failed:
        streams.get_records(ShardIterator="not-an-iterator-moto-issued", Limit=10)

    assert failed.value.response["Error"]["Code"] == "InternalFailure"
    assert failed.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500


def test_a_stream_filter_hands_over_only_matching_records_and_moves_past_the_rest(
    clients: AwsClients, streams: Any, table: dict[str, str]
) -> None:
    events: list[dict[str, Any]] = []
    saved: dict[str, str] = {}

    class Checkpoints:
        def load(self, consumer: str, stream_arn: str) -> dict[str, str]:
            return dict(saved)

        def save(self, consumer: str, stream_arn: str, shard_id: str, sequence: str) -> None:
            saved[shard_id] = sequence

    pattern = {"eventName": ["INSERT"], "dynamodb": {"NewImage": {"kind": {"S": ["event"]}}}}
    poller = StreamPoller(
        streams,
        table["stream_arn"],
        lambda e, c: events.append(e),
        checkpoints=Checkpoints(),
        record_filter=record_filter([json.dumps(pattern)]),
    )
    poller.prepare()
    put = clients.dynamodb.put_item
    put(TableName=table["name"], Item={"pk": {"S": "pi_1"}, "kind": {"S": "payment_intent"}})
    put(TableName=table["name"], Item={"pk": {"S": "evt_1"}, "kind": {"S": "event"}})
    put(
        TableName=table["name"],
        Item={"pk": {"S": "evt_1"}, "kind": {"S": "event"}, "n": {"N": "1"}},
    )
    drain(poller)
    handed = [r["dynamodb"]["Keys"]["pk"]["S"] for e in events for r in e["Records"]]

    # Then only the inserted event reached the handler (not the intent, not the update)
    assert handed == ["evt_1"]
    assert [r["eventName"] for e in events for r in e["Records"]] == ["INSERT"]

    # And a batch that matches nothing invokes nothing, yet the shard moves past it
    before = dict(saved)
    put(TableName=table["name"], Item={"pk": {"S": "pi_2"}, "kind": {"S": "payment_intent"}})
    drain(poller)
    assert len(events) == 1
    assert saved != before and int(next(iter(saved.values()))) > int(next(iter(before.values())))


def test_an_sqs_filter_deletes_the_messages_it_does_not_hand_over(
    clients: AwsClients, queue: dict[str, str]
) -> None:
    sqs = clients.sqs
    for kind in ("charge.succeeded", "charge.failed", "not json"):
        body = json.dumps({"type": kind}) if kind != "not json" else kind
        sqs.send_message(QueueUrl=queue["url"], MessageBody=body)
    events: list[dict[str, Any]] = []
    poller = SqsPoller(
        sqs,
        queue["url"],
        queue["arn"],
        lambda e, c: events.append(e),
        record_filter=record_filter([json.dumps({"body": {"type": ["charge.succeeded"]}})]),
    )

    drain(poller)

    assert [json.loads(r["body"]) for e in events for r in e["Records"]] == [
        {"type": "charge.succeeded"}
    ]
    assert queue_depth(sqs, queue["url"]) == 0


def test_a_failing_stream_batch_is_retried_in_order_not_lost(
    clients: AwsClients, streams: Any, table: dict[str, str]
) -> None:
    now = [0.0]
    batches: list[list[str]] = []

    def handler(event: dict[str, Any], context: Any) -> None:
        batches.append([r["dynamodb"]["Keys"]["pk"]["S"] for r in event["Records"]])
        if len(batches) == 1:
            raise RuntimeError("transient")

    poller = StreamPoller(
        streams, table["stream_arn"], handler, retry_base=1.0, clock=lambda: now[0]
    )
    poller.prepare()
    for key in ("a", "b", "c"):
        clients.dynamodb.put_item(TableName=table["name"], Item={"pk": {"S": key}})

    assert poller.poll_once()  # fails
    assert poller.raised.by_type == {"RuntimeError": 1}
    mark = poller.mark()
    assert not poller.poll_once()  # backing off: nothing delivered
    assert not poller.is_idle(mark)  # ...but not idle either
    now[0] += 1.0
    assert poller.poll_once()  # the same batch again
    assert not poller.poll_once()

    assert batches == [["a", "b", "c"], ["a", "b", "c"]]
    assert poller.is_idle(mark)


def test_a_stream_batch_whose_duplicate_fails_is_handed_over_again(
    clients: AwsClients, streams: Any, table: dict[str, str]
) -> None:
    # A run that did its work and a repeat that died halfway: the mapping retries the repeat's
    # failed invocation, it does not move past the batch (a relay repeat that gave a delivery a
    # new token and died before sending its message would otherwise strand the delivery)
    batches: list[list[str]] = []

    def handler(event: dict[str, Any], context: Any) -> None:
        batches.append([r["dynamodb"]["Keys"]["pk"]["S"] for r in event["Records"]])
        if len(batches) == 2:
            raise RuntimeError("the repeat died")

    poller = StreamPoller(streams, table["stream_arn"], handler, retry_base=0.0, duplicate_rate=1.0)
    poller.prepare()
    for key in ("a", "b"):
        clients.dynamodb.put_item(TableName=table["name"], Item={"pk": {"S": key}})

    drain(poller)

    # the batch, its failed repeat, then the batch again and its repeat; then nothing is left
    assert batches == [["a", "b"]] * 4
    assert poller.duplicates.count == 2


def test_an_sqs_batch_whose_duplicate_fails_is_deleted_by_the_first_answer(
    clients: AwsClients, queue: dict[str, str]
) -> None:
    # Two consumers had the message: the one that handled it deletes it, whatever the other did
    calls: list[list[str]] = []

    def handler(event: dict[str, Any], context: Any) -> None:
        calls.append(bodies(event))
        if len(calls) == 2:
            raise RuntimeError("the other consumer died")

    clients.sqs.send_message(QueueUrl=queue["url"], MessageBody="once")
    poller = SqsPoller(
        clients.sqs, queue["url"], queue["arn"], handler, duplicate_rate=1.0, concurrency=1
    )

    drain(poller)

    assert calls == [["once"], ["once"]]
    assert queue_depth(clients.sqs, queue["url"]) == 0


def test_stream_batch_item_failure_redelivers_from_the_failed_record(
    clients: AwsClients, streams: Any, table: dict[str, str]
) -> None:
    batches: list[list[str]] = []

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        keys = [r["dynamodb"]["Keys"]["pk"]["S"] for r in event["Records"]]
        batches.append(keys)
        if len(batches) == 1:
            failed = event["Records"][1]["dynamodb"]["SequenceNumber"]
            return {"batchItemFailures": [{"itemIdentifier": failed}]}
        return {"batchItemFailures": []}

    poller = StreamPoller(streams, table["stream_arn"], handler, retry_base=0.0)
    poller.prepare()
    for key in ("a", "b", "c"):
        clients.dynamodb.put_item(TableName=table["name"], Item={"pk": {"S": key}})

    drain(poller)

    assert batches == [["a", "b", "c"], ["b", "c"]]


def test_idle_polling_backs_off_and_resets_on_delivery(
    clients: AwsClients, streams: Any, table: dict[str, str]
) -> None:
    poller = StreamPoller(
        streams, table["stream_arn"], lambda e, c: None, idle_interval=0.1, max_idle_interval=0.5
    )
    poller.prepare()

    intervals = []
    for _ in range(4):
        poller.poll_once()
        intervals.append(poller.idle_interval)
    clients.dynamodb.put_item(TableName=table["name"], Item={"pk": {"S": "a"}})
    assert poller.poll_once()

    # moto keeps every iterator GetRecords hands out: an idle stream is polled less often
    assert intervals == [0.2, 0.4, 0.5, 0.5]
    assert poller.idle_interval == 0.1


# --- the group ----------------------------------------------------------------------------------


def test_group_logs_handler_errors_by_name_keeps_running_and_waits_idle(
    clients: AwsClients,
    streams: Any,
    table: dict[str, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen: list[str] = []

    def record_payments(event: dict[str, Any], context: Any) -> None:
        keys = [r["dynamodb"]["Keys"]["pk"]["S"] for r in event["Records"]]
        if "boom" in keys and "boom" not in seen:
            seen.append("boom")
            raise RuntimeError("first delivery fails")
        seen.extend(keys)

    poller = StreamPoller(
        streams,
        table["stream_arn"],
        record_payments,
        idle_interval=0.02,
        max_idle_interval=0.1,
        retry_base=0.05,
    )
    group = PollerGroup([poller])
    with caplog.at_level(logging.ERROR, logger="payflow.sandbox.pollers"), group:
        clients.dynamodb.put_item(TableName=table["name"], Item={"pk": {"S": "boom"}})
        group.wait_idle(timeout=10)
        clients.dynamodb.put_item(TableName=table["name"], Item={"pk": {"S": "after"}})
        group.wait_idle(timeout=10)

    assert seen == ["boom", "boom", "after"]
    assert any("record_payments failed" in message for message in caplog.messages)


def test_group_stops_promptly(clients: AwsClients, queue: dict[str, str]) -> None:
    import time

    poller = SqsPoller(clients.sqs, queue["url"], queue["arn"], lambda e, c: None, wait_seconds=1)
    group = PollerGroup([poller]).start()

    started = time.monotonic()
    group.stop()

    assert time.monotonic() - started < 3


def test_the_first_batch_goes_twice_whatever_the_draw_then_at_the_rate() -> None:
    calls: list[dict[str, Any]] = []

    def handler(event: dict[str, Any], context: Any) -> None:
        calls.append(event)

    # A rate so low that a draw would almost never duplicate
    rare = Duplicates(0.001, random.Random(1), "few-batches")
    for n in range(50):
        rare.maybe_again(handler, {"batch": n})
    assert [c["batch"] for c in calls] == [0] and rare.count == 1

    # At rate 0 nothing goes twice, at rate 1 everything does
    never, always = Duplicates(0.0, random.Random(1), "off"), Duplicates(1.0, None, "all")
    for n in range(5):
        never.maybe_again(handler, {"batch": n})
        always.maybe_again(handler, {"batch": n})
    assert never.count == 0 and always.count == 5
