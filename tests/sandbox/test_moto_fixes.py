"""moto corrections the sandbox installs (payflow/sandbox/moto_fixes.py)."""

from __future__ import annotations

import contextlib
import datetime
import decimal
import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.compat import HTTPHeaders
from botocore.exceptions import ClientError
from moto.core.botocore_stubber import MockRawResponse
from moto.core.exceptions import ServiceException
from moto.core.request import normalize_request
from moto.core.responses import ActionResult, BaseResponse, EmptyResult, PaginatedResult
from moto.core.utils import camelcase_to_underscores
from moto.dynamodb.responses import DynamoHandler
from werkzeug.exceptions import HTTPException

from payflow.sandbox.moto_fixes import DYNAMODB_FAST_OPERATIONS, DynamoDBResponses
from payflow.sandbox.provision import AwsClients


def test_stream_readers_survive_a_cancelled_transaction(
    clients: AwsClients, streams: Any, unique: Callable[[str], str]
) -> None:
    # Given a table with a stream and a reader positioned at its end
    ddb = clients.dynamodb
    name = unique("rollback")
    arn = ddb.create_table(
        TableName=name,
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"},
    )["TableDescription"]["LatestStreamArn"]
    ddb.put_item(TableName=name, Item={"pk": {"S": "taken"}})
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="LATEST")[
        "ShardIterator"
    ]

    # When a transaction is cancelled after one of its writes was applied, then a write succeeds
    with pytest.raises(ClientError, match="TransactionCanceled"):
        ddb.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": name, "Item": {"pk": {"S": "phantom"}}}},
                {
                    "Put": {
                        "TableName": name,
                        "Item": {"pk": {"S": "taken"}},
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                },
            ]
        )
    ddb.put_item(TableName=name, Item={"pk": {"S": "after"}})

    # Then the reader sees the later write, and nothing of the cancelled transaction
    records = streams.get_records(ShardIterator=iterator)["Records"]
    assert [r["dynamodb"]["Keys"]["pk"]["S"] for r in records] == ["after"]


# DynamoDB responses written without moto's generic serializer (DynamoDBResponses). Each
# comparison runs moto's DynamoDB handler in this process and writes the same result with both
# encoders; the sandbox's moto runs in a process of its own, untouched by these tests.

EVERY_TYPE: dict[str, Any] = {
    "s": {"S": 'text, é ☃ and "quotes"'},
    "n": {"N": "-12.50"},
    "b": {"B": b"\x00\xfb\xef\xffbinary"},
    "yes": {"BOOL": True},
    "no": {"BOOL": False},
    "nothing": {"NULL": True},
    "ss": {"SS": ["a", "b"]},
    "ns": {"NS": ["1", "2.5"]},
    "bs": {"BS": [b"\x01", b"\x02\x03"]},
    "l": {"L": [{"S": "x"}, {"B": b"\x04"}, {"L": [{"B": b"\x05"}]}, {"M": {"b": {"B": b"\x06"}}}]},
    "m": {
        "M": {
            "b": {"B": b"\x07"},
            "bs": {"BS": [b"\x08"]},
            "deep": {"M": {"b": {"B": b"\x09"}, "n": {"N": "3"}, "nothing": {"NULL": True}}},
            "l": {"L": [{"B": b"\x0a"}, {"BOOL": True}, {"SS": ["z"]}]},
        }
    },
}


Response = tuple[int, dict[str, Any], str | bytes]


@dataclass
class Answer:
    """One call: what moto's generic serializer and the fast path made of the same result
    (both None when moto answered with an HTTP error before any serializer ran)."""

    operation: str
    generic: Response | None
    fast: Response | None


