"""The package: `chalice package` merged with infra/ (payflow/deploy/package.py)."""

from __future__ import annotations

import ast
import hashlib
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
from cfnlint.api import lint_file

from payflow.deploy.cloudformation import expand_sam, with_artifacts
from payflow.deploy.package import (
    AWS_SERVICES,
    LAMBDA_FUNCTIONS,
    QUEUE,
    REPO_ROOT,
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
    package,
)

from .conftest import of_type

EVENT_SOURCES = {"SQS": "Queue", "DynamoDB": "Stream", "Kinesis": "Stream"}
# What Lambda and Step Functions need to send segments to X-Ray.
WRITE_TRACES = {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}

# The dev install downloads the package's wheels here (Makefile), so the real build needs no
# network: pip takes them from this folder, hash-checked against requirements.lock.
WHEELHOUSE = Path(sys.prefix) / "wheelhouse"
MAX_ZIPPED_BYTES = 10 * 1024 * 1024
# Top-level names of the sandbox, the dev tools and Chalice's command line (its click, pip,
# inquirer, yaml...): none belongs in a function's package.
NOT_SHIPPED = {
    "moto",
    "waitress",
    "pip",
    "setuptools",
    "wheel",
    "click",
    "inquirer",
    "yaml",
    "pytest",
    "_pytest",
    "hypothesis",
    "locust",
    "cfnlint",
    "samtranslator",
    "mypy",
    "ruff",
    "uv",
    "tests",
    "bench",
    "payflow",
    "infra",
    "statemachines",
}
RUNTIME = {
    "app.py",
    "chalice",
    "chalicelib",
    "boto3",
    "botocore",
    "pydantic",
    "pydantic_core",
    "aws_lambda_powertools",
    "aws_xray_sdk",
    "stripe",
}


# --- the real package: dependencies from the lock, reproducible, small --------------------------


@pytest.fixture(scope="module")
def real_build(tmp_path_factory: pytest.TempPathFactory) -> Package:
    """One `chalice package` with the requirements (the module's other checks share it)."""
    assert WHEELHOUSE.is_dir(), f"no {WHEELHOUSE}: rerun the dev install (make .venv/...)"
    return package(tmp_path_factory.mktemp("real"), stage="dev", wheelhouse=WHEELHOUSE)


@pytest.fixture(scope="module")
def shipped(real_build: Package) -> Iterator[zipfile.ZipFile]:
    with zipfile.ZipFile(real_build.code_path) as archive:
        yield archive


def top_level(archive: zipfile.ZipFile) -> set[str]:
    return {name.split("/")[0] for name in archive.namelist()}


def locked_versions() -> dict[str, str]:
    """requirements.lock as {normalized name: version}."""
    pins = re.findall(
        r"^([A-Za-z0-9._-]+)==([^\s;]+)", (REPO_ROOT / "requirements.lock").read_text(), re.M
    )
    return {normalized(name): version for name, version in pins}


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_the_package_holds_the_runtime_dependencies_and_nothing_of_the_dev_tools(
    shipped: zipfile.ZipFile,
) -> None:
    names = top_level(shipped)

    assert names >= RUNTIME, RUNTIME - names
    assert names & NOT_SHIPPED == set()
    assert [n for n in shipped.namelist() if "__pycache__" in n or n.endswith(".pyc")] == []
    # Chalice's packager adds its runtime and nothing else of chalice
    assert {n for n in shipped.namelist() if n.startswith("chalice/")} == {
        "chalice/__init__.py",
        "chalice/app.py",
    }
    assert not [n for n in names if n.startswith("chalice-")], "chalice's metadata is shipped"


def test_the_package_ships_payflow_js_and_its_frames(shipped: zipfile.ZipFile) -> None:
    # Built by make from clients/js into chalicelib/static: /js/v1/ serves them on AWS too
    names = set(shipped.namelist())
    for asset in ("payflow.js", "elements.html", "elements.js", "challenge.html", "challenge.js"):
        assert f"chalicelib/static/js/v1/{asset}" in names, asset


def test_the_package_is_at_most_10_mb_zipped(real_build: Package) -> None:
    assert real_build.code_path.stat().st_size <= MAX_ZIPPED_BYTES


def test_the_package_and_the_dev_install_have_the_versions_of_the_lock(
    shipped: zipfile.ZipFile,
) -> None:
    # Given the lock's pins
    locked = locked_versions()

    # When reading the versions the package ships (one .dist-info per distribution)
    found = {
        match.group(1): match.group(2)
        for name in top_level(shipped)
        if (match := re.fullmatch(r"(.+)-([^-]+)\.dist-info", name))
    }

    # Then each is the locked one, and so is the one the tests run with
    assert len(found) >= 15
    for name, version in found.items():
        assert locked.get(normalized(name)) == version, name
        assert metadata.version(name) == version, f"the dev install has another {name}"


def test_the_same_input_gives_the_same_zip(real_build: Package, tmp_path: Path) -> None:
    # Given a second build of the same sources and lock
    again = package(tmp_path / "again", stage="dev", wheelhouse=WHEELHOUSE)

    # Then the archives are byte-identical: sorted entries, fixed times and modes
    def digest(path: Path) -> str:
        return hashlib.sha256(path.read_bytes()).hexdigest()

    assert digest(again.code_path) == digest(real_build.code_path)
    with zipfile.ZipFile(again.code_path) as archive:
        entries = archive.infolist()
    assert [e.filename for e in entries] == sorted(e.filename for e in entries)
    assert {(e.date_time, e.external_attr >> 16) for e in entries} == {
        ((1980, 1, 1, 0, 0, 0), 0o100644)
    }


