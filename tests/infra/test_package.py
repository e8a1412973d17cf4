"""The package: `chalice package` merged with infra/ (payflow/deploy/package.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from cfnlint.api import lint_file

from payflow.deploy.cloudformation import expand_sam, with_artifacts
from payflow.deploy.package import (
    LAMBDA_FUNCTIONS,
    QUEUE,
    SERVERLESS_FUNCTION,
    STATE_MACHINES,
    XRAY_ACTIONS,
    Package,
    PackageError,
    build_merge_template,
    dead_letter_queues,
    find_cycle,
    is_traced,
    merge,
)

from .conftest import of_type

EVENT_SOURCES = {"SQS": "Queue", "DynamoDB": "Stream", "Kinesis": "Stream"}
# What Lambda and Step Functions need to send segments to X-Ray.
WRITE_TRACES = {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}


def test_the_packaged_template_passes_cfn_lint_without_errors_or_warnings(built: Package) -> None:
    matches = lint_file(built.template_path)

    found = [f"{m.rule.id} {m.message} ({m.path_string})" for m in matches if m.rule.id[0] in "EW"]
    assert found == []


def test_the_package_holds_template_code_and_definition_files(
    built: Package, template: dict[str, Any]
) -> None:
    assert built.code_path.stat().st_size > 0
    for resource in of_type(template, *STATE_MACHINES).values():
        properties = resource["Properties"]
        location = properties.get("DefinitionUri") or properties.get("DefinitionS3Location")
        if isinstance(location, str):
            assert (built.directory / location).is_file()


def test_every_resource_of_infra_is_in_the_package_with_its_type(
    template: dict[str, Any], resources: dict[str, Any]
) -> None:
    for logical_id, resource in resources["Resources"].items():
        assert template["Resources"][logical_id]["Type"] == resource["Type"], logical_id
    assert set(resources.get("Outputs", {})) <= set(template["Outputs"])
    assert set(resources.get("Parameters", {})) <= set(template.get("Parameters", {}))


def test_every_function_gets_the_environment_of_infra(
    template: dict[str, Any], environment: dict[str, Any]
) -> None:
    functions = of_type(template, *LAMBDA_FUNCTIONS)

    assert "APIHandler" in functions
    for logical_id, function in functions.items():
        variables = function["Properties"]["Environment"]["Variables"]
        assert set(environment) <= set(variables), logical_id


def test_function_overrides_of_infra_complete_the_functions_chalice_generates(
    template: dict[str, Any], resources: dict[str, Any]
) -> None:
    for logical_id, override in of_type(resources, SERVERLESS_FUNCTION).items():
        merged = template["Resources"][logical_id]["Properties"]
        assert {"Handler", "Runtime", "CodeUri", "Role"} <= set(merged), logical_id
        for name, event in (override["Properties"].get("Events") or {}).items():
            merged_event = merged["Events"][name]
            assert merged_event["Type"], f"{logical_id}.{name} overrides no Chalice event"
            for key, value in event.get("Properties", {}).items():
                assert merged_event["Properties"][key] == value, f"{logical_id}.{name}.{key}"


def test_event_sources_are_template_resources_and_report_batch_item_failures(
    template: dict[str, Any],
) -> None:
    for logical_id, function in of_type(template, SERVERLESS_FUNCTION).items():
        for name, event in (function["Properties"].get("Events") or {}).items():
            if event["Type"] not in EVENT_SOURCES:
                continue
            source = event["Properties"][EVENT_SOURCES[event["Type"]]]
            assert isinstance(source, dict) and set(source) <= {"Ref", "Fn::GetAtt"}, (
                f"{logical_id}.{name} reads {source}: reference the template's resource"
            )
            assert "ReportBatchItemFailures" in event["Properties"].get(
                "FunctionResponseTypes", []
            ), f"{logical_id}.{name} lacks ReportBatchItemFailures"


def test_roles_grant_actions_on_the_template_resources_only(template: dict[str, Any]) -> None:
    roles = of_type(template, "AWS::IAM::Role")
    for logical_id, function in of_type(template, SERVERLESS_FUNCTION).items():
        role = function["Properties"]["Role"]
        assert role["Fn::GetAtt"][0] in roles, logical_id
    for logical_id, role in roles.items():
        for policy in role["Properties"].get("Policies", []):
            for statement in policy["PolicyDocument"]["Statement"]:
                targets = statement["Resource"]
                targets = targets if isinstance(targets, list) else [targets]
                actions = statement["Action"]
                actions = actions if isinstance(actions, list) else [actions]
                # X-Ray's write actions accept no resource but "*"
                if not set(actions) <= set(XRAY_ACTIONS):
                    assert "*" not in targets, f"{logical_id}: {statement}"
                assert not [a for a in actions if a.endswith("*")], f"{logical_id}: {actions}"


def test_every_dead_letter_queue_has_an_alarm(template: dict[str, Any]) -> None:
    queues = dead_letter_queues(template["Resources"])
    alarms = of_type(template, "AWS::CloudWatch::Alarm")

    assert queues, "the template has no dead-letter queue"
    for queue in queues:
        watching = [
            a
            for a in alarms.values()
            if {"Name": "QueueName", "Value": {"Fn::GetAtt": [queue, "QueueName"]}}
            in a["Properties"].get("Dimensions", [])
        ]
        assert watching, queue


def test_tables_keep_streams_and_ttl(template: dict[str, Any], resources: dict[str, Any]) -> None:
    for logical_id, table in of_type(resources, "AWS::DynamoDB::Table").items():
        packaged = template["Resources"][logical_id]["Properties"]
        for key in ("StreamSpecification", "TimeToLiveSpecification"):
            assert packaged.get(key) == table["Properties"].get(key), f"{logical_id}.{key}"


# --- the merge, on small templates -------------------------------------------------------------


def chalice_template(*functions: str, events: dict[str, Any] | None = None) -> dict[str, Any]:
    resources: dict[str, Any] = {
        "DefaultRole": {"Type": "AWS::IAM::Role", "Properties": {"Policies": []}},
    }
    for name in functions:
        resources[name] = {
            "Type": SERVERLESS_FUNCTION,
            "Properties": {
                "Handler": f"app.{name}",
                "Runtime": "python3.11",
                "CodeUri": "./deployment.zip",
                "Role": {"Fn::GetAtt": ["DefaultRole", "Arn"]},
                **({"Events": events} if events else {}),
            },
        }
    return {"Resources": resources}


QUEUES = {
    "Dlq": {"Type": QUEUE, "Properties": {}},
    "Work": {
        "Type": QUEUE,
        "Properties": {"RedrivePolicy": {"deadLetterTargetArn": {"Fn::GetAtt": ["Dlq", "Arn"]}}},
    },
}


def test_an_intrinsic_in_an_override_replaces_chalices_value_instead_of_merging_into_it() -> None:
    chalice = chalice_template(
        "Deliver",
        events={"Sqs": {"Type": "SQS", "Properties": {"Queue": {"Fn::Sub": "arn:...:work"}}}},
    )
    override = {
        "Resources": {
            "Deliver": {
                "Type": SERVERLESS_FUNCTION,
                "Properties": {
                    "Events": {
                        "Sqs": {
                            "Properties": {
                                "Queue": {"Fn::GetAtt": ["Work", "Arn"]},
                                "FunctionResponseTypes": ["ReportBatchItemFailures"],
                            }
                        }
                    }
                },
            }
        }
    }

    merged = merge(override, chalice)

    event = merged["Resources"]["Deliver"]["Properties"]["Events"]["Sqs"]
    assert event == {
        "Type": "SQS",
        "Properties": {
            "Queue": {"Fn::GetAtt": ["Work", "Arn"]},
            "FunctionResponseTypes": ["ReportBatchItemFailures"],
        },
    }


def test_an_override_of_a_function_chalice_does_not_generate_is_refused() -> None:
    resources = {"Resources": {"Ghost": {"Type": SERVERLESS_FUNCTION, "Properties": {}}}}

    with pytest.raises(PackageError, match="Ghost"):
        build_merge_template(chalice_template("APIHandler"), resources, {})


def test_functions_reach_state_machines_by_name_so_the_template_has_no_cycle(
    tmp_path: Path,
) -> None:
    (tmp_path / "m.asl.json").write_text('{"StartAt": "A", "States": {"A": {"Type": "Succeed"}}}')
    resources = {
        "Resources": {
            **QUEUES,
            "Machine": {
                "Type": "AWS::StepFunctions::StateMachine",
                "Properties": {
                    "DefinitionUri": "m.asl.json",
                    "DefinitionSubstitutions": {"Task": {"Fn::GetAtt": ["Charge", "Arn"]}},
                },
            },
        }
    }
    environment = {"MACHINE": {"Ref": "Machine"}}

    merge_template = build_merge_template(
        chalice_template("Charge"), resources, environment, base_dir=tmp_path
    )
    merged = merge(merge_template, chalice_template("Charge"))

    machine = merged["Resources"]["Machine"]["Properties"]
    # CloudFormation's spelling, a name the sandbox would give it, and a role of its own
    assert machine["DefinitionS3Location"] == "m.asl.json"
    assert machine["StateMachineName"] == {"Fn::Sub": "${AWS::StackName}-Machine"}
    assert machine["RoleArn"] == {"Fn::GetAtt": ["MachineRole", "Arn"]}
    role = merged["Resources"]["MachineRole"]["Properties"]["Policies"][0]["PolicyDocument"]
    assert role["Statement"][0]["Action"] == ["lambda:InvokeFunction"]
    assert role["Statement"][0]["Resource"][0] == {"Fn::GetAtt": ["Charge", "Arn"]}
    # The function names the machine's ARN without referencing it: no dependency cycle
    variable = merged["Resources"]["Charge"]["Properties"]["Environment"]["Variables"]["MACHINE"]
    assert "Fn::Join" in variable
    assert "WorkAlarm" not in merged["Resources"]
    assert merged["Resources"]["DlqAlarm"]["Type"] == "AWS::CloudWatch::Alarm"


def test_find_cycle_names_the_resources_of_a_cycle() -> None:
    assert find_cycle({"A": {"B"}, "B": {"C"}, "C": {"A"}, "D": set()}) == ["A", "B", "C", "A"]
    assert find_cycle({"A": {"B"}, "B": set()}) == []


# --- X-Ray active tracing ----------------------------------------------------------------------


def test_every_function_and_state_machine_of_the_package_traces_actively(
    template: dict[str, Any],
) -> None:
    functions = of_type(template, *LAMBDA_FUNCTIONS)
    machines = of_type(template, *STATE_MACHINES)

    assert "APIHandler" in functions
    assert {"PaymentStateMachine", "RefundStateMachine"} <= set(machines)
    assert [lid for lid, r in {**functions, **machines}.items() if not is_traced(r)] == []
    for function in of_type(template, SERVERLESS_FUNCTION).values():
        assert function["Properties"]["Tracing"] == "Active"
    for machine in of_type(template, "AWS::Serverless::StateMachine").values():
        assert machine["Properties"]["Tracing"] == {"Enabled": True}
    # The API Gateway stage too, so a trace starts at the request
    assert template["Resources"]["RestAPI"]["Properties"]["TracingEnabled"] is True


def test_the_functions_roles_may_write_traces(template: dict[str, Any]) -> None:
    roles = {
        function["Properties"]["Role"]["Fn::GetAtt"][0]
        for function in of_type(template, *LAMBDA_FUNCTIONS).values()
    }

    for role_id in roles:
        statements = [
            statement
            for policy in template["Resources"][role_id]["Properties"]["Policies"]
            for statement in policy["PolicyDocument"]["Statement"]
        ]
        assert [
            s for s in statements if s["Effect"] == "Allow" and set(s["Action"]) >= WRITE_TRACES
        ], f"{role_id} cannot write traces"


def test_deployed_functions_trace_and_the_environment_shared_with_the_sandbox_does_not(
    template: dict[str, Any], environment: dict[str, Any]
) -> None:
    # Given the sandbox applies infra/environment.json after its own PAYFLOW_TRACING=false
    shared = set(environment)

    # When the package gives every function its environment
    functions = of_type(template, *LAMBDA_FUNCTIONS)

    # Then tracing is on by configuration in every deployed function (.chalice/config.json),
    # and nothing in the shared environment could turn it on in the sandbox
    for logical_id, function in functions.items():
        variables = function["Properties"]["Environment"]["Variables"]
        assert variables["PAYFLOW_TRACING"] == "true", logical_id
        assert variables["POWERTOOLS_TRACE_DISABLED"] == "false", logical_id
    assert not {"PAYFLOW_TRACING", "POWERTOOLS_TRACE_DISABLED"} & shared


def test_the_expanded_template_traces_and_lets_the_state_machines_write_traces(
    built: Package,
) -> None:
    # Given the package as the deploy step expands it (what CloudFormation receives)
    expanded = expand_sam(
        with_artifacts(built.template(), lambda location: ("bucket", location)), "us-east-1"
    )
    resources = expanded["Resources"]

    # When looking at the plain Lambda functions and state machines
    functions = of_type(expanded, "AWS::Lambda::Function")
    machines = of_type(expanded, "AWS::StepFunctions::StateMachine")

    # Then all trace, and each state machine's role grants X-Ray's write actions
    assert functions and len(machines) == 2
    for logical_id, function in functions.items():
        assert function["Properties"]["TracingConfig"] == {"Mode": "Active"}, logical_id
    for logical_id, machine in machines.items():
        assert machine["Properties"]["TracingConfiguration"] == {"Enabled": True}, logical_id
        role = resources[machine["Properties"]["RoleArn"]["Fn::GetAtt"][0]]["Properties"]
        managed = [arn for arn in role.get("ManagedPolicyArns", []) if "xray" in str(arn).lower()]
        inline = [
            s
            for policy in role.get("Policies", [])
            for s in policy["PolicyDocument"]["Statement"]
            if set(s["Action"]) >= WRITE_TRACES
        ]
        assert managed or inline, f"{logical_id}'s role cannot write traces"


def test_a_traced_state_machine_gets_a_role_that_may_write_traces(tmp_path: Path) -> None:
    # Given a CloudFormation state machine with tracing on and no role
    (tmp_path / "m.asl.json").write_text('{"StartAt": "A", "States": {"A": {"Type": "Succeed"}}}')
    resources = {
        "Resources": {
            "Machine": {
                "Type": "AWS::StepFunctions::StateMachine",
                "Properties": {
                    "DefinitionUri": "m.asl.json",
                    "TracingConfiguration": {"Enabled": True},
                },
            },
        }
    }

    # When the package gives it a role
    merged = merge(
        build_merge_template(chalice_template("Charge"), resources, {}, base_dir=tmp_path),
        chalice_template("Charge"),
    )

    # Then that role may write traces
    role = merged["Resources"]["MachineRole"]["Properties"]["Policies"][0]["PolicyDocument"]
    assert {"Sid": "XRay", "Effect": "Allow", "Action": XRAY_ACTIONS, "Resource": ["*"]} in role[
        "Statement"
    ]


def test_functions_without_tracing_get_no_xray_permission() -> None:
    # Given Chalice functions packaged without "xray": true (Tracing: PassThrough)
    chalice = chalice_template("Charge")
    chalice["Resources"]["Charge"]["Properties"]["Tracing"] = "PassThrough"

    # When the package narrows their role
    merged = merge(build_merge_template(chalice, {"Resources": {}}, {}), chalice)

    # Then the role has no X-Ray statement: the permission follows the configuration
    policy = merged["Resources"]["DefaultRole"]["Properties"]["Policies"][0]["PolicyDocument"]
    assert [s for s in policy["Statement"] if s["Sid"] == "XRay"] == []
