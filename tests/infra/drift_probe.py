"""Deploy a package into moto's CloudFormation and provision infra/ the sandbox's way into the
same moto, then print what each side created, normalized, as JSON.

Run as a subprocess (`python -m tests.infra.drift_probe BUILD_DIR PROJECT_DIR`): `mock_aws`
patches botocore for the whole process and resets moto's global backends on exit, which would
reach the embedded sandbox that other tests of the session run in-process.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

CFN_STACK = "payflow-cfn"
SANDBOX_STACK = "payflow-sbx"
REGION = "us-east-1"

TABLE_KEYS = ("AttributeDefinitions", "KeySchema", "StreamSpecification", "BillingModeSummary")
INDEX_KEYS = ("IndexName", "KeySchema", "Projection")
# Queue attributes that describe configuration (not counters, timestamps or the ARN itself).
QUEUE_SKIP = {
    "QueueArn",
    "CreatedTimestamp",
    "LastModifiedTimestamp",
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed",
}


def main(build_dir: Path, project_dir: Path) -> dict[str, Any]:
    import boto3
    from moto import mock_aws

    from payflow.deploy.cloudformation import Target, deploy
    from payflow.deploy.package import Package
    from payflow.sandbox.provision import AwsClients, load_template, provision
    from tests.infra.moto_compat import for_moto

    with mock_aws():
        session = boto3.session.Session(
            region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing"
        )
        s3 = session.client("s3")
        deploy(
            Package(build_dir),
            CFN_STACK,
            Target(session),
            prepare=lambda template: for_moto(template, s3),
            poll_seconds=0.01,
            log=lambda _line: None,
        )
        cfn = session.client("cloudformation")
        cfn_ids = {
            r["LogicalResourceId"]: (r["ResourceType"], r["PhysicalResourceId"])
            for r in cfn.list_stack_resources(StackName=CFN_STACK)["StackResourceSummaries"]
        }

        clients = AwsClients(
            dynamodb=session.client("dynamodb"),
            sqs=session.client("sqs"),
            stepfunctions=session.client("stepfunctions"),
        )
        provisioned = provision(
            load_template(project_dir / "infra" / "resources.json"),
            SANDBOX_STACK,
            clients,
            base_dir=project_dir,
        )
        sandbox_ids = {
            lid: (provisioned.resource_types[lid], physical)
            for lid, physical in provisioned.physical_ids.items()
        }
        # Functions are not created by the sandbox: their stand-in ARNs name the logical id.
        sandbox_functions = {
            lid: provisioned.resolve({"Fn::GetAtt": [lid, "Arn"]})
            for lid in _function_ids(Package(build_dir).template())
        }
        cfn_functions = {
            lid: session.client("lambda").get_function(FunctionName=physical)["Configuration"][
                "FunctionArn"
            ]
            for lid, (kind, physical) in cfn_ids.items()
            if kind == "AWS::Lambda::Function"
        }
        ddb = session.client("dynamodb")
        return {
            "cfn": describe(session, cfn_ids, cfn_functions),
            "sandbox": describe(session, sandbox_ids, sandbox_functions),
            # moto's CloudFormation ignores TTL: the sandbox's is compared with the template
            "sandbox_ttl": {
                lid: ddb.describe_time_to_live(TableName=physical)["TimeToLiveDescription"]
                for lid, (kind, physical) in sandbox_ids.items()
                if kind == "AWS::DynamoDB::Table"
            },
        }


def _function_ids(template: dict[str, Any]) -> list[str]:
    return [
        lid
        for lid, r in template["Resources"].items()
        if r["Type"] in ("AWS::Serverless::Function", "AWS::Lambda::Function")
    ]


def describe(
    session: Any, ids: dict[str, tuple[str, str]], functions: dict[str, str]
) -> dict[str, Any]:
    """Tables, queues and state machines by logical id, physical names replaced by <LogicalId>."""
    ddb, sqs, sfn = (session.client(s) for s in ("dynamodb", "sqs", "stepfunctions"))
    names: dict[str, str] = {arn: f"<{lid}.Arn>" for lid, arn in functions.items()}
    result: dict[str, Any] = {"tables": {}, "queues": {}, "state_machines": {}}
    for lid, (kind, physical) in ids.items():
        if kind == "AWS::DynamoDB::Table":
            table = ddb.describe_table(TableName=physical)["Table"]
            names[table["TableArn"]] = f"<{lid}.Arn>"
            names[physical] = f"<{lid}>"
            result["tables"][lid] = {
                **{k: _sorted(table.get(k)) for k in TABLE_KEYS},
                "GlobalSecondaryIndexes": sorted(
                    (
                        {k: i.get(k) for k in INDEX_KEYS}
                        for i in table.get("GlobalSecondaryIndexes", [])
                    ),
                    key=lambda i: i["IndexName"],
                ),
                "LocalSecondaryIndexes": sorted(
                    (
                        {k: i.get(k) for k in INDEX_KEYS}
                        for i in table.get("LocalSecondaryIndexes", [])
                    ),
                    key=lambda i: i["IndexName"],
                ),
            }
        elif kind == "AWS::SQS::Queue":
            attributes = sqs.get_queue_attributes(QueueUrl=physical, AttributeNames=["All"])[
                "Attributes"
            ]
            names[attributes["QueueArn"]] = f"<{lid}.Arn>"
            names[physical] = f"<{lid}>"
            queue = {k: v for k, v in attributes.items() if k not in QUEUE_SKIP}
            for key in ("RedrivePolicy", "RedriveAllowPolicy"):
                if key in queue:
                    queue[key] = json.loads(queue[key])
            result["queues"][lid] = queue
        elif kind in ("AWS::StepFunctions::StateMachine", "AWS::Serverless::StateMachine"):
            machine = sfn.describe_state_machine(stateMachineArn=physical)
            names[physical] = f"<{lid}>"
            result["state_machines"][lid] = {
                "type": machine["type"],
                "definition": json.loads(machine["definition"]),
            }
    text = json.dumps(result, sort_keys=True, default=str)
    for physical in sorted(names, key=len, reverse=True):
        text = text.replace(json.dumps(physical)[1:-1], names[physical])
    normalized: dict[str, Any] = json.loads(text)
    return normalized


def _sorted(value: Any) -> Any:
    if isinstance(value, list) and all(isinstance(v, dict) for v in value):
        return sorted(value, key=lambda v: json.dumps(v, sort_keys=True))
    return value


if __name__ == "__main__":
    print(json.dumps(main(Path(sys.argv[1]), Path(sys.argv[2])), sort_keys=True))