class InProcessDynamoDB:
    """A boto3 client's transport into moto's DynamoDB handler in this process.

    It does what moto's `BaseResponse.call_action` does, except that each result is written by
    both encoders; the client receives the generic serializer's answer.
    """

    def __init__(self, responses: DynamoDBResponses) -> None:
        self.responses = responses
        self.answers: list[Answer] = []

    def __call__(self, request: AWSPreparedRequest, **_: Any) -> AWSResponse:
        handler = DynamoHandler()
        handler.setup_class(normalize_request(request))
        handler.body = handler.params  # as DynamoHandler.call_action does
        operation = handler._get_action()
        try:
            result = getattr(handler, camelcase_to_underscores(operation))()
        except ServiceException as error:
            result = ActionResult(error)
        except HTTPException as error:  # moto's DynamoDB errors: never serialized
            self.answers.append(Answer(operation, None, None))
            headers = dict(error.get_headers() or [])
            return _aws_response(request, (error.code or 500, headers, error.description or ""))
        generic = BaseResponse.serialized(handler, result)
        self.answers.append(Answer(operation, generic, self.responses.response(handler, result)))
        return _aws_response(request, generic)


def _aws_response(request: AWSPreparedRequest, response: Response) -> AWSResponse:
    status, headers, body = response
    return AWSResponse(request.url, status, HTTPHeaders.from_dict(headers), MockRawResponse(body))


@pytest.fixture(scope="module")
def responses() -> DynamoDBResponses:
    return DynamoDBResponses()


@pytest.fixture
def transport(responses: DynamoDBResponses) -> InProcessDynamoDB:
    return InProcessDynamoDB(responses)


@pytest.fixture
def ddb(transport: InProcessDynamoDB) -> Any:
    client = boto3.client(
        "dynamodb",
        region_name="us-east-1",
        endpoint_url="https://dynamodb.us-east-1.amazonaws.com",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    # A before-send handler that returns a response answers the call in place of HTTP.
    client.meta.events.register("before-send.dynamodb", transport)  # type: ignore[arg-type]
    return client


@pytest.fixture
def table(ddb: Any, unique: Callable[[str], str]) -> str:
    """A table with a sort key and an index, holding `EVERY_TYPE` under pk "p", sk "0".."4"."""
    name = unique("fast")
    ddb.create_table(
        TableName=name,
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
            {"AttributeName": "status", "AttributeType": "S"},
        ],
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "by_status",
                "KeySchema": [{"AttributeName": "status", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    for sk in "01234":
        ddb.put_item(TableName=name, Item=_item(sk))
    return name


def _item(sk: str, pk: str = "p") -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"S": sk}, "status": {"S": "open"}, **EVERY_TYPE}


def _key(sk: str, pk: str = "p") -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"S": sk}}


def _get_item(ddb: Any, table: str) -> None:
    assert ddb.get_item(TableName=table, Key=_key("0"))["Item"] == _item("0")
    ddb.get_item(TableName=table, Key=_key("missing"))
    ddb.get_item(
        TableName=table,
        Key=_key("0"),
        ProjectionExpression="m.deep, l[1], #b, bs",
        ExpressionAttributeNames={"#b": "b"},
        ConsistentRead=True,
    )
    ddb.get_item(TableName=table, Key=_key("0"), ReturnConsumedCapacity="TOTAL")
    ddb.get_item(TableName=table, Key=_key("0"), ReturnConsumedCapacity="INDEXES")


def _put_item(ddb: Any, table: str) -> None:
    ddb.put_item(TableName=table, Item=_item("new"))
    old = ddb.put_item(TableName=table, Item=_item("0"), ReturnValues="ALL_OLD")
    assert old["Attributes"] == _item("0")
    ddb.put_item(TableName=table, Item=_item("newer"), ReturnValues="ALL_OLD")
    ddb.put_item(
        TableName=table,
        Item=_item("1"),
        ConditionExpression="attribute_exists(pk)",
        ReturnConsumedCapacity="INDEXES",
    )
    ddb.put_item(TableName=table, Item=_item("2"), ReturnConsumedCapacity="TOTAL")


