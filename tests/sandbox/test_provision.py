"""Provisioning moto from the CloudFormation template, the single list of resources."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from payflow.sandbox.lambda_invoke import function_arn
from payflow.sandbox.pollers import wait_for
from payflow.sandbox.provision import (
    REPO_ROOT,
    AwsClients,
    EventSourceMapping,
    Provisioned,
    TemplateError,
    load_template,
    provision,
    resolve_environment,
)
from tests.conftest import FunctionRegistry

RESOURCES = REPO_ROOT / "infra" / "resources.json"
ENVIRONMENT = REPO_ROOT / "infra" / "environment.json"


def test_the_repository_template_provisions_twice_to_the_same_resources(
    clients: AwsClients, unique: Callable[[str], str]
) -> None:
    template = load_template(RESOURCES)
    stack = unique("payflow")

    first = provision(template, stack, clients)
    second = provision(template, stack, clients)

    # Idempotent: the second run finds and reuses everything
    assert second.physical_ids == first.physical_ids
    assert second.attributes == first.attributes
    ddb, sqs = clients.dynamodb, clients.sqs
    tables = {
        first.physical_ids[lid]
        for lid, kind in first.resource_types.items()
        if kind == "AWS::DynamoDB::Table"
    }
    assert tables <= set(ddb.list_tables()["TableNames"])
    # Tables: names from Fn::Sub, streams, GSIs, TTL (which moto's CloudFormation would drop)
    payments = ddb.describe_table(TableName=first.physical_ids["PaymentsTable"])["Table"]
    assert payments["TableName"] == f"{stack}-payments"
    assert payments["StreamSpecification"]["StreamViewType"] == "NEW_AND_OLD_IMAGES"
    assert first.attributes[("PaymentsTable", "StreamArn")] == payments["LatestStreamArn"]
    assert [i["IndexName"] for i in payments["GlobalSecondaryIndexes"]] == ["gsi1", "gsi2", "gsi3"]
    ttl = ddb.describe_time_to_live(TableName=f"{stack}-idempotency")["TimeToLiveDescription"]
    assert ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": "expires_at"}
    # Queues: the redrive policy points at the DLQ's ARN, resolved through Fn::GetAtt
    attributes = sqs.get_queue_attributes(
        QueueUrl=first.physical_ids["WebhookQueue"], AttributeNames=["All"]
    )["Attributes"]
    assert json.loads(attributes["RedrivePolicy"]) == {
        "deadLetterTargetArn": first.attributes[("WebhookDeadLetterQueue", "Arn")],
        "maxReceiveCount": 8,  # the WebhookMaxAttempts parameter's default
    }
    assert attributes["VisibilityTimeout"] == "60"
    assert first.outputs["WebhookQueueUrl"] == first.physical_ids["WebhookQueue"]


def test_the_environment_file_resolves_against_what_was_provisioned(
    clients: AwsClients, unique: Callable[[str], str]
) -> None:
    provisioned = provision(load_template(RESOURCES), unique("payflow"), clients)

    environment = resolve_environment(load_template(ENVIRONMENT), provisioned)

    assert not any(name.startswith("_") for name in environment)
    assert environment["PAYFLOW_PAYMENTS_TABLE"] == provisioned.physical_ids["PaymentsTable"]
    assert environment["PAYFLOW_WEBHOOK_QUEUE_URL"] == provisioned.physical_ids["WebhookQueue"]


def test_state_machine_from_a_definition_file_runs_a_chalice_style_function(
    clients: AwsClients,
    functions: FunctionRegistry,
    unique: Callable[[str], str],
    tmp_path: Path,
) -> None:
    # Given an ASL file with a substitution for a function Chalice generates (not in the template)
    function = unique("Capture").replace("-", "")
    functions[function] = lambda event, context: {"captured": event["amount"]}
    (tmp_path / "statemachines").mkdir()
    (tmp_path / "statemachines" / "capture.asl.json").write_text(
        json.dumps(
            {
                "StartAt": "Capture",
                "States": {"Capture": {"Type": "Task", "Resource": "${CaptureArn}", "End": True}},
            }
        )
    )
    template = {
        "Resources": {
            "CaptureMachine": {
                "Type": "AWS::StepFunctions::StateMachine",
                "Properties": {
                    "StateMachineName": {"Fn::Sub": "${AWS::StackName}-capture"},
                    "DefinitionUri": "statemachines/capture.asl.json",
                    "DefinitionSubstitutions": {"CaptureArn": {"Fn::GetAtt": [function, "Arn"]}},
                    "RoleArn": {"Fn::GetAtt": ["MachineRole", "Arn"]},
                    "StateMachineType": "STANDARD",
                },
            },
            "MachineRole": {"Type": "AWS::IAM::Role", "Properties": {}},
        }
    }
    stack = unique("sm")

    # When provisioned (twice) and executed
    provisioned = provision(template, stack, clients, base_dir=tmp_path)
    again = provision(template, stack, clients, base_dir=tmp_path)
    sfn = clients.stepfunctions
    machine_arn = provisioned.physical_ids["CaptureMachine"]
    described = sfn.describe_state_machine(stateMachineArn=machine_arn)
    execution_arn = sfn.start_execution(
        stateMachineArn=machine_arn, name="run-1", input=json.dumps({"amount": 500})
    )["executionArn"]
    wait_for(lambda: sfn.describe_execution(executionArn=execution_arn)["status"] != "RUNNING", 10)

    # Then the substitution pointed the task at the in-process function
    assert again.physical_ids == provisioned.physical_ids
    assert provisioned.skipped == ["MachineRole"]
    assert function_arn(function) in described["definition"]
    assert described["roleArn"] == "arn:aws:iam::123456789012:role/MachineRole"
    execution = sfn.describe_execution(executionArn=execution_arn)
    assert execution["status"] == "SUCCEEDED", execution
    assert json.loads(execution["output"]) == {"captured": 500}


def test_event_source_mappings_come_from_mappings_and_partial_sam_functions(
    clients: AwsClients, unique: Callable[[str], str]
) -> None:
    template = {
        "Resources": {
            "Events": {
                "Type": "AWS::DynamoDB::Table",
                "Properties": {
                    "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
                    "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
                    "BillingMode": "PAY_PER_REQUEST",
                    "StreamSpecification": {"StreamViewType": "NEW_IMAGE"},
                },
            },
            "Jobs": {"Type": "AWS::SQS::Queue", "Properties": {"FifoQueue": True}},
            "DeliverWebhook": {
                "Type": "AWS::Serverless::Function",
                "Properties": {
                    "Events": {
                        "Queue": {
                            "Type": "SQS",
                            "Properties": {
                                "Queue": {"Fn::GetAtt": ["Jobs", "Arn"]},
                                "BatchSize": 5,
                                "FunctionResponseTypes": ["ReportBatchItemFailures"],
                            },
                        },
                        "Api": {"Type": "Api", "Properties": {"Path": "/", "Method": "get"}},
                    }
                },
            },
            "OnEvent": {
                "Type": "AWS::Serverless::Function",
                "Properties": {
                    "Events": {
                        "Stream": {
                            "Type": "DynamoDB",
                            "Properties": {
                                "Stream": {"Fn::GetAtt": ["Events", "StreamArn"]},
                                "StartingPosition": "TRIM_HORIZON",
                                "BatchSize": 50,
                            },
                        }
                    }
                },
            },
            "AuditMapping": {
                "Type": "AWS::Lambda::EventSourceMapping",
                "Properties": {
                    "FunctionName": {"Ref": "AuditRecords"},
                    "EventSourceArn": {"Fn::GetAtt": ["Events", "StreamArn"]},
                    "StartingPosition": "LATEST",
                    "FunctionResponseTypes": ["ReportBatchItemFailures"],
                },
            },
            "Alarm": {"Type": "AWS::CloudWatch::Alarm", "Properties": {}},
        }
    }

    provisioned = provision(template, unique("esm"), clients)

    stream_arn = provisioned.attributes[("Events", "StreamArn")]
    queue_arn = provisioned.attributes[("Jobs", "Arn")]
    assert queue_arn.endswith(".fifo")
    assert sorted(provisioned.event_source_mappings, key=lambda m: m.function) == [
        EventSourceMapping("AuditRecords", "dynamodb", stream_arn, 100, "LATEST", True),
        EventSourceMapping("DeliverWebhook", "sqs", queue_arn, 5, None, True),
        EventSourceMapping("OnEvent", "dynamodb", stream_arn, 50, "TRIM_HORIZON", False),
    ]
    assert sorted(provisioned.skipped) == ["Alarm", "AuditMapping", "DeliverWebhook", "OnEvent"]


def test_intrinsics_resolve_like_cloudformation() -> None:
    state = Provisioned(
        stack_name="demo",
        region="us-east-1",
        parameters={"Stage": "dev"},
        physical_ids={"Queue": "https://queue/url"},
        attributes={("Queue", "Arn"): "arn:aws:sqs:us-east-1:123456789012:demo-q"},
        resource_types={"Queue": "AWS::SQS::Queue"},
    )

    assert state.resolve({"Ref": "Queue"}) == "https://queue/url"
    assert state.resolve({"Ref": "Stage"}) == "dev"
    assert state.resolve({"Fn::Sub": "${AWS::StackName}-${Stage}-${AWS::AccountId}"}) == (
        "demo-dev-123456789012"
    )
    assert state.resolve({"Fn::Sub": "q=${Queue.Arn} ${!Literal}"}) == (
        "q=arn:aws:sqs:us-east-1:123456789012:demo-q ${Literal}"
    )
    assert state.resolve({"Fn::Sub": ["${Name}@${AWS::Region}", {"Name": {"Ref": "Stage"}}]}) == (
        "dev@us-east-1"
    )
    assert state.resolve({"Fn::Join": ["/", ["a", {"Ref": "Stage"}]]}) == "a/dev"
    assert state.resolve({"Fn::GetAtt": "Queue.Arn"}).endswith(":demo-q")
    # A function Chalice generates: not in the template, its logical id is its name
    assert state.resolve({"Fn::GetAtt": ["ProcessPayment", "Arn"]}) == (
        "arn:aws:lambda:us-east-1:123456789012:function:ProcessPayment"
    )
    with pytest.raises(TemplateError):
        state.resolve({"Ref": "Missing"})
    with pytest.raises(TemplateError):
        state.resolve({"Fn::ImportValue": "x"})


def test_a_reference_cycle_is_reported(clients: AwsClients) -> None:
    template: dict[str, Any] = {
        "Resources": {
            "A": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": {"Ref": "B"}}},
            "B": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": {"Ref": "A"}}},
        }
    }

    with pytest.raises(TemplateError, match="circular"):
        provision(template, "cycle", clients)


def test_a_kept_table_from_before_an_index_gets_it_and_its_items_are_found_by_their_keys(
    clients: AwsClients, unique: Callable[[str], str], caplog: pytest.LogCaptureFixture
) -> None:
    # Given: the payments table as a sandbox provisioned it before gsi3 existed, holding an
    # item that carries gsi3 keys (one the backfill gave them)
    template = load_template(RESOURCES)
    stack = unique("payflow")
    older = json.loads(json.dumps(template))
    table = older["Resources"]["PaymentsTable"]["Properties"]
    table["GlobalSecondaryIndexes"] = [
        index for index in table["GlobalSecondaryIndexes"] if index["IndexName"] != "gsi3"
    ]
    table["AttributeDefinitions"] = [
        a for a in table["AttributeDefinitions"] if not a["AttributeName"].startswith("gsi3")
    ]
    provision(older, stack, clients)
    ddb = clients.dynamodb
    item = {"pk": "pi_1", "sk": "payment_intent", "gsi3pk": "acct#payment_intent#card"}
    ddb.put_item(
        TableName=f"{stack}-payments",
        Item={**{k: {"S": v} for k, v in item.items()}, "gsi3sk": {"S": "pi_1"}},
    )

    # When: today's template is provisioned over it (the next start of that sandbox)
    provision(template, stack, clients)

    # Then: the index is there, reads the item, and the log says to backfill the rest
    payments = ddb.describe_table(TableName=f"{stack}-payments")["Table"]
    assert [i["IndexName"] for i in payments["GlobalSecondaryIndexes"]] == ["gsi1", "gsi2", "gsi3"]
    found = ddb.query(
        TableName=f"{stack}-payments",
        IndexName="gsi3",
        KeyConditionExpression="gsi3pk = :pk",
        ExpressionAttributeValues={":pk": {"S": "acct#payment_intent#card"}},
    )["Items"]
    assert [i["pk"]["S"] for i in found] == ["pi_1"]
    assert "payflow backfill-indexes" in caplog.text
    # And: a third start adds nothing
    caplog.clear()
    provision(template, stack, clients)
    assert "backfill" not in caplog.text
