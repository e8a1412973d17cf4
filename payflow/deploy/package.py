"""Build the deployable package: Chalice's SAM template merged with infra/.

`chalice package` describes the functions, the REST API and their roles; infra/resources.json
describes everything else (tables, queues, state machines, partial function overrides such as
event source settings). The merge is Chalice's own deep merge (what `--merge-template` does),
applied to a merge template derived from infra/ and written to build/ for inspection:

- infra/resources.json as it is; state machine definition files (statemachines/) are copied
  next to the template, like deployment.zip, for the deploy step to upload; nameless state
  machines get the name the sandbox gives them;
- every function's ``Environment`` from infra/environment.json;
- the functions' role narrowed to the template's own tables, streams, queues and state
  machines (ARNs, never ``*``), replacing Chalice's generated policy; plus X-Ray's write
  actions when the functions trace (``"xray": true`` in .chalice/config.json);
- a role for every state machine that has none, allowed to call exactly the resources its
  ``DefinitionSubstitutions`` reference, and to write X-Ray traces when its tracing is on;
- a CloudWatch alarm on every dead-letter queue.

The code archive is Chalice's, rewritten to be reproducible and small (see
`write_code_archive` and docs/packaging.md): the same sources and lock give the same bytes.

Output (build/): ``sam.json`` (the merged SAM template), ``deployment.zip`` (the code),
``statemachines/`` (the definitions), ``merge-template.json`` (what was merged) and
``chalice/`` (Chalice's untouched output).
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from payflow.cfn import getatt_args, references

REPO_ROOT = Path(__file__).resolve().parents[2]

TABLE = "AWS::DynamoDB::Table"
QUEUE = "AWS::SQS::Queue"
ALARM = "AWS::CloudWatch::Alarm"
SERVERLESS_FUNCTION = "AWS::Serverless::Function"
LAMBDA_FUNCTIONS = ("AWS::Lambda::Function", SERVERLESS_FUNCTION)
SFN_STATE_MACHINE = "AWS::StepFunctions::StateMachine"
SAM_STATE_MACHINE = "AWS::Serverless::StateMachine"
STATE_MACHINES = (SFN_STATE_MACHINE, SAM_STATE_MACHINE)
EVENT_SOURCE_MAPPING = "AWS::Lambda::EventSourceMapping"

# What the functions may do to each kind of resource of the template.
TABLE_ACTIONS = [
    "dynamodb:BatchGetItem",
    "dynamodb:BatchWriteItem",
    "dynamodb:ConditionCheckItem",
    "dynamodb:DeleteItem",
    "dynamodb:DescribeTable",
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:Query",
    "dynamodb:Scan",
    "dynamodb:UpdateItem",
]
STREAM_ACTIONS = [
    "dynamodb:DescribeStream",
    "dynamodb:GetRecords",
    "dynamodb:GetShardIterator",
    "dynamodb:ListStreams",
]
QUEUE_ACTIONS = [
    "sqs:ChangeMessageVisibility",
    "sqs:DeleteMessage",
    "sqs:GetQueueAttributes",
    "sqs:GetQueueUrl",
    "sqs:ReceiveMessage",
    "sqs:SendMessage",
]
STATE_MACHINE_ACTIONS = ["states:StartExecution"]
EXECUTION_ACTIONS = ["states:DescribeExecution", "states:StopExecution"]
TASK_TOKEN_ACTIONS = [
    "states:SendTaskFailure",
    "states:SendTaskHeartbeat",
    "states:SendTaskSuccess",
]
# What active tracing needs (Chalice's own X-Ray policy). These actions have no resource-level
# permissions: "*" is the only resource they accept, and the one exception to "never `*`".
XRAY_ACTIONS = ["xray:PutTelemetryRecords", "xray:PutTraceSegments"]


# The AWS services whose botocore models the package keeps: the clients chalicelib/container.py
# builds, and X-Ray, whose SDK (under Powertools' Tracer) fetches sampling rules with a botocore
# client. botocore ships the model of every AWS service: the others' were 15.7 MB of the
# 24.7 MB archive Chalice writes. A client of a service left out fails at creation with
# UnknownServiceError; the package test checks every service the code names is kept.
AWS_SERVICES = ("dynamodb", "sqs", "stepfunctions", "xray")

# Every entry of deployment.zip gets this timestamp (zip's earliest) and these permissions, so
# the archive depends on the files' contents only, not on when or by whom they were unpacked.
ZIP_TIMESTAMP = (1980, 1, 1, 0, 0, 0)
ZIP_FILE_MODE = 0o100644


class PackageError(ValueError):
    """infra/ and the Chalice app do not fit together (e.g. an override of no function)."""


@dataclass(frozen=True)
class Package:
    """A built package: the merged template and the code archive next to it."""

    directory: Path

    @property
    def template_path(self) -> Path:
        return self.directory / "sam.json"

    @property
    def code_path(self) -> Path:
        return self.directory / "deployment.zip"

    def template(self) -> dict[str, Any]:
        return load_json(self.template_path)


def load_json(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as handle:
        data: dict[str, Any] = json.load(handle)
    return data


def write_json(path: Path, data: Mapping[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n", encoding="utf-8")


# --- the whole step ----------------------------------------------------------------------------


def package(
    out_dir: Path,
    *,
    stage: str = "dev",
    project_dir: Path = REPO_ROOT,
    app_only: bool = False,
    wheelhouse: Path | None = None,
) -> Package:
    """Run `chalice package` for `stage` and merge infra/ into its template, in `out_dir`.

    `app_only` leaves the third-party requirements out of deployment.zip (the template is the
    same): for tests, which need the template and a small archive, not the dependencies.
    `wheelhouse` makes pip take the requirements from that folder instead of the index (the
    dev install fills ``<venv>/wheelhouse``), for a build without network.
    """
    out_dir = out_dir.resolve()
    chalice_dir = out_dir / "chalice"
    run_chalice_package(
        project_dir, chalice_dir, stage=stage, app_only=app_only, wheelhouse=wheelhouse
    )
    chalice_template = load_json(chalice_dir / "sam.json")
    resources = load_json(project_dir / "infra" / "resources.json")
    environment = load_json(project_dir / "infra" / "environment.json")

    merge_template = build_merge_template(
        chalice_template, resources, environment, base_dir=project_dir
    )
    merged = merge(merge_template, chalice_template)
    check_merged(merged, merge_template)

    write_json(out_dir / "merge-template.json", merge_template)
    write_json(out_dir / "sam.json", merged)
    for _key, location in definition_files(merged).values():
        (out_dir / location).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(project_dir / location, out_dir / location)
    write_code_archive(chalice_dir / "deployment.zip", out_dir / "deployment.zip")
    return Package(out_dir)


def run_chalice_package(
    project_dir: Path,
    out_dir: Path,
    *,
    stage: str = "dev",
    app_only: bool = False,
    wheelhouse: Path | None = None,
) -> None:
    """`chalice package --pkg-format cloudformation` into `out_dir` (replaced).

    Chalice runs on a copy of the project: it caches archives in .chalice/deployments/ under
    a hash of requirements.txt and the code, which misses a change of requirements.lock, and
    would otherwise write into the repository.
    """
    if out_dir.exists():
        shutil.rmtree(out_dir)
    env = {**os.environ, "AWS_DEFAULT_REGION": os.environ.get("AWS_DEFAULT_REGION", "us-east-1")}
    if wheelhouse is not None:
        # Chalice's pip runs inherit the environment; pip reads its options from PIP_*.
        env.update({"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(wheelhouse.resolve())})
    with tempfile.TemporaryDirectory(prefix="payflow-package-") as scratch:
        source = Path(scratch) / "project"
        _copy_app(project_dir, source)
        if app_only:
            (source / "requirements.txt").write_text("", encoding="utf-8")
        command = [
            sys.executable,
            "-c",
            "import sys; from chalice.cli import main; sys.exit(main())",
            "--project-dir",
            str(source),
            "package",
            "--pkg-format",
            "cloudformation",
            "--stage",
            stage,
            str(out_dir),
        ]
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise PackageError(f"chalice package failed:\n{done.stdout}{done.stderr}")


def _copy_app(project_dir: Path, target: Path) -> None:
    """The files `chalice package` reads: app.py, chalicelib/, vendor/, .chalice/ config, and
    the requirements with the lock they are constrained by."""
    target.mkdir(parents=True)
    for name in ("app.py", "requirements.txt", "requirements.lock"):
        shutil.copy2(project_dir / name, target / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "deployments", "venv")
    for folder in ("chalicelib", "vendor", ".chalice"):
        if (project_dir / folder).is_dir():
            shutil.copytree(project_dir / folder, target / folder, ignore=ignore)


def write_code_archive(source: Path, target: Path) -> None:
    """Rewrite Chalice's deployment.zip as `target`: reproducible and without what no function
    reads.

    Chalice writes entries in directory-walk order with the unpacked files' times and modes,
    so two builds of the same input differ. Here entries are sorted by name, and each gets
    `ZIP_TIMESTAMP`, `ZIP_FILE_MODE` and the same compression, so the bytes depend on the
    contents alone. botocore's models of services outside `AWS_SERVICES` are left out.
    """
    with zipfile.ZipFile(source) as original:
        names = sorted(name for name in original.namelist() if is_shipped(name))
        with zipfile.ZipFile(target, "w") as archive:
            for name in names:
                entry = zipfile.ZipInfo(name, date_time=ZIP_TIMESTAMP)
                entry.external_attr = ZIP_FILE_MODE << 16
                entry.create_system = 3  # Unix, so the mode above is read as one
                entry.compress_type = zipfile.ZIP_DEFLATED
                archive.writestr(entry, original.read(name), compresslevel=9)


def is_shipped(name: str) -> bool:
    """Whether the archive entry `name` stays in deployment.zip (see `write_code_archive`)."""
    if name.endswith("/"):
        return False
    parts = name.split("/")
    if len(parts) > 3 and parts[:2] == ["botocore", "data"]:
        return parts[2] in AWS_SERVICES
    return "__pycache__" not in parts


def merge(merge_template: Mapping[str, Any], chalice_template: Mapping[str, Any]) -> dict[str, Any]:
    """Chalice's `--merge-template` deep merge (dicts merge key by key, anything else from the
    merge template replaces Chalice's value), except that an intrinsic function replaces
    whatever it overrides: Chalice's merge would mix an override's ``{"Fn::GetAtt": ...}`` into
    Chalice's literal ``{"Fn::Sub": ...}`` queue ARN, giving one invalid two-key value."""
    merged: dict[str, Any] = _merge(copy.deepcopy(dict(merge_template)), chalice_template)
    return merged


