"""moto's JSON requests served without Flask (payflow/sandbox/moto_dispatch.py) get the answers
moto's Flask apps give.

Both WSGI apps run in this process, each in a world of its own: the same scenario of boto3
calls goes to moto's Flask dispatcher in one region and to `JsonProtocolDispatch` in another
(moto's state is per region). Every exchange is recorded as it left the app (status line,
headers, body) and compared, the region's name and the values moto makes up (request ids,
message ids, timestamps) set aside. botocore reads both, its crc32 check included.
"""

from __future__ import annotations

import io
import json
import uuid
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ClientError
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.test import EnvironBuilder

from payflow.sandbox.moto_dispatch import JsonProtocolDispatch, _plain_answer

ENDPOINT = "http://127.0.0.1:4566"
# The same length: a name's length shows in Content-Length.
FLASK_REGION, FAST_REGION = "eu-west-1", "eu-west-3"
VOLATILE_HEADERS = {"x-amzn-requestid", "x-amz-crc32", "content-length"}
VOLATILE_FIELDS = {
    "MessageId",
    "ReceiptHandle",
    "CreationDateTime",
    "ApproximateCreationDateTime",
    "CreationRequestDateTime",
    "StreamLabel",
    "LatestStreamLabel",
    "StreamArn",
    "LatestStreamArn",
    "ShardIterator",
    "NextShardIterator",
    "eventID",
    "TableId",
    "CreatedTimestamp",
    "LastModifiedTimestamp",
    "SentTimestamp",
    "ApproximateFirstReceiveTimestamp",
    "StartingSequenceNumber",
    "SequenceNumber",
    "ShardId",
    "SizeBytes",  # of a stream record, its timestamps included
}


@dataclass
class Exchange:
    """One request as the app answered it."""

    target: str
    status: str
    headers: list[tuple[str, str]]
    body: bytes


class CountingDispatcher(DomainDispatcherApplication):
    """moto's dispatcher, noting the target of every request it answers itself."""

    def __init__(self) -> None:
        super().__init__(create_backend_app)
        self.answered: list[str] = []

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        self.answered.append(environ.get("HTTP_X_AMZ_TARGET", environ.get("PATH_INFO", "")))
        return super().__call__(environ, start_response)


class _Body(io.BytesIO):
    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.getvalue()