def _update_item(ddb: Any, table: str) -> None:
    for return_values in ("NONE", "ALL_OLD", "ALL_NEW", "UPDATED_OLD", "UPDATED_NEW"):
        ddb.update_item(
            TableName=table,
            Key=_key("0"),
            UpdateExpression="SET m.deep.b2 = :b, #s = :s ADD ns :ns",
            ConditionExpression="attribute_exists(pk) AND #s <> :never",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={
                ":b": {"B": b"\x0b\x0c"},
                ":s": {"S": return_values},
                ":ns": {"NS": ["7"]},
                ":never": {"S": "canceled"},
            },
            ReturnValues=return_values,
            ReturnConsumedCapacity="TOTAL",
        )
    new = ddb.update_item(
        TableName=table,
        Key=_key("brand-new"),
        UpdateExpression="SET bs = :bs, l = :l",
        ExpressionAttributeValues={":bs": EVERY_TYPE["bs"], ":l": EVERY_TYPE["l"]},
        ReturnValues="ALL_NEW",
    )
    assert new["Attributes"] == {**_key("brand-new"), "bs": EVERY_TYPE["bs"], "l": EVERY_TYPE["l"]}


def _delete_item(ddb: Any, table: str) -> None:
    old = ddb.delete_item(TableName=table, Key=_key("0"), ReturnValues="ALL_OLD")
    assert old["Attributes"] == _item("0")
    ddb.delete_item(TableName=table, Key=_key("1"))
    ddb.delete_item(TableName=table, Key=_key("missing"), ReturnValues="ALL_OLD")
    ddb.delete_item(
        TableName=table,
        Key=_key("2"),
        ConditionExpression="attribute_exists(pk)",
        ReturnConsumedCapacity="INDEXES",
    )


def _query(ddb: Any, table: str) -> None:
    everything = ddb.query(
        TableName=table,
        KeyConditionExpression="pk = :p",
        ExpressionAttributeValues={":p": {"S": "p"}},
    )
    assert everything["Items"] == [_item(sk) for sk in "01234"]
    page = ddb.query(
        TableName=table,
        KeyConditionExpression="pk = :p AND sk > :sk",
        ExpressionAttributeValues={":p": {"S": "p"}, ":sk": {"S": "0"}},
        Limit=2,
        ScanIndexForward=False,
        ReturnConsumedCapacity="TOTAL",
    )
    assert page["LastEvaluatedKey"]
    ddb.query(
        TableName=table,
        KeyConditionExpression="pk = :p",
        ExpressionAttributeValues={":p": {"S": "p"}},
        ExclusiveStartKey=page["LastEvaluatedKey"],
        ProjectionExpression="pk, sk, m.deep.b, bs",
    )
    ddb.query(
        TableName=table,
        KeyConditionExpression="pk = :p",
        ExpressionAttributeValues={":p": {"S": "p"}},
        Select="COUNT",
    )
    ddb.query(
        TableName=table,
        KeyConditionExpression="pk = :p",
        FilterExpression="n > :n",
        ExpressionAttributeValues={":p": {"S": "p"}, ":n": {"N": "0"}},
    )
    ddb.query(
        TableName=table,
        IndexName="by_status",
        KeyConditionExpression="#s = :s",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":s": {"S": "open"}},
        Limit=3,
        ReturnConsumedCapacity="INDEXES",
    )
    ddb.query(
        TableName=table,
        KeyConditionExpression="pk = :p",
        ExpressionAttributeValues={":p": {"S": "nobody"}},
    )


def _scan(ddb: Any, table: str) -> None:
    assert ddb.scan(TableName=table)["Count"] == 5
    page = ddb.scan(TableName=table, Limit=2, ReturnConsumedCapacity="INDEXES")
    assert page["LastEvaluatedKey"]
    ddb.scan(TableName=table, ExclusiveStartKey=page["LastEvaluatedKey"], Select="COUNT")
    ddb.scan(
        TableName=table,
        FilterExpression="contains(ss, :a)",
        ProjectionExpression="sk, b, m",
        ExpressionAttributeValues={":a": {"S": "a"}},
    )
    ddb.scan(TableName=table, IndexName="by_status", Segment=0, TotalSegments=2)


def _batch_get_item(ddb: Any, table: str) -> None:
    got = ddb.batch_get_item(
        RequestItems={table: {"Keys": [_key("0"), _key("1"), _key("missing")]}},
        ReturnConsumedCapacity="TOTAL",
    )
    assert sorted(got["Responses"][table], key=lambda item: item["sk"]["S"]) == [
        _item("0"),
        _item("1"),
    ]
    ddb.batch_get_item(
        RequestItems={
            table: {
                "Keys": [_key("2")],
                "ProjectionExpression": "#m.deep, bs",
                "ExpressionAttributeNames": {"#m": "m"},
                "ConsistentRead": True,
            }
        }
    )