def _merge(override: Any, base: Any) -> Any:
    if isinstance(override, dict) and isinstance(base, dict) and not _is_intrinsic(override):
        merged = copy.deepcopy(base)
        for key, value in override.items():
            merged[key] = _merge(value, base.get(key))
        return merged
    return copy.deepcopy(override)


def _is_intrinsic(value: Mapping[str, Any]) -> bool:
    return len(value) == 1 and next(iter(value)) in _INTRINSICS


_INTRINSICS = {
    "Ref",
    "Condition",
    "Fn::Base64",
    "Fn::Cidr",
    "Fn::FindInMap",
    "Fn::GetAtt",
    "Fn::GetAZs",
    "Fn::If",
    "Fn::ImportValue",
    "Fn::Join",
    "Fn::Select",
    "Fn::Split",
    "Fn::Sub",
    "Fn::Transform",
}


# --- the merge template ------------------------------------------------------------------------


def build_merge_template(
    chalice_template: Mapping[str, Any],
    resources_template: Mapping[str, Any],
    environment: Mapping[str, Any],
    *,
    base_dir: Path = REPO_ROOT,
) -> dict[str, Any]:
    """What to merge into Chalice's template (see the module docstring)."""
    template = copy.deepcopy(dict(resources_template))
    template["Description"] = (
        "PayFlow: the Stripe-compatible payments API (Chalice) with its tables, queues and "
        "state machines"
    )
    resources: dict[str, Any] = template.setdefault("Resources", {})
    chalice_resources: Mapping[str, Any] = chalice_template.get("Resources") or {}
    _check_overrides(resources, chalice_resources)

    for logical_id, resource in resources.items():
        if resource.get("Type") in STATE_MACHINES:
            _normalize_state_machine(logical_id, resource, base_dir)

    all_resources = {**chalice_resources, **resources}
    # Functions reach state machines by their name-built ARN, not by Ref: a state machine
    # references the functions it invokes, so a Ref back would be a circular dependency.
    machines = {lid: r for lid, r in resources.items() if r.get("Type") in STATE_MACHINES}
    variables = {
        name: _without_machine_refs(value, machines)
        for name, value in environment.items()
        if not name.startswith("_")
    }
    function_ids = [
        lid for lid, r in chalice_resources.items() if r.get("Type") in LAMBDA_FUNCTIONS
    ]
    for function_id in function_ids:
        override = resources.setdefault(function_id, {"Type": SERVERLESS_FUNCTION})
        properties = override.setdefault("Properties", {})
        chalice_variables = (
            (chalice_resources[function_id].get("Properties") or {})
            .get("Environment", {})
            .get("Variables", {})
        )
        properties["Environment"] = {
            "Variables": {
                **chalice_variables,
                **(properties.get("Environment") or {}).get("Variables", {}),
                **variables,
            }
        }

    traced = any(
        is_traced(_merge(resources.get(function_id) or {}, chalice_resources[function_id]))
        for function_id in function_ids
    )
    policy = function_policy(all_resources, xray=traced)
    for role_id in _function_roles(chalice_resources, function_ids):
        resources.setdefault(role_id, {"Type": "AWS::IAM::Role"}).setdefault("Properties", {})[
            "Policies"
        ] = [{"PolicyName": f"{role_id}Policy", "PolicyDocument": policy}]

    for logical_id, resource in list(resources.items()):
        if resource.get("Type") in STATE_MACHINES:
            _add_state_machine_role(logical_id, resource, resources, all_resources)

    for queue_id in dead_letter_queues(all_resources):
        if not _has_alarm(queue_id, resources):
            resources[f"{queue_id}Alarm"] = dlq_alarm(queue_id)
    return template