@dataclass
class World:
    """boto3 clients whose requests go straight to `app` (no socket), signed for `region`."""

    app: Any
    region: str
    origin: str | None
    exchanges: list[Exchange] = field(default_factory=list)

    def client(self, service: str) -> Any:
        client = boto3.client(
            service,
            region_name=self.region,
            endpoint_url=ENDPOINT,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        client.meta.events.register("before-send", self._send)
        return client

    def _send(self, request: Any, **_: Any) -> AWSResponse:
        headers = [
            (name, value.decode() if isinstance(value, bytes) else value)
            for name, value in request.headers.items()
        ]
        if self.origin:
            headers.append(("Origin", self.origin))
        exchange = self.call(request.method, request.url[len(ENDPOINT) :], headers, request.body)
        return AWSResponse(
            request.url,
            int(exchange.status.split()[0]),
            dict(exchange.headers),
            _Body(exchange.body),
        )

    def call(self, method: str, path: str, headers: list[tuple[str, str]], body: Any) -> Exchange:
        """One request through the app, recorded."""
        environ = EnvironBuilder(
            method=method, base_url=ENDPOINT, path=path or "/", headers=headers, data=body or b""
        ).get_environ()
        started: list[Any] = []
        answer = b"".join(
            self.app(environ, lambda status, hs, exc=None: started.extend([status, hs]))
        )
        target = dict(headers).get("X-Amz-Target", path)
        exchange = Exchange(target, started[0], list(started[1]), answer)
        self.exchanges.append(exchange)
        return exchange


def outcome(call: Callable[[], Any]) -> Any:
    """What boto3 made of an answer: the parsed result or the error, metadata left out."""
    try:
        result = call()
    except ClientError as error:
        result = {"error": error.response}
    result.pop("ResponseMetadata", None)
    result.get("error", {}).pop("ResponseMetadata", None)
    return result


def scenario(world: World, name: str) -> list[Any]:
    """The calls the sandbox makes most, answers and errors both, on resources named `name`;
    what boto3 parsed."""
    dynamodb, streams, sqs = (world.client(s) for s in ("dynamodb", "dynamodbstreams", "sqs"))
    table = name
    key = {"pk": {"S": "pi_1"}, "sk": {"S": "intent"}}
    fail_if_present = {"ConditionExpression": "attribute_not_exists(pk)"}
    got: list[Any] = []
    run = got.append
    dynamodb.create_table(
        TableName=table,
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"} for n in ("pk", "sk")],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )
    item = key | {"status": {"S": "requires_confirmation"}, "amount": {"N": "1099"}}
    run(outcome(lambda: dynamodb.put_item(TableName=table, Item=item, **fail_if_present)))
    run(
        outcome(
            lambda: dynamodb.put_item(
                TableName=table,
                Item=item,
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
                **fail_if_present,
            )
        )
    )
    run(outcome(lambda: dynamodb.get_item(TableName=table, Key=key, ConsistentRead=True)))
    run(outcome(lambda: dynamodb.get_item(TableName=table, Key=key | {"sk": {"S": "none"}})))
    transition = {
        "UpdateExpression": "SET #s = :to ADD amount :one",
        "ConditionExpression": "#s = :from",
        "ExpressionAttributeNames": {"#s": "status"},
        "ExpressionAttributeValues": {
            ":from": {"S": "requires_confirmation"},
            ":to": {"S": "succeeded"},
            ":one": {"N": "1"},
        },
    }
    for _ in range(2):  # applied, then ConditionalCheckFailed with the item as it stands
        run(
            outcome(
                lambda: dynamodb.update_item(
                    TableName=table,
                    Key=key,
                    ReturnValues="ALL_NEW",
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                    **transition,
                )
            )
        )
    for n in range(5):
        dynamodb.put_item(TableName=table, Item={"pk": {"S": "acct"}, "sk": {"S": f"e{n}"}})
    page: dict[str, Any] = {"LastEvaluatedKey": None}
    while "LastEvaluatedKey" in page:
        start = {"ExclusiveStartKey": page["LastEvaluatedKey"]} if page["LastEvaluatedKey"] else {}
        page = dynamodb.query(
            TableName=table,
            KeyConditionExpression="pk = :p",
            ExpressionAttributeValues={":p": {"S": "acct"}},
            Limit=2,
            **start,
        )
        run(outcome(lambda page=page: page))
    run(
        outcome(
            lambda: dynamodb.transact_write_items(
                TransactItems=[
                    {"Put": {"TableName": table, "Item": {"pk": {"S": "new"}, "sk": {"S": "x"}}}},
                    {"ConditionCheck": {"TableName": table, "Key": key, **fail_if_present}},
                ]
            )
        )
    )
    run(outcome(lambda: dynamodb.get_item(TableName=table, Key={"pk": {"S": "pi_1"}})))
    run(outcome(lambda: dynamodb.get_item(TableName=f"{table}-missing", Key=key)))
    stream_arn = dynamodb.describe_table(TableName=table)["Table"]["LatestStreamArn"]
    description = streams.describe_stream(StreamArn=stream_arn)
    run(outcome(lambda: description))
    iterator = streams.get_shard_iterator(
        StreamArn=stream_arn,
        ShardId=description["StreamDescription"]["Shards"][0]["ShardId"],
        ShardIteratorType="TRIM_HORIZON",
    )["ShardIterator"]
    run(outcome(lambda: streams.get_records(ShardIterator=iterator)))
    queue = sqs.create_queue(QueueName=name, Attributes={"VisibilityTimeout": "30"})["QueueUrl"]
    run(outcome(lambda: sqs.send_message(QueueUrl=queue, MessageBody='{"event": "evt_1"}')))
    received = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)
    run(outcome(lambda: received))
    handle = received["Messages"][0]["ReceiptHandle"]
    run(outcome(lambda: sqs.delete_message(QueueUrl=queue, ReceiptHandle=handle)))
    run(outcome(lambda: sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["All"])))
    run(outcome(lambda: sqs.get_queue_url(QueueName=f"{name}-missing")))
    run(outcome(lambda: sqs.send_message(QueueUrl=f"{queue}-missing", MessageBody="x")))
    return got