def test_a_wheel_whose_hash_is_not_in_the_lock_fails_the_build(tmp_path: Path) -> None:
    # Given a copy of the project whose lock has another hash for pydantic's wheels
    project = tmp_path / "project"
    project.mkdir()
    for name in ("app.py", "requirements.txt", "requirements.lock"):
        shutil.copy2(REPO_ROOT / name, project / name)
    for folder in ("chalicelib", ".chalice"):
        shutil.copytree(REPO_ROOT / folder, project / folder)
    lock = project / "requirements.lock"
    pinned = re.search(r"^pydantic==.*?(?=^\S)", lock.read_text(), re.M | re.S)
    assert pinned
    tampered = re.sub(r"sha256:[0-9a-f]{64}", "sha256:" + "0" * 64, pinned.group(0))
    lock.write_text(lock.read_text().replace(pinned.group(0), tampered))

    # When it is packaged from the same wheels, then pip refuses them
    with pytest.raises(PackageError, match="DO NOT MATCH THE HASHES"):
        package(tmp_path / "build", project_dir=project, wheelhouse=WHEELHOUSE)


def test_the_package_imports_the_app_and_creates_its_clients_on_its_own(
    shipped: zipfile.ZipFile, tmp_path: Path
) -> None:
    # Given the package unpacked, and a Python that sees nothing but it and the stdlib (-S)
    shipped.extractall(tmp_path)
    script = (
        "import importlib, pkgutil, sys; sys.path.insert(0, sys.argv[1]); import app, boto3\n"
        "session = boto3.session.Session(region_name='us-east-1', aws_access_key_id='x',"
        " aws_secret_access_key='x')\n"
        "for service in sys.argv[2:]: session.client(service)\n"
        # `import app` imports little: the functions' first calls import the rest, and the
        # Stripe connector's calls the SDK.
        "import chalicelib, stripe\n"
        "for module in pkgutil.walk_packages(chalicelib.__path__, 'chalicelib.'):\n"
        "    importlib.import_module(module.name)\n"
        "print(sorted(f.name for f in app.app.pure_lambda_functions))\n"
    )

    # When it imports the app and every module of chalicelib, and creates a client of every
    # service the package keeps
    done = subprocess.run(
        [sys.executable, "-S", "-c", script, str(tmp_path), *AWS_SERVICES],
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    # Then both work: nothing the functions import is missing from the package
    assert done.returncode == 0, done.stderr[-3000:]
    assert "authorize_payment" in done.stdout


def test_the_package_keeps_the_model_of_every_service_the_code_creates_a_client_of(
    shipped: zipfile.ZipFile,
) -> None:
    # Given every `<session>.client("service")` call of the shipped code
    named = set()
    for path in [REPO_ROOT / "app.py", *(REPO_ROOT / "chalicelib").rglob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "client"
                and node.args
                and isinstance(node.args[0], ast.Constant)
            ):
                named.add(node.args[0].value)

    # Then the package keeps those services' botocore models, and only the kept ones
    kept = {
        n.split("/")[2]
        for n in shipped.namelist()
        if n.count("/") > 3 and n.startswith("botocore/data/")
    }
    assert named and named <= set(AWS_SERVICES)
    assert kept == set(AWS_SERVICES)


def test_requirements_txt_lists_the_projects_dependencies_but_chalice_under_the_lock() -> None:
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    lines = [
        line.strip()
        for line in (REPO_ROOT / "requirements.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    locked = locked_versions()

    assert lines[0] == "-c requirements.lock"
    assert lines[1:] == [d for d in project["dependencies"] if not d.startswith("chalice")]
    # Every dependency of the project, dev tools included, is pinned in the one lock
    everything = project["dependencies"] + project["optional-dependencies"]["dev"]
    for requirement in everything:
        name = re.split(r"[\[<>=!~ ]", requirement, maxsplit=1)[0]
        assert normalized(name) in locked, name


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


def test_the_simulator_ticks_every_minute_and_only_it_is_told_the_apis_address(
    template: dict[str, Any],
) -> None:
    # Given the packaged functions
    functions = of_type(template, *LAMBDA_FUNCTIONS)

    # Then simulator_tick runs on a one-minute schedule
    tick = functions["SimulatorTick"]["Properties"]
    (event,) = tick["Events"].values()
    assert (event["Type"], event["Properties"]["Schedule"]) == ("Schedule", "rate(1 minute)")
    # And it is given the API's address as Chalice's own output spells it (stage included)
    url = tick["Environment"]["Variables"]["PAYFLOW_API_URL"]["Fn::Sub"]
    assert template["Outputs"]["EndpointURL"]["Value"]["Fn::Sub"] == url + "/"
    # And no other function is: the API's handler referencing the API would be a cycle
    told = [
        logical_id
        for logical_id, function in functions.items()
        if "PAYFLOW_API_URL" in function["Properties"]["Environment"]["Variables"]
    ]
    assert told == ["SimulatorTick"]


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
    assert functions and len(machines) == 3
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
