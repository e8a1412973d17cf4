"""Reproductions of the moto bugs the sandbox patches (docs/moto-patches.md), run against
moto as installed, without the sandbox's patches: ``python -m tests.sandbox.moto_upstream``
prints one JSON object, bug name -> whether moto still has it.

A process of its own: the test session applies the patches in-process elsewhere.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from typing import Any

CREDENTIALS = {
    "region_name": "us-east-1",
    "aws_access_key_id": "testing",
    "aws_secret_access_key": "testing",
}


def transact_write_cancel_breaks_streams() -> dict[str, Any]:
    """A cancelled TransactWriteItems leaves a stream record of the write it rolled back, and
    stream iterators issued before it never see a later write."""
    import boto3

    dynamodb = boto3.client("dynamodb", **CREDENTIALS)
    streams = boto3.client(
        "dynamodbstreams",
        endpoint_url="https://streams.dynamodb.us-east-1.amazonaws.com",
        **CREDENTIALS,
    )
    dynamodb.create_table(
        TableName="t",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"},
    )
    stream_arn = dynamodb.describe_table(TableName="t")["Table"]["LatestStreamArn"]
    shard = streams.describe_stream(StreamArn=stream_arn)["StreamDescription"]["Shards"][0]
    iterator = streams.get_shard_iterator(
        StreamArn=stream_arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    dynamodb.put_item(TableName="t", Item={"pk": {"S": "a"}})
    with contextlib.suppress(dynamodb.exceptions.TransactionCanceledException):
        dynamodb.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": "t", "Item": {"pk": {"S": "b"}}}},
                {
                    "ConditionCheck": {
                        "TableName": "t",
                        "Key": {"pk": {"S": "a"}},
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                },
            ]
        )
    dynamodb.put_item(TableName="t", Item={"pk": {"S": "c"}})
    seen = [
        record["dynamodb"]["Keys"]["pk"]["S"]
        for record in streams.get_records(ShardIterator=iterator)["Records"]
    ]
    expected = ["a", "c"]
    return {"present": seen != expected, "expected": expected, "actual": seen}


BUGS = {"transact_write_cancel_breaks_streams": transact_write_cancel_breaks_streams}


def main() -> int:
    from moto import mock_aws

    os.environ.pop("AWS_ENDPOINT_URL", None)
    found = {}
    for name, reproduce in BUGS.items():
        with mock_aws():
            found[name] = reproduce()
    print(json.dumps(found))
    return 0


if __name__ == "__main__":
    sys.exit(main())