def _check_overrides(resources: Mapping[str, Any], chalice_resources: Mapping[str, Any]) -> None:
    """A function in infra/ must complete one Chalice generates: a partial function on its own
    would deploy without code."""
    for logical_id, resource in resources.items():
        if resource.get("Type") not in LAMBDA_FUNCTIONS:
            continue
        properties = resource.get("Properties") or {}
        if logical_id not in chalice_resources and not {"Handler", "Runtime"} <= set(properties):
            known = sorted(k for k, r in chalice_resources.items() if r["Type"] in LAMBDA_FUNCTIONS)
            raise PackageError(
                f"infra/resources.json overrides function {logical_id}, which the Chalice app "
                f"does not define (its functions: {', '.join(known)})"
            )


def definition_files(template: Mapping[str, Any]) -> dict[str, tuple[str, str]]:
    """State machines whose definition is a local file: logical id -> (property, path).

    The files stay files (an ASL template with numeric ``${...}`` placeholders is not JSON until
    substituted): the deploy step uploads them, as `aws cloudformation package` would.
    """
    found: dict[str, tuple[str, str]] = {}
    for logical_id, resource in (template.get("Resources") or {}).items():
        kind = resource.get("Type")
        if kind not in STATE_MACHINES:
            continue
        key = "DefinitionUri" if kind == SAM_STATE_MACHINE else "DefinitionS3Location"
        location = (resource.get("Properties") or {}).get(key)
        if isinstance(location, str) and not location.startswith("s3://"):
            found[logical_id] = (key, location)
    return found


