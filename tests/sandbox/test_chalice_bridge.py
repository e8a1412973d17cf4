"""A real Chalice app wired to the sandbox: invoke by any of its names, events through pollers."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from chalice import Chalice
from chalice.app import DynamoDBEvent, SQSEvent

from payflow.sandbox.aws import EmbeddedAws
from payflow.sandbox.chalice_bridge import function_handlers, handler_resolver, pollers_for
from payflow.sandbox.pollers import PollerGroup, wait_for
from payflow.sandbox.provision import AwsClients, Provisioned, provision
from tests.conftest import FunctionRegistry

# The decorators need a source; the merge template overrides it, as in the packaged app.
PLACEHOLDER_STREAM = "arn:aws:dynamodb:us-east-1:123456789012:table/placeholder/stream/x"


def build_app(app_name: str, seen: dict[str, list[Any]]) -> Chalice:
    app = Chalice(app_name)

    @app.on_dynamodb_record(stream_arn=PLACEHOLDER_STREAM, name="project_payment")
    def project_payment(event: DynamoDBEvent) -> None:
        for record in event:
            seen["stream"].append(
                (record.event_name, record.table_name, record.new_image["status"]["S"])
            )

    @app.on_sqs_message(queue="webhooks", batch_size=5, name="deliver_webhook")
    def deliver_webhook(event: SQSEvent) -> dict[str, Any]:
        failures = []
        for record in event:
            seen["sqs"].append(record.body)
            if record.body == "retry-me" and seen["sqs"].count("retry-me") == 1:
                failures.append({"itemIdentifier": record.to_dict()["messageId"]})
        return {"batchItemFailures": failures}

    @app.lambda_function(name="capture_payment")
    def capture_payment(event: dict[str, Any], context: Any) -> dict[str, Any]:
        return {"captured": event["amount"], "by": context.function_name}

    @app.route("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    return app


def merge_template() -> dict[str, Any]:
    """What infra/resources.json carries for event-driven functions: partial SAM functions."""
    return {
        "Resources": {
            "Payments": {
                "Type": "AWS::DynamoDB::Table",
                "Properties": {
                    "TableName": {"Fn::Sub": "${AWS::StackName}-payments"},
                    "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
                    "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
                    "BillingMode": "PAY_PER_REQUEST",
                    "StreamSpecification": {"StreamViewType": "NEW_AND_OLD_IMAGES"},
                },
            },
            "Webhooks": {
                "Type": "AWS::SQS::Queue",
                "Properties": {
                    "QueueName": {"Fn::Sub": "${AWS::StackName}-webhooks"},
                    "VisibilityTimeout": 1,
                },
            },
            "ProjectPayment": {
                "Type": "AWS::Serverless::Function",
                "Properties": {
                    "Events": {
                        "PaymentsStream": {
                            "Type": "DynamoDB",
                            "Properties": {
                                "Stream": {"Fn::GetAtt": ["Payments", "StreamArn"]},
                                "StartingPosition": "LATEST",
                                "BatchSize": 100,
                            },
                        }
                    }
                },
            },
            "DeliverWebhook": {
                "Type": "AWS::Serverless::Function",
                "Properties": {
                    "Events": {
                        "WebhookQueue": {
                            "Type": "SQS",
                            "Properties": {
                                "Queue": {"Fn::GetAtt": ["Webhooks", "Arn"]},
                                "BatchSize": 5,
                                "FunctionResponseTypes": ["ReportBatchItemFailures"],
                            },
                        }
                    }
                },
            },
        }
    }


@pytest.fixture
def seen() -> dict[str, list[Any]]:
    return {"stream": [], "sqs": []}


def test_every_name_of_a_function_resolves_to_its_handler(seen: dict[str, list[Any]]) -> None:
    app = build_app("shop", seen)

    resolve = handler_resolver(app, stage="dev")

    handler = app.handler_map["capture_payment"]
    assert resolve("capture_payment") is handler
    assert resolve("CapturePayment") is handler
    assert resolve("shop-dev-capture_payment") is handler
    assert resolve("APIHandler") is app
    assert resolve("health") is None  # a route view is not a Lambda entry point
    assert resolve("unknown") is None


def test_a_chalice_lambda_function_is_invoked_through_the_middleware(
    aws: EmbeddedAws, functions: FunctionRegistry, seen: dict[str, list[Any]]
) -> None:
    app = build_app("invoked", seen)
    functions.update({k: v for k, v in function_handlers(app).items() if k.startswith("invoked-")})

    response = aws.client("lambda").invoke(
        FunctionName="arn:aws:lambda:us-east-1:123456789012:function:invoked-dev-capture_payment",
        Payload=json.dumps({"amount": 700}),
    )

    assert json.loads(response["Payload"].read()) == {
        "captured": 700,
        "by": "invoked-dev-capture_payment",
    }


def test_stream_and_queue_events_reach_chalice_handlers(
    aws: EmbeddedAws,
    clients: AwsClients,
    streams: Any,
    unique: Callable[[str], str],
    seen: dict[str, list[Any]],
) -> None:
    # Given the app's event sources wired from the template's mappings
    app = build_app("events", seen)
    provisioned: Provisioned = provision(merge_template(), unique("bridge"), clients)
    pollers = pollers_for(
        app,
        provisioned,
        clients.sqs,
        streams,
        wait_seconds=1,
        idle_interval=0.02,
        max_idle_interval=0.1,
    )
    assert sorted(p.name for p in pollers) == ["DeliverWebhook", "ProjectPayment"]
    table = provisioned.physical_ids["Payments"]
    queue_url = provisioned.physical_ids["Webhooks"]

    with PollerGroup(pollers) as group:
        # When a payment is written then updated, and two webhooks are queued
        ddb = clients.dynamodb
        ddb.put_item(TableName=table, Item={"pk": {"S": "pi_1"}, "status": {"S": "processing"}})
        ddb.update_item(
            TableName=table,
            Key={"pk": {"S": "pi_1"}},
            UpdateExpression="SET #s = :s",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={":s": {"S": "succeeded"}},
        )
        clients.sqs.send_message(QueueUrl=queue_url, MessageBody="deliver-me")
        clients.sqs.send_message(QueueUrl=queue_url, MessageBody="retry-me")
        wait_for(lambda: seen["sqs"].count("retry-me") == 2, timeout=10)
        group.wait_idle(timeout=10)

    # Then Chalice's wrappers parsed Lambda-shaped events (table name from eventSourceARN)
    assert seen["stream"] == [
        ("INSERT", table, "processing"),
        ("MODIFY", table, "succeeded"),
    ]
    # ...and only the reported failure came back
    assert sorted(seen["sqs"]) == ["deliver-me", "retry-me", "retry-me"]


def test_a_mapping_to_an_unknown_function_is_reported(
    clients: AwsClients, streams: Any, unique: Callable[[str], str], seen: dict[str, list[Any]]
) -> None:
    template = merge_template()
    template["Resources"]["Orphan"] = template["Resources"].pop("DeliverWebhook")
    provisioned = provision(template, unique("orphan"), clients)

    with pytest.raises(LookupError, match="Orphan"):
        pollers_for(build_app("orphan", seen), provisioned, clients.sqs, streams)
