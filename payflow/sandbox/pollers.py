"""Drive Lambda handlers from SQS queues and DynamoDB streams as AWS event source mappings do.

moto's own event source mappings call the function synchronously inside SendMessage/PutItem,
mangle the events and drop stream records, so the sandbox polls the APIs itself and builds the
exact Lambda event shapes.

Delivery semantics follow AWS:

- SQS: a batch is deleted when the handler returns, except the messages it lists in
  ``{"batchItemFailures": [{"itemIdentifier": messageId}]}``; nothing is deleted when it raises.
  Undeleted messages reappear after the queue's visibility timeout, and the queue's own
  RedrivePolicy moves them to the DLQ after maxReceiveCount (moto implements it); the poller
  never moves messages itself.
- DynamoDB Streams: records are delivered in order per shard, at least once. When the handler
  raises, the same records are delivered again after a backoff; with batchItemFailures the
  poller checkpoints before the first failed sequence number and re-delivers from there.
"""

from __future__ import annotations

import base64
import json
import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from payflow.sandbox.event_filters import Matcher
from payflow.sandbox.lambda_invoke import REGION, Handler, LambdaContext

logger = logging.getLogger(__name__)

Clock = Callable[[], float]
Sleep = Callable[[float], None]


class Poller(Protocol):
    """What `PollerGroup` needs from a poller."""

    name: str
    concurrency: int
    """How many threads poll it at once (1 where order matters, as on a stream shard)."""

    @property
    def idle_interval(self) -> float:
        """Seconds to wait after a poll that delivered nothing."""

    def prepare(self) -> None:
        """Position the poller (e.g. take LATEST shard iterators) before its thread starts."""

    def poll_once(self) -> bool:
        """Fetch and deliver at most one batch per source; True when something was delivered."""

    def mark(self) -> int:
        """An opaque progress marker for `is_idle`."""

    def is_idle(self, mark: int) -> bool:
        """True when everything pending when `mark` was taken has been handled."""


def failed_item_ids(response: Any, item_ids: Sequence[str], enabled: bool) -> set[str]:
    """The item ids a handler response reports as failed (ReportBatchItemFailures).

    As on AWS, a malformed report (unknown or empty identifier) fails the whole batch, and the
    report is ignored when the mapping does not enable ReportBatchItemFailures.
    """
    if not enabled or not isinstance(response, Mapping):
        return set()
    failures = response.get("batchItemFailures")
    if not failures:
        return set()
    known = set(item_ids)
    failed: set[str] = set()
    for failure in failures:
        identifier = failure.get("itemIdentifier") if isinstance(failure, Mapping) else None
        if not identifier or identifier not in known:
            logger.warning("invalid batchItemFailures entry %r: failing the whole batch", failure)
            return known
        failed.add(identifier)
    return failed


class Duplicates:
    """Hands a delivered batch to the handler a second time with probability `rate`: the
    duplicate deliveries that SQS and DynamoDB Streams are allowed to make, on demand. The
    first batch goes twice whatever the draw, so a run of any size redelivers to every handler
    (a function that sees few batches, such as ResumePayments, could otherwise draw none). The
    second call's answer is ignored (the first one's decides what is deleted or checkpointed).
    If it raises, `maybe_again` says so: an SQS poller logs it (two consumers had the message,
    and the other one's answer deletes it), a stream poller hands the batch over again, as an
    event source mapping retries a failed invocation instead of moving past it."""

    def __init__(self, rate: float, rng: random.Random | None, name: str) -> None:
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"duplicate rate must be within [0, 1], not {rate}")
        self.rate = rate
        self.rng = rng or random.Random()
        self.name = name
        self.count = 0
        self._batches = 0
        self._lock = threading.Lock()

    def maybe_again(self, handler: Handler, event: Mapping[str, Any]) -> bool:
        """Maybe hand `event` over a second time; True when that second call raised."""
        if self.rate <= 0.0:
            return False
        with self._lock:
            self._batches += 1
            if self._batches > 1 and self.rng.random() >= self.rate:
                return False
            self.count += 1
        try:
            handler(event, LambdaContext(self.name))
        except Exception:
            logger.warning("%s failed on a duplicated batch", self.name, exc_info=True)
            return True
        return False


