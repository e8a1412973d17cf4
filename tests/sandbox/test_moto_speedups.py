"""moto's hot paths made cheaper (payflow/sandbox/moto_speedups.py) give the same answers.

Each check runs the same requests against moto's own Table.query and the faster one, on moto
in this process (`mock_aws`), and compares the whole responses.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from payflow.sandbox import moto_index, moto_speedups

REGION = "us-east-1"


@pytest.fixture(autouse=True)
def in_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """moto in this process: the session's sandbox points AWS_ENDPOINT_URL at its server,
    where the speed-ups patched here would not be the code answering."""
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)


@pytest.fixture
def dynamodb() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client(
            "dynamodb",
            region_name=REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        client.create_table(
            TableName="objects",
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": n, "AttributeType": "S"} for n in ("pk", "sk", "g", "gs")
            ],
            GlobalSecondaryIndexes=[
                {
                    "IndexName": "gsi1",
                    "KeySchema": [
                        {"AttributeName": "g", "KeyType": "HASH"},
                        {"AttributeName": "gs", "KeyType": "RANGE"},
                    ],
                    "Projection": {"ProjectionType": "ALL"},
                }
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        client.create_table(
            TableName="flat",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        for i in range(240):
            item = {"pk": {"S": f"p{i % 12}"}, "sk": {"S": f"s#{i:04d}"}, "n": {"N": str(i)}}
            if i % 3:
                # Only some items are in the index, some with equal index sort keys.
                item |= {"g": {"S": f"g{i % 4}"}, "gs": {"S": f"t{i % 20:03d}"}}
            client.put_item(TableName="objects", Item=item)
            client.put_item(TableName="flat", Item={"pk": {"S": f"f{i}"}, "n": {"N": str(i)}})
        yield client


QUERIES: list[dict[str, Any]] = [
    {"KeyConditionExpression": "pk = :p", "ExpressionAttributeValues": {":p": {"S": "p3"}}},
    {"KeyConditionExpression": "pk = :p", "ExpressionAttributeValues": {":p": {"S": "none"}}},
    {
        "KeyConditionExpression": "pk = :p AND sk BETWEEN :a AND :b",
        "ExpressionAttributeValues": {
            ":p": {"S": "p5"},
            ":a": {"S": "s#0050"},
            ":b": {"S": "s#0150"},
        },
        "ScanIndexForward": False,
    },
    {
        "KeyConditionExpression": "pk = :p AND begins_with(sk, :s)",
        "ExpressionAttributeValues": {":p": {"S": "p7"}, ":s": {"S": "s#01"}},
        "Limit": 3,
    },
    {
        "IndexName": "gsi1",
        "KeyConditionExpression": "g = :g",
        "ExpressionAttributeValues": {":g": {"S": "g2"}},
        "Limit": 7,
    },
    {
        "IndexName": "gsi1",
        "KeyConditionExpression": "g = :g AND gs > :t",
        "FilterExpression": "n > :n",
        "ExpressionAttributeValues": {
            ":g": {"S": "g1"},
            ":t": {"S": "t005"},
            ":n": {"N": "100"},
        },
        "ScanIndexForward": False,
        "Limit": 5,
    },
    {
        "IndexName": "gsi1",
        "KeyConditionExpression": "g = :g",
        "FilterExpression": "n > :n",
        "ExpressionAttributeValues": {":g": {"S": "g2"}, ":n": {"N": "120"}},
        "ScanIndexForward": False,
        "Limit": 4,
    },
]


def sort_key_queries() -> list[dict[str, Any]]:
    """Every sort key condition on the index, at values inside, between, before and after the
    partition's keys (some shared by several items), both ways, at several page sizes: each
    page's end and LastEvaluatedKey must be moto's."""
    conditions = [f"gs {op} :a" for op in ("=", "<", "<=", ">", ">=")]
    conditions += ["gs BETWEEN :a AND :b", "gs BETWEEN :b AND :a", "begins_with(gs, :a)"]
    queries = []
    for condition in conditions:
        # g1 holds t001, t005, t009, t013 and t017, each several times.
        for low, high in (("t005", "t013"), ("t0075", "t010"), ("t001", "t017"), ("a", "z")):
            values = {":g": {"S": "g1"}, ":a": {"S": low}}
            if ":b" in condition:
                values[":b"] = {"S": high}
            for limit in (2, None):
                for forward in (True, False):
                    query: dict[str, Any] = {
                        "IndexName": "gsi1",
                        "KeyConditionExpression": f"g = :g AND {condition}",
                        "ExpressionAttributeValues": values,
                        "ScanIndexForward": forward,
                    }
                    if limit:
                        query["Limit"] = limit
                    queries.append(query)
    return queries


def every_page(client: Any, table: str, query: dict[str, Any]) -> list[dict[str, Any]]:
    pages, params = [], {"TableName": table, **query}
    while True:
        page = client.query(**params)
        page.pop("ResponseMetadata")
        pages.append(page)
        if "LastEvaluatedKey" not in page:
            return pages
        params["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def answers(client: Any) -> str:
    results = [every_page(client, "objects", q) for q in QUERIES + sort_key_queries()]
    results.append(
        every_page(
            client,
            "flat",
            {"KeyConditionExpression": "pk = :p", "ExpressionAttributeValues": {":p": {"S": "f9"}}},
        )
    )
    return json.dumps(results, sort_keys=True)


def test_queries_answer_exactly_as_moto_does(
    dynamodb: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from moto.dynamodb.models.table import Table

    # Given moto's own answers, every page of every query
    expected = answers(dynamodb)

    # When the same queries read their candidates the fast way
    monkeypatch.setattr(moto_speedups, "PARTITIONS", moto_index.IndexPartitions())
    monkeypatch.setattr(Table, "query", moto_speedups._query_from_candidates(Table.query))
    monkeypatch.setattr(Table, "sorted_items", moto_speedups._sorted_by_values)
    fast = answers(dynamodb)
    again = answers(dynamodb)  # the second time from the kept order

    # Then nothing differs: items, order, counts and pagination keys
    assert fast == expected == again
    assert '"Count": 0' in fast and '"LastEvaluatedKey"' in fast


def test_a_definition_is_parsed_once_and_its_program_reused() -> None:
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser

    parse = moto_speedups._remembered_parse(AmazonStateLanguageParser.parse).__func__  # type: ignore[attr-defined]
    definition = json.dumps({"StartAt": "A", "States": {"A": {"Type": "Pass", "End": True}}})

    first, second = parse(definition), parse(definition)

    assert first is second
    assert parse(definition.replace('"A"', '"B"')) is not first


@pytest.fixture
def sqs() -> Iterator[tuple[Any, Any]]:
    from moto.sqs.models import sqs_backends

    with mock_aws():
        client = boto3.client(
            "sqs", region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing"
        )
        url = client.create_queue(QueueName="work", Attributes={"MessageRetentionPeriod": "120"})[
            "QueueUrl"
        ]
        for i in range(30):
            client.send_message(QueueUrl=url, MessageBody=f"m{i}", DelaySeconds=600 if i % 3 else 0)
        client.receive_message(QueueUrl=url, MaxNumberOfMessages=4, VisibilityTimeout=300)
        account = url.split("/")[-2]  # the account moto runs as here
        yield client, sqs_backends[account][REGION]


ATTRIBUTE_ASKS = [
    ["ApproximateNumberOfMessages"],
    [
        "ApproximateNumberOfMessages",
        "ApproximateNumberOfMessagesNotVisible",
        "ApproximateNumberOfMessagesDelayed",
        "ApproximateNumberOfMessages",
    ],
    ["QueueArn", "MessageRetentionPeriod", "FifoQueue", "KmsMasterKeyId", "Policy"],
    ["All"],
    [],
]


def test_queue_attributes_answer_exactly_as_moto_does(sqs: tuple[Any, Any]) -> None:
    _, backend = sqs
    original = type(backend).get_queue_attributes
    fast = moto_speedups._attributes_built_once(original)

    for names in ATTRIBUTE_ASKS:
        assert fast(backend, "work", list(names)) == original(backend, "work", list(names)), names
    assert fast(backend, "work", ATTRIBUTE_ASKS[1])["ApproximateNumberOfMessagesDelayed"] == 20


def test_a_queue_attribute_moto_does_not_know_is_refused_as_moto_refuses_it(
    sqs: tuple[Any, Any],
) -> None:
    from moto.sqs.exceptions import InvalidAttributeName

    _, backend = sqs
    fast = moto_speedups._attributes_built_once(type(backend).get_queue_attributes)

    with pytest.raises(InvalidAttributeName):
        fast(backend, "work", ["ApproximateNumberOfMessages", "NoSuchAttribute"])


def test_the_retention_check_agrees_with_moto_on_both_sides_of_the_period(
    sqs: tuple[Any, Any],
) -> None:
    _, backend = sqs
    original = type(backend).is_message_valid_based_on_retention_period
    fresh, stale = backend.get_queue("work")._messages[:2]
    stale.sent_timestamp -= 121_000  # the queue keeps messages for 120 s

    for message, kept in ((fresh, True), (stale, False)):
        assert original(backend, "work", message) is kept
        assert moto_speedups._within_retention(backend, "work", message) is kept


def test_receives_hand_out_the_same_messages_with_the_speed_ups(
    sqs: tuple[Any, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from moto.sqs.models import SQSBackend

    client, _ = sqs
    url = client.get_queue_url(QueueName="work")["QueueUrl"]
    monkeypatch.setattr(
        SQSBackend, "is_message_valid_based_on_retention_period", moto_speedups._within_retention
    )
    monkeypatch.setattr(
        SQSBackend,
        "get_queue_attributes",
        moto_speedups._attributes_built_once(SQSBackend.get_queue_attributes),
    )

    bodies = []
    while batch := client.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages"):
        bodies += [m["Body"] for m in batch]

    # The 10 sent without a delay, less the 4 the fixture's receive holds in flight.
    assert bodies == [f"m{i}" for i in range(12, 30, 3)]


def test_index_queries_stay_exact_through_every_kind_of_write(
    dynamodb: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import random

    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.table import Table

    partitions = moto_index.IndexPartitions()
    for name in moto_index.ITEM_WRITES + moto_index.WHOLESALE:
        monkeypatch.setattr(DynamoDBBackend, name, getattr(DynamoDBBackend, name))
    moto_index.install(DynamoDBBackend, partitions)
    monkeypatch.setattr(moto_speedups, "PARTITIONS", partitions)
    original = Table.query
    fast = moto_speedups._query_from_candidates(original)
    monkeypatch.setattr(Table, "query", fast)
    monkeypatch.setattr(Table, "sorted_items", moto_speedups._sorted_by_values)
    rng = random.Random(7)

    def index_answers() -> str:
        queries = [
            {
                "IndexName": "gsi1",
                "KeyConditionExpression": "g = :g",
                "ExpressionAttributeValues": {":g": {"S": f"g{g}"}},
                "Limit": 9,
                "ScanIndexForward": forward,
            }
            for g in range(5)
            for forward in (True, False)
        ]
        return json.dumps([every_page(dynamodb, "objects", q) for q in queries], sort_keys=True)

    def key(i: int) -> dict[str, Any]:
        return {"pk": {"S": f"p{i % 12}"}, "sk": {"S": f"s#{i:04d}"}}

    for step in range(120):
        i = rng.randrange(300)
        kind = rng.choice(["put", "update", "remove", "unsorted", "delete", "transact", "batch"])
        if kind == "put":
            item = key(i) | {"g": {"S": f"g{rng.randrange(5)}"}, "gs": {"S": f"t{step:03d}"}}
            dynamodb.put_item(TableName="objects", Item=item)
        elif kind == "update":  # moves the item to another index partition, or into the index
            dynamodb.update_item(
                TableName="objects",
                Key=key(i),
                UpdateExpression="SET g = :g, gs = :t",
                ExpressionAttributeValues={
                    ":g": {"S": f"g{rng.randrange(5)}"},
                    ":t": {"S": f"u{step:03d}"},
                },
            )
        elif kind == "remove":  # leaves the index, stays in the table
            dynamodb.update_item(TableName="objects", Key=key(i), UpdateExpression="REMOVE g")
        elif kind == "unsorted":  # a partition key without the index's sort key: not in it
            dynamodb.update_item(
                TableName="objects",
                Key=key(i),
                UpdateExpression="SET g = :g REMOVE gs",
                ExpressionAttributeValues={":g": {"S": f"g{rng.randrange(5)}"}},
            )
        elif kind == "delete":
            dynamodb.delete_item(TableName="objects", Key=key(i))
        elif kind == "transact":
            dynamodb.transact_write_items(
                TransactItems=[
                    {"Delete": {"TableName": "objects", "Key": key(i)}},
                    {
                        "Put": {
                            "TableName": "objects",
                            "Item": key(i + 1) | {"g": {"S": "g0"}, "gs": {"S": f"x{step:03d}"}},
                        }
                    },
                ]
            )
        else:
            dynamodb.batch_write_item(
                RequestItems={
                    "objects": [
                        {"PutRequest": {"Item": key(i) | {"g": {"S": "g4"}, "gs": {"S": "b"}}}},
                        {"DeleteRequest": {"Key": key(i + 2)}},
                    ]
                }
            )
        if step % 10 == 9:
            fast_answers = index_answers()
            Table.query = original  # type: ignore[method-assign]
            expected = index_answers()
            Table.query = fast  # type: ignore[method-assign]
            assert fast_answers == expected, f"after step {step} ({kind})"
    assert partitions.candidates(dynamodb_table("objects"), "gsi1", "g", _string("g0")), (
        "the index was built and used"
    )


def dynamodb_table(name: str) -> Any:
    from moto.dynamodb.models import dynamodb_backends

    for account in dynamodb_backends.values():
        for backend in account.values():
            if name in backend.tables:
                return backend.tables[name]
    raise LookupError(name)


def _string(value: str) -> Any:
    from moto.dynamodb.models.dynamo_type import DynamoType

    return DynamoType({"S": value})


def test_items_replaced_wholesale_are_read_afresh() -> None:
    with mock_aws():
        client = boto3.client(
            "dynamodb", region_name=REGION, aws_access_key_id="t", aws_secret_access_key="t"
        )
        client.create_table(
            TableName="swap",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"} for n in ("pk", "g")],
            GlobalSecondaryIndexes=[
                {
                    "IndexName": "by_g",
                    "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}],
                    "Projection": {"ProjectionType": "ALL"},
                }
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        client.put_item(TableName="swap", Item={"pk": {"S": "a"}, "g": {"S": "x"}})
        table = dynamodb_table("swap")
        partitions = moto_index.IndexPartitions()
        assert [
            i.hash_key.value for i in partitions.candidates(table, "by_g", "g", _string("x"))
        ] == ["a"]

        # When the table's items are swapped out (as a snapshot does) for others
        kept = table.items
        table.items = type(kept)()

        # Then the index reads the new items, not what it kept
        assert partitions.candidates(table, "by_g", "g", _string("x")) == []


UPDATES: list[dict[str, Any]] = [
    {
        "UpdateExpression": "SET n = if_not_exists(n, :zero) + :one, tags = list_append(:l, :l)",
        "ExpressionAttributeValues": {":zero": {"N": "0"}, ":one": {"N": "1"}, ":l": {"L": []}},
    },
    {
        "UpdateExpression": "SET #m.#k = :v, extra = :v REMOVE gone ADD tally :one",
        "ExpressionAttributeNames": {"#m": "m", "#k": "k"},
        "ExpressionAttributeValues": {":v": {"S": "x"}, ":one": {"N": "1"}},
    },
    {"UpdateExpression": "DELETE letters :a", "ExpressionAttributeValues": {":a": {"SS": ["a"]}}},
    # Refused alike: a key attribute, a missing value, overlapping paths, a type mismatch
    {"UpdateExpression": "SET sk = :v", "ExpressionAttributeValues": {":v": {"S": "x"}}},
    {"UpdateExpression": "SET n = :missing", "ExpressionAttributeValues": {":v": {"S": "x"}}},
    {"UpdateExpression": "SET m = :v, m.k = :v", "ExpressionAttributeValues": {":v": {"S": "x"}}},
    {"UpdateExpression": "SET n = extra + :one", "ExpressionAttributeValues": {":one": {"N": "1"}}},
    # One expression whose structure passes with some names and not with others
    {
        "UpdateExpression": "SET #a = :v, #b = :v",
        "ExpressionAttributeNames": {"#a": "p", "#b": "q"},
        "ExpressionAttributeValues": {":v": {"S": "x"}},
    },
    {
        "UpdateExpression": "SET #a = :v, #b = :v",
        "ExpressionAttributeNames": {"#a": "p", "#b": "p"},
        "ExpressionAttributeValues": {":v": {"S": "x"}},
    },
    {
        "UpdateExpression": "SET #a = :v, #b = :v",
        "ExpressionAttributeNames": {"#a": "sk", "#b": "q"},
        "ExpressionAttributeValues": {":v": {"S": "x"}},
    },
    {"UpdateExpression": "SET m = :v, m.k = :v", "ExpressionAttributeValues": {":v": {"S": "x"}}},
]


def update_outcomes(client: Any) -> str:
    key = {"pk": {"S": "u"}, "sk": {"S": "1"}}
    client.put_item(
        TableName="objects",
        Item=key | {"m": {"M": {}}, "gone": {"S": "g"}, "letters": {"SS": ["a", "b"]}},
    )
    outcomes = []
    for update in UPDATES:
        try:
            client.update_item(TableName="objects", Key=key, **update)
            outcomes.append(client.get_item(TableName="objects", Key=key)["Item"])
        except client.exceptions.ClientError as error:
            outcomes.append(error.response["Error"])
    return json.dumps(outcomes, sort_keys=True)


def test_update_expressions_are_applied_and_refused_exactly_as_moto_does(
    dynamodb: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from moto.dynamodb.parsing.ast_nodes import DepthFirstTraverser  # type: ignore[attr-defined]

    expected = update_outcomes(dynamodb)

    monkeypatch.setattr(
        DepthFirstTraverser, "nodes_to_be_processed", moto_speedups._node_types_once
    )
    monkeypatch.setattr(DepthFirstTraverser, "process", moto_speedups._process_with_map_once)
    monkeypatch.setattr(
        DepthFirstTraverser, "traverse_node_recursively", moto_speedups._traverse_by_class
    )
    moto_speedups._parse_update_expressions_once(monkeypatch.setattr)
    fast = update_outcomes(dynamodb)
    again = update_outcomes(dynamodb)  # parsed and structure-checked before

    assert fast == expected == again
    assert fast.count('"Code": "ValidationException"') == 7


def random_value(rng: random.Random, depth: int = 0) -> dict[str, Any]:
    """A DynamoDB JSON value of any type, nested up to four levels."""
    kinds = ["S", "N", "B", "BOOL", "NULL", "SS", "NS", "BS"] + (
        ["L", "M"] * 2 if depth < 4 else []
    )
    kind = rng.choice(kinds)
    text = "".join(rng.choice("aé€😀z0") for _ in range(rng.randint(0, 6)))
    if kind == "S":
        return {"S": text}
    if kind == "N":
        return {"N": str(rng.choice([0, -7, 12.5, 10**30, rng.randint(-999, 999)]))}
    if kind == "B":
        return {"B": text.encode()}
    if kind == "BOOL":
        return {"BOOL": rng.random() < 0.5}
    if kind == "NULL":
        return {"NULL": True}
    if kind in ("SS", "BS"):
        members = [f"{text}{i}" for i in range(rng.randint(1, 4))]
        return {kind: [m.encode() for m in members] if kind == "BS" else members}
    if kind == "NS":
        return {"NS": [str(rng.randint(-(10**6), 10**6)) for _ in range(rng.randint(1, 4))]}
    if kind == "L":
        return {"L": [random_value(rng, depth + 1) for _ in range(rng.randint(0, 4))]}
    return {"M": {f"k{i}{text}": random_value(rng, depth + 1) for i in range(rng.randint(0, 4))}}


def test_sizes_are_summed_exactly_as_moto_sums_them(monkeypatch: pytest.MonkeyPatch) -> None:
    from moto.dynamodb.models.dynamo_type import DynamoType, Item

    # Given moto's sizes of a thousand values of every type and nesting, and of items of them
    rng = random.Random(7)
    values = [random_value(rng) for _ in range(1000)]
    items = [{f"a{i}": v for i, v in enumerate(values[n : n + 9])} for n in range(0, 1000, 9)]
    hash_key = DynamoType({"S": "pk"})
    expected = [DynamoType(v).size() for v in values]
    expected_items = [Item(hash_key, None, attrs).size() for attrs in items]
    nested = DynamoType({"M": {"m": {"L": [{"S": "x"}, {"M": {"y": {"N": "1"}}}]}}})
    nested.value["m"].value.append({"S": "raw"})  # a member moto has not wrapped yet
    expected_nested = DynamoType({"M": {"outer": nested}}).size()

    # When the sizes are summed over the values as they are
    monkeypatch.setattr(DynamoType, "size", moto_speedups._size_of_values)

    # Then every one is the same
    assert [DynamoType(v).size() for v in values] == expected
    assert [Item(hash_key, None, attrs).size() for attrs in items] == expected_items
    assert DynamoType({"M": {"outer": nested}}).size() == expected_nested
    assert len(set(expected)) > 50  # the values differ in size, so a constant would not pass


def test_queue_attributes_read_when_asked_are_the_ones_moto_builds(
    sqs: tuple[Any, Any],
) -> None:
    from moto.sqs.models import Queue

    client, backend = sqs
    dead = client.create_queue(QueueName="dead.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
    dead_arn = client.get_queue_attributes(QueueUrl=dead, AttributeNames=["QueueArn"])
    client.create_queue(
        QueueName="fifo.fifo",
        Attributes={
            "FifoQueue": "true",
            "ContentBasedDeduplication": "true",
            "KmsMasterKeyId": "alias/key",
            "Policy": json.dumps({"Version": "2012-10-17", "Statement": []}),
            "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": dead_arn["Attributes"]["QueueArn"], "maxReceiveCount": 3}
            ),
        },
    )
    built = Queue.attributes.fget  # type: ignore[attr-defined]

    for name in ("work", "dead.fifo", "fifo.fifo"):
        queue = backend.get_queue(name)
        expected = built(queue)
        lazy = moto_speedups.QueueAttributes(queue)
        assert dict(lazy) == expected and list(lazy) == list(expected), name
        assert lazy == expected and len(lazy) == len(expected)
        assert ("ContentBasedDeduplication" in lazy) is ("ContentBasedDeduplication" in expected)
        assert lazy.get("NoSuchAttribute") is None and "NoSuchAttribute" not in lazy
    assert (
        moto_speedups.QueueAttributes(backend.get_queue("work"))[
            "ApproximateNumberOfMessagesDelayed"
        ]
        == 20
    )


def test_sends_deduplicate_by_content_as_moto_does_with_attributes_read_when_asked(
    sqs: tuple[Any, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from moto.sqs.models import Queue

    client, _ = sqs
    monkeypatch.setattr(Queue, "attributes", property(moto_speedups.QueueAttributes))
    url = client.create_queue(
        QueueName="once.fifo", Attributes={"FifoQueue": "true", "ContentBasedDeduplication": "true"}
    )["QueueUrl"]

    for body in ("a", "a", "b"):
        client.send_message(QueueUrl=url, MessageBody=body, MessageGroupId="g")

    got = client.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    assert [m["Body"] for m in got] == ["a", "b"]
    attributes = client.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attributes["ContentBasedDeduplication"] == "true" and attributes["FifoQueue"] == "true"


def test_a_response_without_a_request_id_tag_is_left_as_it_is() -> None:
    from moto.core.responses import BaseResponse

    original = BaseResponse._enrich_response
    fast = moto_speedups._searched_only_with_tag(original)
    xml = "<R><ResponseMetadata><RequestId>old</RequestId></ResponseMetadata></R>"

    for body in ('{"Items": [{"S": "<RequestId"}]}', xml, b"<RequestId>x</RequestId>", ""):
        headers, answer = fast({"status": 200}, body)
        expected_headers, expected = original({"status": 200}, body)
        assert headers.keys() == expected_headers.keys() and headers["status"] == "200"
        if isinstance(body, bytes):  # moto's search fails on bytes, and leaves them alone
            assert answer == expected == body
        else:
            request_id = headers["x-amzn-requestid"]
            assert answer == expected.replace(expected_headers["x-amzn-requestid"], request_id)
    assert fast({}, xml)[1].count("old") == 0


def test_requests_are_parsed_exactly_as_moto_parses_them() -> None:
    from botocore.serialize import create_serializer
    from moto.core.parse import JSONParser
    from moto.core.responses import get_service_model

    # Given requests as boto3 puts them on the wire: items of every type and nesting, keys,
    # expression values, and SQS messages with attributes
    rng = random.Random(11)
    items = [{f"a{i}": random_value(rng) for i in range(rng.randint(1, 9))} for _ in range(40)]
    dynamodb = [
        (
            "PutItem",
            {"TableName": "t", "Item": item, "ConditionExpression": "attribute_not_exists(a0)"},
        )
        for item in items
    ] + [
        (
            "TransactWriteItems",
            {"TransactItems": [{"Put": {"TableName": "t", "Item": item}} for item in items[:12]]},
        ),
        (
            "Query",
            {
                "TableName": "t",
                "KeyConditionExpression": "a0 = :v",
                "ExpressionAttributeValues": {":v": items[0]["a0"]},
                "ExclusiveStartKey": items[1],
                "Limit": 7,
                "ScanIndexForward": False,
            },
        ),
    ]
    sqs = [
        (
            "SendMessage",
            {
                "QueueUrl": "http://127.0.0.1/q",
                "MessageBody": "{}",
                "DelaySeconds": 3,
                "MessageAttributes": {
                    "kind": {"DataType": "String", "StringValue": "x"},
                    "raw": {"DataType": "Binary", "BinaryValue": b"\x00\xff"},
                },
            },
        ),
        ("DeleteMessage", {"QueueUrl": "http://127.0.0.1/q", "ReceiptHandle": "r"}),
    ]
    fast = moto_speedups._one_key_looked_up(JSONParser._parse_structure)
    for service, requests in (("dynamodb", dynamodb), ("sqs", sqs)):
        model = get_service_model(service)
        for operation, params in requests:
            operation_model = model.operation_model(operation)
            wire = create_serializer("json").serialize_to_request(params, operation_model)
            request = {"method": "POST", "values": {}, "headers": {}, "body": wire["body"]}
            request.update(url_path="/", url_params={})
            expected = JSONParser(operation_model).parse(request)

            # When the structures given one key are parsed by that key
            parser = JSONParser(operation_model)
            parser._parse_structure = fast.__get__(parser)  # type: ignore[method-assign]
            parsed = parser.parse(request)

            # Then the parameters are the same, in the same order
            assert parsed == expected and repr(parsed) == repr(expected), operation