def _normalize_state_machine(logical_id: str, resource: dict[str, Any], base_dir: Path) -> None:
    properties = resource.setdefault("Properties", {})
    if resource["Type"] == SFN_STATE_MACHINE and "DefinitionUri" in properties:
        # The sandbox accepts SAM's spelling on both types; CloudFormation's is this one.
        properties["DefinitionS3Location"] = properties.pop("DefinitionUri")
    for key, location in definition_files({"Resources": {logical_id: resource}}).values():
        if not (base_dir / location).is_file():
            raise PackageError(f"{logical_id}: {key} {location} is not a file")
    _name_state_machine(logical_id, resource)


def _function_roles(chalice_resources: Mapping[str, Any], function_ids: Iterable[str]) -> list[str]:
    roles: list[str] = []
    for function_id in function_ids:
        role = (chalice_resources[function_id].get("Properties") or {}).get("Role")
        if isinstance(role, dict) and "Fn::GetAtt" in role:
            role_id = getatt_args(role["Fn::GetAtt"])[0]
            if role_id not in roles:
                roles.append(role_id)
        else:
            raise PackageError(
                f"function {function_id} has role {role!r}: let Chalice manage the role "
                "(manage_iam_role) so the package can narrow its policy"
            )
    return roles


# --- IAM ---------------------------------------------------------------------------------------