class Raised:
    """How often a poller's handler raised, by exception type (a chaos run reports them: the
    crashes it injected, and anything else a handler died of)."""

    def __init__(self) -> None:
        self.by_type: Counter[str] = Counter()
        self._lock = threading.Lock()

    def note(self, error: BaseException) -> None:
        with self._lock:
            self.by_type[type(error).__name__] += 1


def _handler_name(handler: Handler) -> str:
    return str(getattr(handler, "__name__", type(handler).__name__))


# --- SQS ---------------------------------------------------------------------------------------


def sqs_record(message: Mapping[str, Any], queue_arn: str, region: str) -> dict[str, Any]:
    """One record of a Lambda SQS event, from a ReceiveMessage message."""
    record: dict[str, Any] = {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": dict(message.get("Attributes") or {}),
        "messageAttributes": {
            name: _lambda_message_attribute(value)
            for name, value in (message.get("MessageAttributes") or {}).items()
        },
        "md5OfBody": message["MD5OfBody"],
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }
    if message.get("MD5OfMessageAttributes"):
        record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
    return record


def _lambda_message_attribute(value: Mapping[str, Any]) -> dict[str, Any]:
    # Lambda spells the attribute fields in camelCase and always sends both list fields.
    shaped: dict[str, Any] = {
        "stringListValues": list(value.get("StringListValues") or []),
        "binaryListValues": [_b64(item) for item in value.get("BinaryListValues") or []],
        "dataType": value["DataType"],
    }
    if "StringValue" in value:
        shaped["stringValue"] = value["StringValue"]
    if "BinaryValue" in value:
        shaped["binaryValue"] = _b64(value["BinaryValue"])
    return shaped


def _b64(data: bytes | str) -> str:
    raw = data.encode() if isinstance(data, str) else data
    return base64.b64encode(raw).decode("ascii")


def backoff(minimum: float, maximum: float, quiet_polls: int) -> float:
    """The pause after `quiet_polls` consecutive empty polls: doubling from `minimum`."""
    return min(minimum * 2 ** min(quiet_polls, 30), max(minimum, maximum))


SQS_CONCURRENCY = 5
"""Batches of one queue handled at once: the five pollers Lambda's SQS event source starts with."""