def _batch_write_item(ddb: Any, table: str) -> None:
    ddb.batch_write_item(
        RequestItems={
            table: [
                {"PutRequest": {"Item": _item("5")}},
                {"PutRequest": {"Item": _item("6")}},
                {"DeleteRequest": {"Key": _key("0")}},
            ]
        },
        ReturnConsumedCapacity="INDEXES",
        ReturnItemCollectionMetrics="SIZE",
    )


def _transact_write_items(ddb: Any, table: str) -> None:
    ddb.transact_write_items(
        TransactItems=[
            {"Put": {"TableName": table, "Item": _item("7")}},
            {
                "Update": {
                    "TableName": table,
                    "Key": _key("0"),
                    "UpdateExpression": "SET bs = :bs",
                    "ConditionExpression": "attribute_exists(pk)",
                    "ExpressionAttributeValues": {":bs": {"BS": [b"\xfe"]}},
                }
            },
            {"Delete": {"TableName": table, "Key": _key("1")}},
            {
                "ConditionCheck": {
                    "TableName": table,
                    "Key": _key("2"),
                    "ConditionExpression": "attribute_exists(pk)",
                }
            },
        ],
        ReturnConsumedCapacity="TOTAL",
        ReturnItemCollectionMetrics="SIZE",
    )


def _transact_get_items(ddb: Any, table: str) -> None:
    for capacity in ("NONE", "TOTAL", "INDEXES"):
        got = ddb.transact_get_items(
            TransactItems=[
                {"Get": {"TableName": table, "Key": _key("0")}},
                {"Get": {"TableName": table, "Key": _key("missing")}},
                {"Get": {"TableName": table, "Key": _key("1"), "ProjectionExpression": "m"}},
            ],
            ReturnConsumedCapacity=capacity,
        )
        assert got["Responses"][0]["Item"] == _item("0")


CALLS: dict[str, Callable[[Any, str], None]] = {
    "GetItem": _get_item,
    "PutItem": _put_item,
    "UpdateItem": _update_item,
    "DeleteItem": _delete_item,
    "Query": _query,
    "Scan": _scan,
    "BatchGetItem": _batch_get_item,
    "BatchWriteItem": _batch_write_item,
    "TransactWriteItems": _transact_write_items,
    "TransactGetItems": _transact_get_items,
}


def test_every_fast_operation_is_compared() -> None:
    assert set(CALLS) == set(DYNAMODB_FAST_OPERATIONS)


@pytest.mark.parametrize("operation", CALLS)
def test_fast_responses_are_the_generic_serializers_byte_for_byte(
    operation: str, ddb: Any, table: str, transport: InProcessDynamoDB
) -> None:
    # Given a table holding items with every attribute type, B and BS nested in M and L
    transport.answers.clear()

    # When the operation is called in its variants (and the client checks what it reads)
    CALLS[operation](ddb, table)

    # Then the fast path wrote every response, exactly as moto's serializer did
    answers = [answer for answer in transport.answers if answer.operation == operation]
    assert answers
    for answer in answers:
        assert answer.fast is not None, f"{operation} fell back to the generic serializer"
        assert answer.fast == answer.generic


def test_timestamps_are_written_as_moto_writes_them(
    ddb: Any, table: str, transport: InProcessDynamoDB
) -> None:
    # Given an encoder for DescribeTable, whose output holds datetimes (CreationDateTime...)
    transport.responses = DynamoDBResponses(operations=["DescribeTable"])

    # When the table is described
    ddb.describe_table(TableName=table)

    # Then the fast path wrote the response, epoch seconds and all, as moto's serializer did
    (answer,) = transport.answers[-1:]
    assert answer.fast is not None
    assert '"CreationDateTime": ' in answer.fast[2]
    assert answer.fast == answer.generic