def function_policy(resources: Mapping[str, Any], *, xray: bool = False) -> dict[str, Any]:
    """The functions' policy: logs of the stack's functions, and the template's own tables,
    streams, queues and state machines; X-Ray's write actions when `xray` (active tracing)."""
    statements: list[dict[str, Any]] = [
        {
            "Sid": "Logs",
            "Effect": "Allow",
            "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": {
                "Fn::Sub": "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}"
                ":log-group:/aws/lambda/${AWS::StackName}-*"
            },
        }
    ]
    tables = _of_type(resources, TABLE)
    if tables:
        arns = [_arn(t) for t in tables]
        statements.append(
            _allow(
                "Tables",
                TABLE_ACTIONS,
                arns + [_sub_attr(t, "Arn", "/index/*") for t in tables],
            )
        )
    streamed = [
        t for t in tables if (resources[t].get("Properties") or {}).get("StreamSpecification")
    ]
    if streamed:
        statements.append(
            _allow("Streams", STREAM_ACTIONS, [_sub_attr(t, "Arn", "/stream/*") for t in streamed])
        )
    queues = _of_type(resources, QUEUE)
    if queues:
        statements.append(_allow("Queues", QUEUE_ACTIONS, [_arn(q) for q in queues]))
    machines = _of_type(resources, *STATE_MACHINES)
    if machines:
        statements.append(
            _allow(
                "StateMachines",
                STATE_MACHINE_ACTIONS + TASK_TOKEN_ACTIONS,
                [state_machine_arn(resources[m], "stateMachine") for m in machines],
            )
        )
        statements.append(
            _allow(
                "Executions",
                EXECUTION_ACTIONS,
                [state_machine_arn(resources[m], "execution", ":*") for m in machines],
            )
        )
    if xray:
        statements.append(_allow("XRay", XRAY_ACTIONS, ["*"]))
    return {"Version": "2012-10-17", "Statement": statements}


def is_traced(resource: Mapping[str, Any]) -> bool:
    """Whether a function or state machine has X-Ray active tracing on, in any of the spellings
    of SAM and CloudFormation."""
    properties = resource.get("Properties") or {}
    kind = resource.get("Type")
    if kind == SERVERLESS_FUNCTION:
        return bool(properties.get("Tracing") == "Active")
    if kind == "AWS::Lambda::Function":
        return bool((properties.get("TracingConfig") or {}).get("Mode") == "Active")
    if kind == SAM_STATE_MACHINE:
        return bool((properties.get("Tracing") or {}).get("Enabled") is True)
    if kind == SFN_STATE_MACHINE:
        return bool((properties.get("TracingConfiguration") or {}).get("Enabled") is True)
    return False


def _add_state_machine_role(
    logical_id: str,
    resource: dict[str, Any],
    resources: dict[str, Any],
    all_resources: Mapping[str, Any],
) -> None:
    """A state machine without a role gets one allowed to call what its substitutions name (and
    to write traces when its tracing is on: SAM adds that only to the roles it generates)."""
    properties = resource.setdefault("Properties", {})
    if resource["Type"] == SFN_STATE_MACHINE and "RoleArn" in properties:
        return
    if resource["Type"] == SAM_STATE_MACHINE and ({"Role", "Policies"} & set(properties)):
        return
    role_id = f"{logical_id}Role"
    statements = state_machine_statements(
        properties.get("DefinitionSubstitutions") or {}, all_resources
    )
    if is_traced(resource):
        statements.append(_allow("XRay", XRAY_ACTIONS, ["*"]))
    role: dict[str, Any] = {
        "Type": "AWS::IAM::Role",
        "Properties": {
            "AssumeRolePolicyDocument": {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "states.amazonaws.com"},
                        "Action": "sts:AssumeRole",
                    }
                ],
            },
        },
    }
    if statements:
        role["Properties"]["Policies"] = [
            {
                "PolicyName": f"{role_id}Policy",
                "PolicyDocument": {"Version": "2012-10-17", "Statement": statements},
            }
        ]
    resources[role_id] = role
    key = "RoleArn" if resource["Type"] == SFN_STATE_MACHINE else "Role"
    properties[key] = {"Fn::GetAtt": [role_id, "Arn"]}