class SqsPoller:
    """Receive batches from one queue and hand them to a Lambda handler.

    Short polls with an idle backoff rather than long polling: while moto holds a long poll it
    rescans the whole queue about a hundred times a second (measured: ~650 ms of CPU per
    1-second ReceiveMessage with a few delayed retries queued), which starved the sandbox.

    `concurrency` threads poll the queue at once, each handling its own batch, as Lambda's SQS
    event source runs five batches at once to begin with. With one, a backlog of webhooks drained
    ten at a time, whatever the size of the queue.
    """

    def __init__(
        self,
        sqs: Any,
        queue_url: str,
        queue_arn: str,
        handler: Handler,
        *,
        batch_size: int = 10,
        wait_seconds: int = 0,
        report_batch_item_failures: bool = True,
        name: str | None = None,
        region: str = REGION,
        idle_interval: float = 0.05,
        max_idle_interval: float = 0.5,
        duplicate_rate: float = 0.0,
        rng: random.Random | None = None,
        concurrency: int = SQS_CONCURRENCY,
        record_filter: Matcher | None = None,
    ) -> None:
        self.sqs = sqs
        self.record_filter = record_filter
        """The mapping's FilterCriteria (`event_filters.record_filter`); None passes all."""
        self.concurrency = concurrency
        self.queue_url = queue_url
        self.queue_arn = queue_arn
        self.handler = handler
        self.batch_size = batch_size
        self.wait_seconds = wait_seconds
        self.report_batch_item_failures = report_batch_item_failures
        self.name = name or _handler_name(handler)
        self.region = region
        self.min_idle_interval = idle_interval
        self.max_idle_interval = max_idle_interval
        self._quiet_polls = 0
        self.duplicates = Duplicates(duplicate_rate, rng, self.name)
        self.raised = Raised()

    @property
    def idle_interval(self) -> float:
        """Doubles with every consecutive empty poll, up to `max_idle_interval`."""
        return backoff(self.min_idle_interval, self.max_idle_interval, self._quiet_polls)

    def prepare(self) -> None:
        """Nothing to position: a queue has no starting point."""

    def poll_once(self) -> bool:
        """Receive one batch, run the handler, delete what succeeded."""
        messages = self._receive()
        self._quiet_polls = 0 if messages else self._quiet_polls + 1
        if not messages:
            return False
        records = [sqs_record(m, self.queue_arn, self.region) for m in messages]
        if self.record_filter is not None:
            # As Lambda does: a message no pattern matches is deleted, never handed over.
            matched = {r["messageId"] for r in records if self.record_filter(r)}
            self._delete([m for m in messages if m["MessageId"] not in matched])
            messages = [m for m in messages if m["MessageId"] in matched]
            records = [r for r in records if r["messageId"] in matched]
            if not messages:
                return True
        ids = [message["MessageId"] for message in messages]
        event = {"Records": records}
        try:
            response = self.handler(event, LambdaContext(self.name))
        except Exception as error:
            self.raised.note(error)
            logger.exception(
                "%s failed on %d SQS message(s) from %s; they return after the visibility timeout",
                self.name,
                len(messages),
                self.queue_arn,
            )
            return True
        # At least once: the same batch again, before anything is deleted (chaos runs).
        self.duplicates.maybe_again(self.handler, event)
        failed = failed_item_ids(response, ids, self.report_batch_item_failures)
        self._delete([m for m in messages if m["MessageId"] not in failed])
        return True

    def mark(self) -> int:
        return 0

    def is_idle(self, mark: int) -> bool:
        """True when the queue holds no message at all: visible, in flight or delayed."""
        names = [
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed",
        ]
        attributes = self.sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=names)
        return all(int(attributes["Attributes"].get(n, 0)) == 0 for n in names)

    def _receive(self) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = []
        wait = self.wait_seconds
        # ReceiveMessage returns at most 10; larger batches take several calls, only the first
        # of which waits.
        while len(messages) < self.batch_size:
            wanted = min(10, self.batch_size - len(messages))
            received = self.sqs.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=wanted,
                WaitTimeSeconds=wait,
                MessageSystemAttributeNames=["All"],
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            messages.extend(received)
            if len(received) < wanted:
                break
            wait = 0
        return messages

    def _delete(self, messages: Sequence[Mapping[str, Any]]) -> None:
        for start in range(0, len(messages), 10):
            chunk = messages[start : start + 10]
            entries = [
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chunk)
            ]
            response = self.sqs.delete_message_batch(QueueUrl=self.queue_url, Entries=entries)
            for failure in response.get("Failed", []):
                logger.warning("%s could not delete a message: %s", self.name, failure)


# --- DynamoDB Streams ---------------------------------------------------------------------------


def stream_record(
    record: Mapping[str, Any], stream_arn: str, region: str, *, encoded: bool = False
) -> dict[str, Any]:
    """One record of a Lambda DynamoDB Streams event, from a GetRecords record.

    Adds what moto leaves out or shapes differently: eventSourceARN, eventVersion 1.1,
    ApproximateCreationDateTime as epoch seconds (Chalice's wrapper needs a number) and binary
    attribute values base64-encoded as in the Lambda event JSON. `encoded` says the record is
    GetRecords' JSON as it came (`WireStreams`), whose binary values are base64 already.
    """
    source = record["dynamodb"]
    created = source.get("ApproximateCreationDateTime")
    attributes = dict if encoded else _json_attributes
    dynamodb: dict[str, Any] = {
        "ApproximateCreationDateTime": _epoch_seconds(created),
        "Keys": attributes(source.get("Keys") or {}),
        "SequenceNumber": source["SequenceNumber"],
        "SizeBytes": source.get("SizeBytes", 0),
        "StreamViewType": source.get("StreamViewType"),
    }
    for image in ("NewImage", "OldImage"):
        if image in source:
            dynamodb[image] = attributes(source[image])
    shaped: dict[str, Any] = {
        "eventID": record["eventID"],
        "eventName": record["eventName"],
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": region,
        "dynamodb": dynamodb,
        "eventSourceARN": stream_arn,
    }
    if "userIdentity" in record:
        shaped["userIdentity"] = record["userIdentity"]
    return shaped