def _normal(value: Any, region: str) -> Any:
    """`value` with its world's region named REGION and moto's made-up values masked."""
    if isinstance(value, dict):
        return {
            k: "<volatile>" if k in VOLATILE_FIELDS else _normal(v, region)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_normal(v, region) for v in value]
    if isinstance(value, str):
        return value.replace(region, "REGION")
    return value


def _comparable(exchange: Exchange, region: str) -> dict[str, Any]:
    headers = dict((name.lower(), value) for name, value in exchange.headers)
    if "x-amz-crc32" in headers:
        # botocore checks it against the body: it must be right in both.
        assert headers["x-amz-crc32"] == str(zlib.crc32(exchange.body)), exchange.target
    assert headers["content-length"] == str(len(exchange.body)), exchange.target
    try:
        body = json.loads(exchange.body)
    except ValueError:
        body = exchange.body.decode()
    return {
        "target": exchange.target,
        "status": exchange.status,
        "headers": [
            (name, "<volatile>" if name.lower() in VOLATILE_HEADERS else _normal(value, region))
            for name, value in exchange.headers
        ],
        "body": _normal(body, region),
    }


@pytest.fixture
def fallback() -> CountingDispatcher:
    return CountingDispatcher()


@pytest.fixture
def fast(fallback: CountingDispatcher) -> JsonProtocolDispatch:
    return JsonProtocolDispatch(fallback)


@pytest.mark.parametrize("origin", [None, "http://127.0.0.1:5173"])
def test_json_requests_get_flask_answers_without_flask(
    fast: JsonProtocolDispatch, fallback: CountingDispatcher, origin: str | None
) -> None:
    # Given the same scenario in two worlds, one through moto's Flask apps
    flask_world = World(DomainDispatcherApplication(create_backend_app), FLASK_REGION, origin)
    fast_world = World(fast, FAST_REGION, origin)

    # When each runs it
    name = f"dispatch-{uuid.uuid4().hex[:8]}"
    flask_parsed, fast_parsed = scenario(flask_world, name), scenario(fast_world, name)

    # Then every exchange is the same, status, headers and body, and so is what boto3 read
    assert len(flask_world.exchanges) == len(fast_world.exchanges)
    for through_flask, through_fast in zip(
        flask_world.exchanges, fast_world.exchanges, strict=True
    ):
        assert _comparable(through_flask, FLASK_REGION) == _comparable(through_fast, FAST_REGION)
    assert _normal(flask_parsed, FLASK_REGION) == _normal(fast_parsed, FAST_REGION)
    # and the scenario did reach the answers it is about
    errors = [r["error"]["Error"]["Code"] for r in fast_parsed if "error" in r]
    assert errors == [
        "ConditionalCheckFailedException",
        "ConditionalCheckFailedException",
        "TransactionCanceledException",
        "ValidationException",
        "ResourceNotFoundException",
        "AWS.SimpleQueueService.NonExistentQueue",
        "AWS.SimpleQueueService.NonExistentQueue",
    ]
    # and none of the fast world's requests went through Flask
    assert len(fast_world.exchanges) > 20
    assert fallback.answered == []


def _raw(world: World, target: str, body: bytes, content_type: str, service: str) -> Any:
    """A hand-made request (what boto3 never sends); the exception it raised, if any."""
    scope = f"testing/20260101/{world.region}/{service}/aws4_request"
    headers = [
        ("X-Amz-Target", target),
        ("Content-Type", content_type),
        ("Authorization", f"AWS4-HMAC-SHA256 Credential={scope}, SignedHeaders=host, Signature=0"),
    ]
    try:
        return _comparable(world.call("POST", "/", headers, body), world.region)
    except Exception as error:
        return ("raised", type(error).__name__, str(error))


MULTIPART = "multipart/form-data; boundary=b"
TOO_MANY_PARTS = b"".join(
    b'--b\r\nContent-Disposition: form-data; name="p%d"\r\n\r\nv\r\n' % n for n in range(1001)
)