def state_machine_statements(
    substitutions: Mapping[str, Any], resources: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """Least privilege for a state machine: exactly the resources its substitutions reference."""
    referenced = sorted(references(dict(substitutions)))
    by_type: dict[str, list[str]] = {}
    for name in referenced:
        kind = (resources.get(name) or {}).get("Type")
        if kind:
            by_type.setdefault(kind, []).append(name)
    statements: list[dict[str, Any]] = []
    functions = [n for k in LAMBDA_FUNCTIONS for n in by_type.get(k, [])]
    if functions:
        arns: list[Any] = []
        for name in functions:
            arns += [_arn(name), _sub_attr(name, "Arn", ":*")]
        statements.append(_allow("InvokeFunctions", ["lambda:InvokeFunction"], arns))
    tables = by_type.get(TABLE, [])
    if tables:
        statements.append(
            _allow(
                "Tables",
                [
                    "dynamodb:GetItem",
                    "dynamodb:PutItem",
                    "dynamodb:UpdateItem",
                    "dynamodb:DeleteItem",
                ],
                [_arn(t) for t in tables],
            )
        )
    queues = by_type.get(QUEUE, [])
    if queues:
        statements.append(_allow("Queues", ["sqs:SendMessage"], [_arn(q) for q in queues]))
    machines = [n for k in STATE_MACHINES for n in by_type.get(k, [])]
    if machines:
        statements.append(
            _allow(
                "StartExecutions",
                STATE_MACHINE_ACTIONS,
                [state_machine_arn(resources[m], "stateMachine") for m in machines],
            )
        )
        statements.append(
            _allow(
                "Executions",
                EXECUTION_ACTIONS,
                [state_machine_arn(resources[m], "execution", ":*") for m in machines],
            )
        )
    return statements


def _allow(sid: str, actions: list[str], resources: list[Any]) -> dict[str, Any]:
    return {"Sid": sid, "Effect": "Allow", "Action": actions, "Resource": resources}


def _arn(logical_id: str) -> dict[str, Any]:
    return {"Fn::GetAtt": [logical_id, "Arn"]}


def _sub_attr(logical_id: str, attribute: str, suffix: str) -> dict[str, Any]:
    return {"Fn::Sub": "${" + f"{logical_id}.{attribute}" + "}" + suffix}


# --- state machines ----------------------------------------------------------------------------


def _name_state_machine(logical_id: str, resource: dict[str, Any]) -> None:
    """Give a nameless state machine the name the embedded sandbox gives it, so its ARN is known
    without a reference to it."""
    properties = resource.setdefault("Properties", {})
    key = _name_key(resource)
    if not properties.get(key):
        properties[key] = {"Fn::Sub": "${AWS::StackName}-" + logical_id}


def _name_key(resource: Mapping[str, Any]) -> str:
    return "StateMachineName" if resource.get("Type") == SFN_STATE_MACHINE else "Name"


def state_machine_arn(resource: Mapping[str, Any], kind: str, suffix: str = "") -> dict[str, Any]:
    """The ARN of a state machine (`kind` "stateMachine") or of its executions ("execution"),
    built from its name: no dependency on the state machine itself."""
    name = (resource.get("Properties") or {})[_name_key(resource)]
    return {
        "Fn::Join": [
            "",
            [
                "arn:",
                {"Ref": "AWS::Partition"},
                ":states:",
                {"Ref": "AWS::Region"},
                ":",
                {"Ref": "AWS::AccountId"},
                f":{kind}:",
                name,
                suffix,
            ],
        ]
    }


def _without_machine_refs(value: Any, machines: Mapping[str, Any]) -> Any:
    """`value` with Ref / GetAtt of state machines replaced by their name-built ARN or name."""
    if isinstance(value, list):
        return [_without_machine_refs(item, machines) for item in value]
    if not isinstance(value, dict):
        return value
    if len(value) == 1:
        (key, argument), *_ = value.items()
        if key == "Ref" and argument in machines:
            return state_machine_arn(machines[argument], "stateMachine")
        if key == "Fn::GetAtt" and getatt_args(argument)[0] in machines:
            machine, attribute = getatt_args(argument)
            if attribute == "Name":
                return machines[machine]["Properties"][_name_key(machines[machine])]
            return state_machine_arn(machines[machine], "stateMachine")
    return {key: _without_machine_refs(item, machines) for key, item in value.items()}


# --- alarms ------------------------------------------------------------------------------------


def dead_letter_queues(resources: Mapping[str, Any]) -> list[str]:
    """Queues that receive failed messages: redrive targets and event source failure
    destinations."""
    found: list[str] = []

    def add(target: Any) -> None:
        for name in references(target):
            if (resources.get(name) or {}).get("Type") == QUEUE and name not in found:
                found.append(name)

    for resource in resources.values():
        properties = resource.get("Properties") or {}
        kind = resource.get("Type")
        if kind == QUEUE:
            add((properties.get("RedrivePolicy") or {}).get("deadLetterTargetArn"))
        elif kind == EVENT_SOURCE_MAPPING:
            add((properties.get("DestinationConfig") or {}).get("OnFailure"))
        elif kind == SERVERLESS_FUNCTION:
            for event in (properties.get("Events") or {}).values():
                add(
                    ((event.get("Properties") or {}).get("DestinationConfig") or {}).get(
                        "OnFailure"
                    )
                )
    return found


def dlq_alarm(queue_id: str) -> dict[str, Any]:
    """Alarm as soon as one message waits in the dead-letter queue."""
    return {
        "Type": ALARM,
        "Properties": {
            "AlarmDescription": {
                "Fn::Sub": "Messages in ${"
                + queue_id
                + ".QueueName}: deliveries that exhausted their retries (inspect, fix, redrive)"
            },
            "Namespace": "AWS/SQS",
            "MetricName": "ApproximateNumberOfMessagesVisible",
            "Dimensions": [{"Name": "QueueName", "Value": {"Fn::GetAtt": [queue_id, "QueueName"]}}],
            "Statistic": "Maximum",
            "Period": 60,
            "EvaluationPeriods": 1,
            "Threshold": 0,
            "ComparisonOperator": "GreaterThanThreshold",
            "TreatMissingData": "notBreaching",
        },
    }


def _has_alarm(queue_id: str, resources: Mapping[str, Any]) -> bool:
    return any(
        r.get("Type") == ALARM and queue_id in references(r.get("Properties"))
        for r in resources.values()
    )


# --- checks ------------------------------------------------------------------------------------


def check_merged(merged: Mapping[str, Any], merge_template: Mapping[str, Any]) -> None:
    """Every function is complete after the merge, and every reference has a target."""
    resources: Mapping[str, Any] = merged.get("Resources") or {}
    for logical_id, resource in resources.items():
        if resource.get("Type") == SERVERLESS_FUNCTION:
            missing = {"Handler", "Runtime", "CodeUri", "Role"} - set(
                resource.get("Properties", {})
            )
            if missing:
                raise PackageError(f"function {logical_id} lacks {sorted(missing)} after the merge")
    known = set(resources) | set(merged.get("Parameters") or {})
    depends: dict[str, set[str]] = {}
    for logical_id, resource in resources.items():
        names = references(resource.get("Properties")) | set(_as_list(resource.get("DependsOn")))
        for name in names:
            if not name.startswith("AWS::") and name not in known:
                raise PackageError(f"{logical_id} references {name}, which the template lacks")
        depends[logical_id] = {n for n in names if n in resources and n != logical_id}
    cycle = find_cycle(depends)
    if cycle:
        raise PackageError("circular dependency: " + " -> ".join(cycle))


def find_cycle(depends: Mapping[str, set[str]]) -> list[str]:
    """One dependency cycle (first node repeated at the end), or [] when there is none."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = 1
        path.append(node)
        for target in sorted(depends.get(node, ())):
            if state.get(target) == 1:
                return [*path[path.index(target) :], target]
            if target not in state:
                found = visit(target)
                if found:
                    return found
        state[node] = 2
        path.pop()
        return []

    for node in sorted(depends):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return []


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


# --- template helpers --------------------------------------------------------------------------


def _of_type(resources: Mapping[str, Any], *kinds: str) -> list[str]:
    return [lid for lid, r in resources.items() if r.get("Type") in kinds]