def _epoch_seconds(value: Any) -> int:
    if isinstance(value, datetime):
        return int(value.timestamp())
    if value is None:
        return int(time.time())
    return int(value)


def _json_attributes(item: Mapping[str, Any]) -> dict[str, Any]:
    return {name: _json_attribute(value) for name, value in item.items()}


def _json_attribute(value: Mapping[str, Any]) -> dict[str, Any]:
    # boto3 decodes B/BS to bytes; the Lambda event carries them base64-encoded.
    (kind, data), *_ = value.items()
    if kind == "B":
        return {"B": _b64(data)}
    if kind == "BS":
        return {"BS": [_b64(item) for item in data]}
    if kind == "M":
        return {"M": _json_attributes(data)}
    if kind == "L":
        return {"L": [_json_attribute(item) for item in data]}
    return {kind: data}


class WireStreams:
    """A DynamoDB Streams client whose GetRecords returns the response's JSON as it came.

    The stream pollers read every record three times (one poller per function), and botocore's
    parsing of GetRecords was about a quarter of the handler process's CPU in a chaos run: the
    wire JSON is already the Lambda event's shape but for a few fields (`stream_record` with
    `encoded`). Every other call, and the errors, are the boto3 client's.
    """

    encoded = True
    TARGET = "DynamoDBStreams_20120810.GetRecords"

    def __init__(self, client: Any, endpoint_url: str) -> None:
        import urllib3

        self._client = client
        self.exceptions = client.exceptions
        self._url = endpoint_url.rstrip("/") + "/"
        self._http = urllib3.PoolManager(maxsize=4, retries=False, timeout=30.0)
        region = client.meta.region_name
        self._headers = {
            "Content-Type": "application/x-amz-json-1.0",
            "X-Amz-Target": self.TARGET,
            # moto picks the service from the credential scope, as boto3 would sign it.
            "Authorization": (
                f"AWS4-HMAC-SHA256 Credential=sandbox/20260101/{region}/dynamodb/aws4_request,"
                " SignedHeaders=host, Signature=0"
            ),
        }

    def get_records(self, *, ShardIterator: str, Limit: int = 1000) -> dict[str, Any]:
        """GetRecords; raises the client's modeled exceptions (ExpiredIteratorException...)."""
        body = json.dumps({"ShardIterator": ShardIterator, "Limit": Limit})
        response = self._http.request("POST", self._url, body=body, headers=self._headers)
        try:
            answer = json.loads(response.data or b"{}")
        except ValueError:  # moto's 500 page for an error it did not model
            answer = {}
        if response.status >= 400:
            code = str(answer.get("__type", "")).rpartition("#")[2] or "InternalFailure"
            error = {
                "Error": {
                    "Code": code,
                    "Message": answer.get("message", answer.get("Message", "")),
                },
                "ResponseMetadata": {"HTTPStatusCode": response.status},
            }
            raise self.exceptions.from_code(code)(error, "GetRecords")
        return answer  # type: ignore[no-any-return]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


class CheckpointStore(Protocol):
    """Where a stream poller's positions outlive its process (aws.StreamCheckpoints)."""

    def load(self, consumer: str, stream_arn: str) -> dict[str, str]:
        """Shard id -> sequence number of the last record `consumer` handled."""

    def save(self, consumer: str, stream_arn: str, shard_id: str, sequence_number: str) -> None:
        """Remember that `consumer` handled the shard up to `sequence_number`."""


@dataclass
class _Shard:
    shard_id: str
    iterator: str | None = None
    checkpoint: str | None = None
    """Sequence number of the last record handled successfully."""
    retry_at: float = 0.0
    attempts: int = 0
    finished: bool = False
    """A closed shard read to its end."""


