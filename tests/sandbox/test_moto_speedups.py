"""moto's hot paths made cheaper (payflow/sandbox/moto_speedups.py) give the same answers.

Each check runs the same requests against moto's own Table.query and the faster one, on moto
in this process (`mock_aws`), and compares the whole responses.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from payflow.sandbox import moto_speedups

REGION = "us-east-1"


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
]


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
    results = [every_page(client, "objects", q) for q in QUERIES]
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
    monkeypatch.setattr(Table, "query", moto_speedups._query_from_candidates(Table.query))
    monkeypatch.setattr(Table, "sorted_items", moto_speedups._sorted_by_values)
    fast = answers(dynamodb)

    # Then nothing differs: items, order, counts and pagination keys
    assert fast == expected
    assert '"Count": 0' in fast and '"LastEvaluatedKey"' in fast


def test_a_definition_is_parsed_once_and_its_program_reused() -> None:
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser

    parse = moto_speedups._remembered_parse(AmazonStateLanguageParser.parse).__func__  # type: ignore[attr-defined]
    definition = json.dumps({"StartAt": "A", "States": {"A": {"Type": "Pass", "End": True}}})

    first, second = parse(definition), parse(definition)

    assert first is second
    assert parse(definition.replace('"A"', '"B"')) is not first