@pytest.mark.parametrize(
    ("call", "kwargs"),
    [
        ("put_item", {"Item": _item("0"), "ConditionExpression": "attribute_not_exists(pk)"}),
        (
            "update_item",
            {
                "Key": _key("0"),
                "UpdateExpression": "SET n = :n",
                "ConditionExpression": "n > :n",
                "ExpressionAttributeValues": {":n": {"N": "100"}},
            },
        ),
        ("delete_item", {"Key": _key("0"), "ConditionExpression": "attribute_not_exists(pk)"}),
    ],
)
def test_a_failed_condition_keeps_moto_error_with_the_old_item(
    call: str, kwargs: dict[str, Any], ddb: Any, table: str, transport: InProcessDynamoDB
) -> None:
    # Given an existing item of every attribute type (the table's "0")
    # When a conditional write to it fails and asks for the item as it was
    with pytest.raises(ClientError) as failure:
        getattr(ddb, call)(TableName=table, ReturnValuesOnConditionCheckFailure="ALL_OLD", **kwargs)

    # Then moto's own error answered, carrying the old item, binary values included
    assert failure.value.response["Error"]["Code"] == "ConditionalCheckFailedException"
    assert failure.value.response["Item"] == _item("0")  # type: ignore[typeddict-item]
    assert transport.answers[-1].fast is None


def test_a_cancelled_transaction_keeps_moto_error(
    ddb: Any, table: str, transport: InProcessDynamoDB
) -> None:
    # When a transaction is cancelled, one of its conditions asking for the old item
    with pytest.raises(ClientError, match="TransactionCanceled"):
        ddb.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": table, "Item": _item("9")}},
                {
                    "Put": {
                        "TableName": table,
                        "Item": _item("0"),
                        "ConditionExpression": "attribute_not_exists(pk)",
                        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                    }
                },
            ]
        )

    # Then moto's own error answered
    assert transport.answers[-1].fast is None


def _handler(operation: str) -> DynamoHandler:
    """A moto DynamoDB handler set up for a request to `operation`, as moto's server sets one."""
    request = AWSPreparedRequest(
        method="POST",
        url="https://dynamodb.us-east-1.amazonaws.com/",
        headers=HTTPHeaders.from_dict(
            {
                "X-Amz-Target": f"DynamoDB_20120810.{operation}",
                "Content-Type": "application/x-amz-json-1.0",
            }
        ),
        body=b"{}",
        stream_output=False,
    )
    handler = DynamoHandler()
    handler.setup_class(normalize_request(request))
    return handler


AV = EVERY_TYPE["m"]  # an attribute value with B, BS, M and L inside


@pytest.mark.parametrize(
    ("operation", "result"),
    [
        pytest.param(
            "BatchGetItem",
            {
                "Responses": {"t": [{"a": AV}], "u": []},
                "UnprocessedKeys": {
                    "t": {
                        "Keys": [{"pk": {"B": b"\x01"}}],
                        "AttributesToGet": ["a", "b"],
                        "ConsistentRead": False,
                        "ProjectionExpression": "#a",
                        "ExpressionAttributeNames": {"#a": "a"},
                    }
                },
                "ConsumedCapacity": [{"TableName": "t", "CapacityUnits": 2}],
            },
            id="unprocessed-keys",
        ),
        pytest.param(
            "BatchWriteItem",
            {
                "UnprocessedItems": {
                    "t": [
                        {"PutRequest": {"Item": {"pk": {"S": "p"}, "a": AV}}},
                        {"DeleteRequest": {"Key": {"pk": {"B": b"\x02"}}}},
                    ]
                },
                "ItemCollectionMetrics": {
                    "t": [
                        {
                            "ItemCollectionKey": {"pk": {"B": b"\x03"}},
                            "SizeEstimateRangeGB": [0, decimal.Decimal("1.5")],
                        }
                    ]
                },
                "ConsumedCapacity": [],
            },
            id="unprocessed-items-and-metrics",
        ),
        pytest.param(
            "PutItem",
            {
                "ConsumedCapacity": {
                    "TableName": "t",
                    "CapacityUnits": decimal.Decimal("0.5"),
                    "ReadCapacityUnits": 1,
                    "WriteCapacityUnits": 1.5,
                    "Table": {"CapacityUnits": 1, "ReadCapacityUnits": 0.5},
                    "GlobalSecondaryIndexes": {"g": {"CapacityUnits": 1}},
                    "LocalSecondaryIndexes": {"l": {"WriteCapacityUnits": 2}},
                },
                "ItemCollectionMetrics": {"ItemCollectionKey": {"pk": AV}},
                "Attributes": {"a": AV},
            },
            id="capacity-with-indexes",
        ),
        pytest.param(
            "Query",
            {
                "Count": decimal.Decimal(1),
                "ScannedCount": 7.0,
                "Items": [{"a": AV, "dropped": {"X": 1, "S": None}, "empty": {"S": None}}],
                "LastEvaluatedKey": {"pk": {"S": "p"}, "sk": {"B": b"\x04"}},
                "Extra": "not in the shape",
                "ConsumedCapacity": None,
            },
            id="dropped-keys-and-none",
        ),
        pytest.param(
            "GetItem", {"Item": {"a": {"B": "c3RyaW5n", "BOOL": False}}}, id="blob-as-string"
        ),
    ],
)
def test_members_moto_leaves_empty_are_written_alike(
    operation: str, result: dict[str, Any], responses: DynamoDBResponses
) -> None:
    # Given a handler for the operation, and a result using members moto's handlers never fill
    handler = _handler(operation)

    # When both encoders write it
    fast = responses.response(handler, ActionResult(result))

    # Then the fast path wrote it, exactly as moto's serializer did
    assert fast is not None
    assert fast == BaseResponse.serialized(handler, ActionResult(result))