class StreamPoller:
    """Read a DynamoDB stream shard by shard and hand batches to a Lambda handler.

    `clock` drives the retry backoff (``min(retry_base * 2**attempt, retry_max)`` seconds) and
    the periodic DescribeStream that picks up new shards.

    Idle polling backs off from `idle_interval` to `max_idle_interval`: moto keeps every shard
    iterator it ever issued (about 2 KiB per GetRecords, measured), so polling an idle stream
    4 times a second as AWS does would grow the sandbox by ~28 MiB an hour per stream.

    With `checkpoints` (a durable sandbox) the position of each shard is saved after every
    batch handled, before the poller moves on, and read back on `prepare`: after a restart the
    poller goes on from there, and a shard it never read starts at TRIM_HORIZON, since records
    written before a crash may not have been handled yet.
    """

    concurrency = 1
    """One thread: a shard's records are handed over in order, one batch at a time."""

    def __init__(
        self,
        streams: Any,
        stream_arn: str,
        handler: Handler,
        *,
        batch_size: int = 100,
        starting_position: str = "TRIM_HORIZON",
        report_batch_item_failures: bool = True,
        name: str | None = None,
        region: str = REGION,
        idle_interval: float = 0.05,
        max_idle_interval: float = 1.0,
        retry_base: float = 0.2,
        retry_max: float = 5.0,
        shard_refresh_seconds: float = 10.0,
        clock: Clock = time.monotonic,
        duplicate_rate: float = 0.0,
        rng: random.Random | None = None,
        checkpoints: CheckpointStore | None = None,
        record_filter: Matcher | None = None,
    ) -> None:
        if starting_position not in ("TRIM_HORIZON", "LATEST"):
            raise ValueError(f"unsupported starting position {starting_position!r}")
        self.streams = streams
        self._encoded = bool(getattr(streams, "encoded", False))
        """GetRecords answers as they came (`WireStreams`), binary values base64 already."""
        self.stream_arn = stream_arn
        self.handler = handler
        self.record_filter = record_filter
        """The mapping's FilterCriteria (`event_filters.record_filter`); None passes all."""
        self.batch_size = batch_size
        self.starting_position = starting_position
        self.report_batch_item_failures = report_batch_item_failures
        self.name = name or _handler_name(handler)
        self.region = region
        self.min_idle_interval = idle_interval
        self.max_idle_interval = max(idle_interval, max_idle_interval)
        self._quiet_polls = 0
        self.retry_base = retry_base
        self.retry_max = retry_max
        self.shard_refresh_seconds = shard_refresh_seconds
        self._clock = clock
        self._shards: dict[str, _Shard] = {}
        self._next_refresh = 0.0
        self._passes = 0
        self._last_quiet_pass = -1
        self._lock = threading.Lock()
        self.duplicates = Duplicates(duplicate_rate, rng, self.name)
        self.raised = Raised()
        self.checkpoints = checkpoints
        if checkpoints is not None:
            self.starting_position = "TRIM_HORIZON"

    def prepare(self) -> None:
        """List the shards and take their iterators at their checkpoint or the starting
        position."""
        with self._lock:
            if self.checkpoints is not None:
                saved = self.checkpoints.load(self.name, self.stream_arn)
                for shard_id, sequence_number in saved.items():
                    self._shards[shard_id] = _Shard(shard_id, checkpoint=sequence_number)
            self._refresh_shards(self.starting_position)

    def poll_once(self) -> bool:
        """One GetRecords per readable shard, each non-empty batch handed to the handler."""
        with self._lock:
            self._passes += 1
            this_pass = self._passes
            now = self._clock()
            if now >= self._next_refresh:
                # Shards found after start are children of split shards: read them from the start.
                self._refresh_shards("TRIM_HORIZON")
            delivered = False
            waiting = False
            for shard in list(self._shards.values()):
                if shard.finished:
                    continue
                if now < shard.retry_at:
                    waiting = True
                    continue
                if self._poll_shard(shard):
                    delivered = True
                    if shard.attempts:
                        waiting = True
            if not delivered and not waiting:
                self._last_quiet_pass = this_pass
            self._quiet_polls = 0 if delivered else self._quiet_polls + 1
            return delivered

    @property
    def idle_interval(self) -> float:
        """Doubles with every consecutive empty poll, up to `max_idle_interval`."""
        return backoff(self.min_idle_interval, self.max_idle_interval, self._quiet_polls)

    def mark(self) -> int:
        with self._lock:
            return self._passes

    def is_idle(self, mark: int) -> bool:
        """True once a whole pass that started after `mark` found nothing to deliver or retry."""
        return self._last_quiet_pass > mark

    def _poll_shard(self, shard: _Shard) -> bool:
        if shard.iterator is None:
            shard.iterator = self._iterator(shard, self._resume_position(shard))
        try:
            response = self.streams.get_records(ShardIterator=shard.iterator, Limit=self.batch_size)
        except self.streams.exceptions.ExpiredIteratorException:
            shard.iterator = self._iterator(shard, self._resume_position(shard))
            response = self.streams.get_records(ShardIterator=shard.iterator, Limit=self.batch_size)
        records = response.get("Records", [])
        if not records:
            shard.iterator = response.get("NextShardIterator")
            shard.finished = shard.iterator is None
            return False
        sequence_numbers = [r["dynamodb"]["SequenceNumber"] for r in records]
        shaped = [
            stream_record(r, self.stream_arn, self.region, encoded=self._encoded) for r in records
        ]
        if self.record_filter is not None:
            # As Lambda does: records no pattern matches count as handled; none, no invocation.
            shaped = [r for r in shaped if self.record_filter(r)]
            if not shaped:
                self._handled(shard, sequence_numbers[-1], response)
                return True
        event = {"Records": shaped}
        try:
            response_body = self.handler(event, LambdaContext(self.name))
        except Exception as error:
            self.raised.note(error)
            logger.exception(
                "%s failed on %d stream record(s) from %s (attempt %d); retrying the batch",
                self.name,
                len(records),
                shard.shard_id,
                shard.attempts + 1,
            )
            self._retry_from(shard, sequence_numbers[0])
            return True
        # At least once: the same batch again, as a retried or replayed shard would (chaos).
        if self.duplicates.maybe_again(self.handler, event):
            # The last invocation failed: the mapping retries the batch, whatever came before.
            self._retry_from(shard, sequence_numbers[0])
            return True
        handed = [r["dynamodb"]["SequenceNumber"] for r in shaped]
        failed = failed_item_ids(response_body, handed, self.report_batch_item_failures)
        if failed:
            first = next(i for i, seq in enumerate(sequence_numbers) if seq in failed)
            if first > 0:
                self._save(shard, sequence_numbers[first - 1])
                shard.checkpoint = sequence_numbers[first - 1]
            logger.warning(
                "%s reported %s as failed; re-delivering from there",
                self.name,
                sequence_numbers[first],
            )
            self._retry_from(shard, sequence_numbers[first])
            return True
        self._handled(shard, sequence_numbers[-1], response)
        return True

    def _handled(self, shard: _Shard, last: str, response: Mapping[str, Any]) -> None:
        """Move past a batch handled up to `last`, the GetRecords `response` it came in."""
        # Saved first: if saving fails, the batch comes again (at least once), never skipped.
        self._save(shard, last)
        shard.checkpoint = last
        shard.attempts = 0
        shard.retry_at = 0.0
        shard.iterator = response.get("NextShardIterator")
        shard.finished = shard.iterator is None

    def _save(self, shard: _Shard, sequence_number: str) -> None:
        if self.checkpoints is not None:
            self.checkpoints.save(self.name, self.stream_arn, shard.shard_id, sequence_number)

    def _retry_from(self, shard: _Shard, sequence_number: str) -> None:
        shard.attempts += 1
        delay = min(self.retry_base * 2 ** (shard.attempts - 1), self.retry_max)
        shard.retry_at = self._clock() + delay
        shard.iterator = self._iterator(shard, ("AT_SEQUENCE_NUMBER", sequence_number))

    def _resume_position(self, shard: _Shard) -> tuple[str, str | None]:
        if shard.checkpoint is not None:
            return ("AFTER_SEQUENCE_NUMBER", shard.checkpoint)
        return (self.starting_position, None)

    def _iterator(self, shard: _Shard, position: tuple[str, str | None]) -> str:
        kind, sequence_number = position
        request: dict[str, Any] = {
            "StreamArn": self.stream_arn,
            "ShardId": shard.shard_id,
            "ShardIteratorType": kind,
        }
        if sequence_number is not None:
            request["SequenceNumber"] = sequence_number
        return str(self.streams.get_shard_iterator(**request)["ShardIterator"])

    def _refresh_shards(self, position_for_new: str) -> None:
        self._next_refresh = self._clock() + self.shard_refresh_seconds
        for shard_id in self._list_shards():
            if shard_id not in self._shards:
                shard = _Shard(shard_id)
                shard.iterator = self._iterator(shard, (position_for_new, None))
                self._shards[shard_id] = shard

    def _list_shards(self) -> Iterable[str]:
        request: dict[str, Any] = {"StreamArn": self.stream_arn}
        while True:
            description = self.streams.describe_stream(**request)["StreamDescription"]
            for shard in description.get("Shards", []):
                yield shard["ShardId"]
            last = description.get("LastEvaluatedShardId")
            if not last:
                return
            request["ExclusiveStartShardId"] = last