@pytest.mark.parametrize(
    ("target", "body", "content_type", "service"),
    [
        # werkzeug refuses the form (an HTTPException raised before moto's action): Flask's 413
        ("DynamoDB_20120810.ListTables", TOO_MANY_PARTS + b"--b--\r\n", MULTIPART, "dynamodb"),
        # no action: moto's 404 without a Content-Type, which Flask's Response adds
        ("DynamoDB_20120810.", b"{}", "application/x-amz-json-1.0", "dynamodb"),
        # moto's handler raises: the exception propagates (the server's 500), as from Flask
        ("DynamoDB_20120810.PutItem", b"not json", "application/x-amz-json-1.0", "dynamodb"),
        ("AmazonSQS.SendMessage", b"[1]", "application/x-amz-json-1.0", "sqs"),
        ("DynamoDB_20120810.NoSuchAction", b"{}", "application/x-amz-json-1.0", "dynamodb"),
    ],
)
def test_malformed_requests_fail_as_they_do_in_flask(
    fast: JsonProtocolDispatch,
    fallback: CountingDispatcher,
    target: str,
    body: bytes,
    content_type: str,
    service: str,
) -> None:
    flask_world = World(DomainDispatcherApplication(create_backend_app), FLASK_REGION, None)
    fast_world = World(fast, FAST_REGION, None)

    assert _raw(flask_world, target, body, content_type, service) == _raw(
        fast_world, target, body, content_type, service
    )
    assert fallback.answered == []


def test_other_requests_go_to_moto_dispatcher(
    fast: JsonProtocolDispatch, fallback: CountingDispatcher
) -> None:
    # Given the fast app in front of moto's dispatcher
    world = World(fast, FAST_REGION, None)

    # When a request of another service, and one DynamoDB's target signed for SQS, arrive
    world.client("sts").get_caller_identity()
    world.client("stepfunctions").list_state_machines()
    signed_for_sqs = _raw(world, "DynamoDB_20120810.ListTables", b"{}", "application/json", "sqs")

    # Then moto's dispatcher answers them, as it routes them (SQS knows no ListTables)
    assert signed_for_sqs == ("raised", "OperationNotFoundError", "ListTables")
    assert fallback.answered == [
        "/",
        "AWSStepFunctions.ListStateMachines",
        "DynamoDB_20120810.ListTables",
    ]


def _through_flask_response(status: Any, headers: Any, content: Any) -> Any:
    """What Flask's Response (moto's view builds one) hands the WSGI server."""
    from flask import Response

    started: list[Any] = []
    environ = EnvironBuilder(method="POST", base_url=ENDPOINT).get_environ()
    response = Response(response=content, status=status, headers=headers)
    body = b"".join(response(environ, lambda s, hs, exc=None: started.extend([s, hs])))
    return started[0], list(started[1]), body


@pytest.mark.parametrize(
    ("status", "headers", "content"),
    [
        (200, {"Content-Type": "application/x-amz-json-1.0", "x-amz-crc32": "1"}, "{}"),
        (400, {}, "The security token included in the request is invalid."),
        (404, {"server": "amazon.com"}, ""),
        (200, {"content-type": "application/json"}, '{"Item": {"n": {"S": "d\u00e9j\u00e0"}}}'),
        (200, {"Content-Type": "application/json"}, b"{}"),
    ],
)
def test_a_plain_answer_is_the_one_flask_builds(status: int, headers: Any, content: Any) -> None:
    assert _plain_answer(status, dict(headers), content) == _through_flask_response(
        status, headers, content
    )


@pytest.mark.parametrize(
    ("status", "headers", "content"),
    [
        (204, {}, ""),  # werkzeug drops the body and Content-Length
        (200, {"Location": "/x"}, ""),  # and makes Location a URI
        (200, {"Content-Length": "2"}, "{}"),  # and renames it
        (200, {"x-amz-crc32": 1}, "{}"),  # and writes an int as str
        (200, {"Vary": ["Origin", "Accept"]}, "{}"),  # and a list as headers
        (200, {"Access-Control-Allow-Origin": "*"}, "{}"),  # flask-cors then adds nothing
        ("200 OK", {}, "{}"),
        (599, {}, "{}"),  # a status werkzeug has no reason for: "599 UNKNOWN"
    ],
)
def test_anything_else_is_left_to_flask_response(status: Any, headers: Any, content: Any) -> None:
    assert _plain_answer(status, dict(headers), content) is None