class Status(enum.Enum):
    OPEN = "open"


@pytest.mark.parametrize(
    ("operation", "result"),
    [
        pytest.param(
            "GetItem", {"Item": {"a": {"S": datetime.datetime(2025, 1, 2)}}}, id="datetime"
        ),
        pytest.param("GetItem", {"Item": {"a": {"N": decimal.Decimal("1.5")}}}, id="decimal-n"),
        pytest.param("GetItem", {"Item": {"a": {"S": b"bytes"}}}, id="bytes-in-s"),
        pytest.param("GetItem", {"Item": {"a": {"S": Status.OPEN}}}, id="enum"),
        pytest.param("GetItem", {"Item": {"a": {"SS": {"x"}}}}, id="set-for-list"),
        pytest.param("GetItem", {"Item": {"a": {"L": ({"S": "x"},)}}}, id="tuple-for-list"),
        pytest.param("GetItem", {"Item": {"a": None}}, id="none-in-map"),
        pytest.param("GetItem", {"Item": {"a": {"M": {"": {"S": "x"}}}}}, id="empty-map-key"),
        pytest.param("GetItem", {"Item": {"a": {"SS": ["x", None]}}}, id="none-in-list"),
        pytest.param("GetItem", {"Item": {"a": {"B": bytearray(b"x")}}}, id="bytearray"),
        pytest.param("GetItem", {"Item": {"a": {"l": []}}}, id="alias-key"),
        pytest.param("Query", {"ItemList": [], "Count": 0}, id="alias-member"),
        pytest.param("Query", {"Count": True}, id="bool-for-integer"),
        pytest.param("Query", {"Count": "1"}, id="string-for-integer"),
        pytest.param("GetItem", {"Item": [("a", {"S": "x"})]}, id="list-for-map"),
        pytest.param("GetItem", {"Item": {"a": ["S", "x"]}}, id="list-for-structure"),
        pytest.param("GetItem", None, id="no-result"),
    ],
)
def test_values_the_fast_path_does_not_know_go_to_the_generic_serializer(
    operation: str, result: Any, responses: DynamoDBResponses
) -> None:
    assert responses.response(_handler(operation), ActionResult(result)) is None


def test_errors_and_other_results_go_to_the_generic_serializer(
    responses: DynamoDBResponses,
) -> None:
    error = ServiceException("boom")
    assert responses.response(_handler("GetItem"), ActionResult(error)) is None
    assert responses.response(_handler("GetItem"), EmptyResult()) is None
    assert responses.response(_handler("GetItem"), PaginatedResult({"Item": {}})) is None
    assert responses.response(_handler("DescribeTable"), ActionResult({"Table": {}})) is None