# --- running them -------------------------------------------------------------------------------


def drain(poller: Poller, max_rounds: int = 1000) -> int:
    """Poll in the calling thread until a poll delivers nothing; returns the batches delivered.

    Messages waiting out a visibility timeout or a retry backoff are not waited for.
    """
    delivered = 0
    for _ in range(max_rounds):
        if not poller.poll_once():
            break
        delivered += 1
    return delivered


def wait_for(
    predicate: Callable[[], bool],
    timeout: float,
    *,
    interval: float = 0.05,
    clock: Clock = time.monotonic,
    sleep: Sleep = time.sleep,
) -> None:
    """Wait until `predicate()` is true; raises TimeoutError after `timeout` seconds."""
    deadline = clock() + timeout
    while not predicate():
        if clock() >= deadline:
            raise TimeoutError(f"condition not met within {timeout} s")
        sleep(interval)


class PollerGroup:
    """Run pollers on daemon threads; a failing handler or AWS call is logged, never fatal."""

    def __init__(
        self,
        pollers: Iterable[Poller] = (),
        *,
        error_backoff: float = 1.0,
        clock: Clock = time.monotonic,
        sleep: Sleep = time.sleep,
    ) -> None:
        self.pollers: list[Poller] = list(pollers)
        self.error_backoff = error_backoff
        self._clock = clock
        self._sleep = sleep
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def add(self, poller: Poller) -> None:
        """Add a poller; it starts with the next `start()`."""
        self.pollers.append(poller)

    def start(self) -> PollerGroup:
        """Prepare every poller in this thread (so LATEST means now), then start their threads."""
        self._stop.clear()
        for poller in self.pollers:
            poller.prepare()
        self._threads = [
            threading.Thread(target=self._run, args=(p,), name=f"poller-{p.name}-{i}", daemon=True)
            for p in self.pollers
            for i in range(max(1, p.concurrency))
        ]
        for thread in self._threads:
            thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Signal every poller and wait for the threads (an SQS long poll may finish first)."""
        self._stop.set()
        deadline = self._clock() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - self._clock()))
        alive = [t.name for t in self._threads if t.is_alive()]
        if alive:
            logger.warning("pollers still running after %.1f s: %s", timeout, alive)
        self._threads = []

    def wait_idle(self, timeout: float = 10.0, interval: float = 0.05) -> None:
        """Wait until every poller has handled what was pending when called.

        Raises TimeoutError naming the pollers that are still busy.
        """
        marks = [(poller, poller.mark()) for poller in self.pollers]
        deadline = self._clock() + timeout
        while True:
            busy = [poller.name for poller, mark in marks if not poller.is_idle(mark)]
            if not busy:
                return
            if self._clock() >= deadline:
                raise TimeoutError(f"pollers still busy after {timeout} s: {busy}")
            self._sleep(interval)

    def __enter__(self) -> PollerGroup:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _run(self, poller: Poller) -> None:
        while not self._stop.is_set():
            try:
                delivered = poller.poll_once()
            except Exception:
                logger.exception(
                    "poller %s failed; retrying in %.1f s", poller.name, self.error_backoff
                )
                self._stop.wait(self.error_backoff)
                continue
            if not delivered and poller.idle_interval > 0:
                self._stop.wait(poller.idle_interval)