def test_the_sandbox_answers_every_attribute_type_as_written(
    clients: AwsClients, unique: Callable[[str], str]
) -> None:
    # Given the sandbox's moto (with the corrections applied) and an item of every type
    ddb = clients.dynamodb
    name = unique("types")
    ddb.create_table(
        TableName=name,
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    ddb.put_item(TableName=name, Item=_item("0"))

    # When it is read back by each read operation
    got = ddb.get_item(TableName=name, Key=_key("0"))["Item"]
    queried = ddb.query(
        TableName=name,
        KeyConditionExpression="pk = :p",
        ExpressionAttributeValues={":p": {"S": "p"}},
    )["Items"]
    batch = ddb.batch_get_item(RequestItems={name: {"Keys": [_key("0")]}})["Responses"][name]
    transact = ddb.transact_get_items(
        TransactItems=[{"Get": {"TableName": name, "Key": _key("0")}}]
    )["Responses"]
    updated = ddb.update_item(
        TableName=name,
        Key=_key("0"),
        UpdateExpression="SET #s = :s",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":s": {"S": "open"}},
        ReturnValues="ALL_NEW",
    )["Attributes"]

    # Then every one is the item as written
    assert got == queried[0] == batch[0] == transact[0]["Item"] == updated == _item("0")


def test_two_starts_of_one_name_at_once_make_one_execution(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import json
    import threading

    from moto.stepfunctions.models import StateMachine
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend

    from payflow.sandbox.moto_fixes import one_start_at_a_time

    backend = StepFunctionsParserBackend("eu-west-2", "123456789012")
    definition = {
        "StartAt": "Hold",
        "States": {"Hold": {"Type": "Wait", "Seconds": 60, "End": True}},
    }
    machine = backend.create_state_machine(
        name="once", definition=json.dumps(definition), roleArn="arn:aws:iam::123456789012:role/r"
    )
    # Given a check for a same-named execution that, once passed, waits for a second start to
    # reach the check too (the race, made certain)
    checked = threading.Barrier(2)
    check = StateMachine._handle_name_input_idempotency

    def racing_check(self: Any, name: str, execution_input: str) -> Any:
        found = check(self, name, execution_input)
        if found is None:
            with contextlib.suppress(threading.BrokenBarrierError):
                checked.wait(timeout=1)
        return found

    monkeypatch.setattr(StateMachine, "_handle_name_input_idempotency", racing_check)
    start = one_start_at_a_time(StepFunctionsParserBackend.start_execution)
    answers: list[Any] = []

    def one() -> None:
        answers.append(start(backend, machine.arn, name="pi_1", execution_input="{}"))

    # When two starts of that name come at once
    threads = [threading.Thread(target=one) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    try:
        # Then one execution runs, and both starts answer with it
        executions = machine.executions
        assert len(executions) == 1
        assert [a.execution_arn for a in answers] == [executions[0].execution_arn] * 2
    finally:
        for execution in machine.executions:
            backend.stop_execution(execution.execution_arn)


def test_a_get_records_answer_is_json_dumps_of_it_also_from_kept_texts() -> None:
    import json
    from datetime import UTC, datetime

    from payflow.sandbox import moto_fixes

    # Given records with what json cannot write itself (times, binary), and no records at all
    records = [
        {
            "eventID": str(i),
            "eventName": "MODIFY",
            "dynamodb": {
                "ApproximateCreationDateTime": datetime(2026, 12, 2, tzinfo=UTC),
                "Keys": {"pk": {"S": f"pi_{i}"}, "blob": {"B": b"\x00\xff"}},
                "SizeBytes": 12 + i,
                "Note": "é€",
            },
        }
        for i in range(3)
    ]
    results = [
        {"NextShardIterator": "it-1", "Records": records},
        {"Records": records[1:], "NextShardIterator": None},
        {"NextShardIterator": "it-2", "Records": []},
    ]

    # Then each answer is what json.dumps writes, the second time too (from the kept texts)
    for _ in range(2):
        for result in results:
            expected = json.dumps(result, default=moto_fixes._wire)
            assert moto_fixes.records_json(result) == expected
            assert json.loads(moto_fixes.records_json(result)) == json.loads(expected)
