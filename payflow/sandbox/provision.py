"""Provision moto from the CloudFormation template (infra/resources.json).

That template is the only list of PayFlow's resources: it is merged into `chalice package` for
LocalStack and AWS, and read here for the embedded sandbox. Resources are created through the
service APIs rather than moto's CloudFormation, because moto's CloudFormation ignores
TimeToLiveSpecification and puts state machines in a backend that never executes them.

Provisioning is idempotent: run it twice against the same moto and the second run reuses (and
updates) what the first created.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from payflow.cfn import getatt_args, references
from payflow.sandbox.lambda_invoke import ACCOUNT_ID, function_arn, parse_function_name

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]

TABLE = "AWS::DynamoDB::Table"
QUEUE = "AWS::SQS::Queue"
STATE_MACHINES = ("AWS::StepFunctions::StateMachine", "AWS::Serverless::StateMachine")
EVENT_SOURCE_MAPPING = "AWS::Lambda::EventSourceMapping"
SERVERLESS_FUNCTION = "AWS::Serverless::Function"
LAMBDA_FUNCTIONS = ("AWS::Lambda::Function", SERVERLESS_FUNCTION)

# Queue properties that are not queue attributes.
_QUEUE_NON_ATTRIBUTES = {"QueueName", "Tags"}
# Attributes SetQueueAttributes refuses once the queue exists.
_QUEUE_IMMUTABLE_ATTRIBUTES = {"FifoQueue"}
_SUB_VARIABLE = re.compile(r"\$\{([^}]+)\}")


class TemplateError(ValueError):
    """The template uses something the sandbox cannot provision or resolve."""


@dataclass(frozen=True)
class AwsClients:
    """The boto3 clients provisioning needs, all pointed at the same endpoint."""

    dynamodb: Any
    sqs: Any
    stepfunctions: Any

    @property
    def region(self) -> str:
        return str(self.dynamodb.meta.region_name)

    @classmethod
    def for_endpoint(cls, endpoint_url: str, region: str = "us-east-1") -> AwsClients:
        """Clients for an embedded endpoint, with dummy credentials."""
        import boto3

        def make(service: str) -> Any:
            return boto3.client(
                service,  # type: ignore[call-overload]
                endpoint_url=endpoint_url,
                region_name=region,
                aws_access_key_id="testing",
                aws_secret_access_key="testing",
            )

        return cls(dynamodb=make("dynamodb"), sqs=make("sqs"), stepfunctions=make("stepfunctions"))


@dataclass(frozen=True)
class EventSourceMapping:
    """One event source -> function wiring, as an AWS event source mapping describes it."""

    function: str
    """Logical id (or name) of the Lambda function that consumes the events."""
    kind: str
    """``"sqs"`` or ``"dynamodb"``."""
    source_arn: str
    batch_size: int
    starting_position: str | None = None
    """``TRIM_HORIZON`` or ``LATEST`` for streams; None for queues."""
    report_batch_item_failures: bool = False
    filter_patterns: tuple[str, ...] = ()
    """FilterCriteria's patterns (JSON text): a record matching none is not handed over."""


@dataclass
class Provisioned:
    """What `provision` created, and the context needed to resolve more intrinsics later."""

    stack_name: str
    region: str
    account_id: str = ACCOUNT_ID
    parameters: dict[str, Any] = field(default_factory=dict)
    physical_ids: dict[str, str] = field(default_factory=dict)
    """Logical id -> physical id (table name, queue URL, state machine ARN)."""
    attributes: dict[tuple[str, str], str] = field(default_factory=dict)
    """(logical id, attribute) -> value, e.g. ("PaymentsTable", "StreamArn")."""
    skipped: list[str] = field(default_factory=list)
    """Logical ids of resources the sandbox does not need (IAM, alarms, functions...)."""
    resource_types: dict[str, str] = field(default_factory=dict)
    event_source_mappings: list[EventSourceMapping] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)

    def resolve(self, value: Any) -> Any:
        """Resolve CloudFormation intrinsics in `value` against what was provisioned."""
        return _Intrinsics(self).resolve(value)


def provision(
    template: Mapping[str, Any],
    stack_name: str,
    clients: AwsClients,
    *,
    parameters: Mapping[str, Any] | None = None,
    base_dir: Path = REPO_ROOT,
) -> Provisioned:
    """Create (or reuse) every resource of `template` in the endpoint behind `clients`.

    `base_dir` anchors relative ``DefinitionUri`` paths (the repository root by default).
    Unsupported resource types are listed in ``skipped``; event source mappings (from
    AWS::Lambda::EventSourceMapping and from the Events of AWS::Serverless::Function resources)
    are collected, not created: the sandbox's pollers play their part.
    """
    resources: dict[str, Any] = dict(template.get("Resources") or {})
    result = Provisioned(
        stack_name=stack_name,
        region=clients.region,
        parameters=_parameters(template, parameters or {}),
        resource_types={lid: str(res.get("Type", "")) for lid, res in resources.items()},
    )
    intrinsics = _Intrinsics(result)
    for logical_id in _dependency_order(resources):
        resource = resources[logical_id]
        kind = resource.get("Type")
        properties = resource.get("Properties") or {}
        if kind == TABLE:
            _provision_table(logical_id, properties, intrinsics, clients.dynamodb, result)
        elif kind == QUEUE:
            _provision_queue(logical_id, properties, intrinsics, clients.sqs, result)
        elif kind in STATE_MACHINES:
            _provision_state_machine(
                logical_id, properties, intrinsics, clients.stepfunctions, result, base_dir
            )
        else:
            result.skipped.append(logical_id)
    result.event_source_mappings = _collect_mappings(resources, intrinsics)
    result.outputs = {
        name: intrinsics.resolve(output.get("Value"))
        for name, output in (template.get("Outputs") or {}).items()
    }
    return result


def resolve_environment(
    env_template: Mapping[str, Any], provisioned: Provisioned
) -> dict[str, str]:
    """Resolve infra/environment.json (variable -> intrinsic) into plain strings.

    Keys starting with ``_`` are comments and are left out.
    """
    environment: dict[str, str] = {}
    for name, value in env_template.items():
        if name.startswith("_"):
            continue
        resolved = provisioned.resolve(value)
        environment[name] = resolved if isinstance(resolved, str) else json.dumps(resolved)
    return environment


def load_template(path: Path) -> dict[str, Any]:
    """Read a JSON CloudFormation template."""
    with path.open(encoding="utf-8") as handle:
        data: dict[str, Any] = json.load(handle)
    return data


# --- resources -------------------------------------------------------------------------------


def _provision_table(
    logical_id: str,
    properties: Mapping[str, Any],
    intrinsics: _Intrinsics,
    dynamodb: Any,
    result: Provisioned,
) -> None:
    props = intrinsics.resolve(dict(properties))
    name = props.get("TableName") or f"{result.stack_name}-{logical_id}"
    stream = props.get("StreamSpecification")
    try:
        description = dynamodb.describe_table(TableName=name)["Table"]
    except dynamodb.exceptions.ResourceNotFoundException:
        description = dynamodb.create_table(**_create_table_request(name, props))[
            "TableDescription"
        ]
    else:
        description = _add_missing_indexes(dynamodb, name, props, description)
    if stream and not description.get("LatestStreamArn"):
        description = dynamodb.update_table(
            TableName=name,
            StreamSpecification={"StreamEnabled": True, "StreamViewType": stream["StreamViewType"]},
        )["TableDescription"]
    ttl = props.get("TimeToLiveSpecification")
    if ttl and ttl.get("Enabled"):
        # moto's CloudFormation ignores TimeToLiveSpecification; the API honours it.
        current = dynamodb.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
        if current.get("TimeToLiveStatus") not in ("ENABLED", "ENABLING"):
            dynamodb.update_time_to_live(
                TableName=name,
                TimeToLiveSpecification={"AttributeName": ttl["AttributeName"], "Enabled": True},
            )
    pitr = props.get("PointInTimeRecoverySpecification")
    if pitr and pitr.get("PointInTimeRecoveryEnabled"):
        dynamodb.update_continuous_backups(
            TableName=name,
            PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True},
        )
    result.physical_ids[logical_id] = name
    result.attributes[(logical_id, "Arn")] = description["TableArn"]
    if description.get("LatestStreamArn"):
        result.attributes[(logical_id, "StreamArn")] = description["LatestStreamArn"]


def _add_missing_indexes(
    dynamodb: Any, name: str, props: Mapping[str, Any], description: dict[str, Any]
) -> dict[str, Any]:
    """A table kept by a sandbox's data directory from before an index was added to the
    template gets that index, as a stack update would give it (one per UpdateTable, as
    DynamoDB takes them). Items stored before hold no keys for it: the log line says how to
    give them theirs."""
    present = {index["IndexName"] for index in description.get("GlobalSecondaryIndexes", [])}
    defined = {a["AttributeName"]: a for a in props["AttributeDefinitions"]}
    for index in props.get("GlobalSecondaryIndexes", []):
        if index["IndexName"] in present:
            continue
        create = {k: v for k, v in index.items() if k != "ProvisionedThroughput"}
        if description.get("BillingModeSummary", {}).get("BillingMode") != "PAY_PER_REQUEST":
            create["ProvisionedThroughput"] = index.get(
                "ProvisionedThroughput", {"ReadCapacityUnits": 5, "WriteCapacityUnits": 5}
            )
        description = dynamodb.update_table(
            TableName=name,
            AttributeDefinitions=[defined[key["AttributeName"]] for key in index["KeySchema"]],
            GlobalSecondaryIndexUpdates=[{"Create": create}],
        )["TableDescription"]
        logger.warning(
            "index %s added to %s, which was kept from an older PayFlow: run "
            "`payflow backfill-indexes` so the objects stored before appear in it",
            index["IndexName"],
            name,
        )
    return description


def _create_table_request(name: str, props: Mapping[str, Any]) -> dict[str, Any]:
    request: dict[str, Any] = {
        "TableName": name,
        "AttributeDefinitions": props["AttributeDefinitions"],
        "KeySchema": props["KeySchema"],
        "BillingMode": props.get("BillingMode", "PROVISIONED"),
    }
    if request["BillingMode"] == "PROVISIONED":
        request["ProvisionedThroughput"] = props.get(
            "ProvisionedThroughput", {"ReadCapacityUnits": 5, "WriteCapacityUnits": 5}
        )
    for key in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes", "Tags"):
        if props.get(key):
            request[key] = props[key]
    stream = props.get("StreamSpecification")
    if stream:
        request["StreamSpecification"] = {
            "StreamEnabled": True,
            "StreamViewType": stream["StreamViewType"],
        }
    sse = props.get("SSESpecification")
    if sse:
        # CloudFormation spells the flag SSEEnabled; the API calls it Enabled.
        request["SSESpecification"] = {
            "Enabled": bool(sse.get("SSEEnabled")),
            **{k: v for k, v in sse.items() if k in ("SSEType", "KMSMasterKeyId")},
        }
    return request


def _provision_queue(
    logical_id: str,
    properties: Mapping[str, Any],
    intrinsics: _Intrinsics,
    sqs: Any,
    result: Provisioned,
) -> None:
    props = intrinsics.resolve(dict(properties))
    fifo = _truthy(props.get("FifoQueue"))
    name = props.get("QueueName") or f"{result.stack_name}-{logical_id}" + (".fifo" if fifo else "")
    attributes = {
        key: _queue_attribute(value)
        for key, value in props.items()
        if key not in _QUEUE_NON_ATTRIBUTES
    }
    try:
        url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
    except sqs.exceptions.QueueDoesNotExist:
        request: dict[str, Any] = {"QueueName": name, "Attributes": attributes}
        if props.get("Tags"):
            request["tags"] = {tag["Key"]: str(tag["Value"]) for tag in props["Tags"]}
        url = sqs.create_queue(**request)["QueueUrl"]
    else:
        mutable = {k: v for k, v in attributes.items() if k not in _QUEUE_IMMUTABLE_ATTRIBUTES}
        if mutable:
            sqs.set_queue_attributes(QueueUrl=url, Attributes=mutable)
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    result.physical_ids[logical_id] = url
    result.attributes[(logical_id, "Arn")] = arn
    result.attributes[(logical_id, "QueueUrl")] = url
    result.attributes[(logical_id, "QueueName")] = name


def _queue_attribute(value: Any) -> str:
    # SQS attributes are strings; RedrivePolicy and RedriveAllowPolicy are JSON documents.
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value)
    return str(value)


def _provision_state_machine(
    logical_id: str,
    properties: Mapping[str, Any],
    intrinsics: _Intrinsics,
    sfn: Any,
    result: Provisioned,
    base_dir: Path,
) -> None:
    name = intrinsics.resolve(
        properties.get("StateMachineName")
        or properties.get("Name")
        or f"{result.stack_name}-{logical_id}"
    )
    definition = _state_machine_definition(logical_id, properties, intrinsics, base_dir)
    role_arn = intrinsics.resolve(properties.get("RoleArn") or properties.get("Role")) or (
        f"arn:aws:iam::{result.account_id}:role/{result.stack_name}-{logical_id}"
    )
    machine_type = properties.get("StateMachineType") or properties.get("Type") or "STANDARD"
    arn = f"arn:aws:states:{result.region}:{result.account_id}:stateMachine:{name}"
    try:
        existing = sfn.describe_state_machine(stateMachineArn=arn)
    except sfn.exceptions.StateMachineDoesNotExist:
        arn = sfn.create_state_machine(
            name=name, definition=definition, roleArn=role_arn, type=machine_type
        )["stateMachineArn"]
    else:
        if existing["definition"] != definition or existing["roleArn"] != role_arn:
            sfn.update_state_machine(stateMachineArn=arn, definition=definition, roleArn=role_arn)
    result.physical_ids[logical_id] = arn
    result.attributes[(logical_id, "Arn")] = arn
    result.attributes[(logical_id, "Name")] = name


def _state_machine_definition(
    logical_id: str, properties: Mapping[str, Any], intrinsics: _Intrinsics, base_dir: Path
) -> str:
    if "Definition" in properties:
        definition = json.dumps(intrinsics.resolve(properties["Definition"]))
    elif "DefinitionString" in properties:
        definition = str(intrinsics.resolve(properties["DefinitionString"]))
    elif isinstance(properties.get("DefinitionUri"), str):
        definition = (base_dir / properties["DefinitionUri"]).read_text(encoding="utf-8")
    else:
        raise TemplateError(
            f"{logical_id}: give Definition, DefinitionString or a local DefinitionUri path"
        )
    substitutions = intrinsics.resolve(properties.get("DefinitionSubstitutions") or {})
    for key, value in substitutions.items():
        definition = definition.replace("${" + key + "}", str(value))
    return definition


# --- event source mappings ---------------------------------------------------------------------


def _collect_mappings(
    resources: Mapping[str, Any], intrinsics: _Intrinsics
) -> list[EventSourceMapping]:
    mappings: list[EventSourceMapping] = []
    for logical_id, resource in resources.items():
        properties = resource.get("Properties") or {}
        if resource.get("Type") == EVENT_SOURCE_MAPPING:
            if properties.get("Enabled") is False:
                continue
            mapping = _mapping(
                _function_reference(properties.get("FunctionName"), intrinsics),
                intrinsics.resolve(properties.get("EventSourceArn")),
                properties,
            )
            if mapping:
                mappings.append(mapping)
        elif resource.get("Type") == SERVERLESS_FUNCTION:
            for event in (properties.get("Events") or {}).values():
                event_props = event.get("Properties") or {}
                source = {"SQS": "Queue", "DynamoDB": "Stream"}.get(event.get("Type", ""))
                if source is None or event_props.get("Enabled") is False:
                    continue
                mapping = _mapping(logical_id, intrinsics.resolve(event_props[source]), event_props)
                if mapping:
                    mappings.append(mapping)
    return mappings


def _mapping(
    function: str, source_arn: str, properties: Mapping[str, Any]
) -> EventSourceMapping | None:
    service = source_arn.split(":")[2] if source_arn.count(":") >= 5 else ""
    if service not in ("sqs", "dynamodb"):
        logger.warning("no sandbox poller for %s (function %s): ignored", source_arn, function)
        return None
    is_queue = service == "sqs"
    return EventSourceMapping(
        function=function,
        kind=service,
        source_arn=source_arn,
        batch_size=int(properties.get("BatchSize") or (10 if is_queue else 100)),
        starting_position=None if is_queue else properties.get("StartingPosition", "LATEST"),
        report_batch_item_failures="ReportBatchItemFailures"
        in (properties.get("FunctionResponseTypes") or []),
        filter_patterns=tuple(
            str(f["Pattern"]) for f in (properties.get("FilterCriteria") or {}).get("Filters", [])
        ),
    )


def _function_reference(value: Any, intrinsics: _Intrinsics) -> str:
    """The function a mapping names: its logical id when referenced, else its name."""
    if isinstance(value, dict) and "Ref" in value:
        return str(value["Ref"])
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        return str(getatt_args(value["Fn::GetAtt"])[0])
    return parse_function_name(str(intrinsics.resolve(value)))[0]


# --- intrinsics -------------------------------------------------------------------------------


class _Intrinsics:
    """Resolves Ref, Fn::GetAtt, Fn::Sub, Fn::Join and Fn::Select against a `Provisioned`."""

    def __init__(self, state: Provisioned) -> None:
        self.state = state

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.resolve(item) for item in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            (key, argument), *_ = value.items()
            if key == "Ref":
                return self.ref(str(argument))
            if key == "Fn::GetAtt":
                logical_id, attribute = getatt_args(argument)
                return self.getatt(logical_id, attribute)
            if key == "Fn::Sub":
                return self.sub(argument)
            if key == "Fn::Join":
                delimiter, items = argument
                return str(delimiter).join(str(item) for item in self.resolve(items))
            if key == "Fn::Select":
                index, items = argument
                return self.resolve(items)[int(self.resolve(index))]
            if key.startswith("Fn::"):
                raise TemplateError(f"intrinsic {key} is not supported by the sandbox")
        return {key: self.resolve(item) for key, item in value.items()}

    def ref(self, name: str) -> Any:
        state = self.state
        pseudo = {
            "AWS::StackName": state.stack_name,
            "AWS::Region": state.region,
            "AWS::AccountId": state.account_id,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::NoValue": None,
        }
        if name in pseudo:
            return pseudo[name]
        if name in state.parameters:
            return state.parameters[name]
        if name in state.physical_ids:
            return state.physical_ids[name]
        if name in state.resource_types:
            # A resource the sandbox skips (a function, a role...): its logical id stands in.
            return name
        raise TemplateError(f"Ref to unknown name {name!r}")

    def getatt(self, logical_id: str, attribute: str) -> str:
        state = self.state
        if (logical_id, attribute) in state.attributes:
            return state.attributes[(logical_id, attribute)]
        if attribute == "Arn" and logical_id not in state.physical_ids:
            return self._placeholder_arn(logical_id)
        raise TemplateError(f"Fn::GetAtt {logical_id}.{attribute} is not available")

    def _placeholder_arn(self, logical_id: str) -> str:
        """ARN of a resource the sandbox does not create.

        Functions outside the template are the ones Chalice generates: their ARN uses the
        logical id as name, which the invoke middleware resolves back to the handler.
        """
        state = self.state
        kind = state.resource_types.get(logical_id)
        if kind is None or kind in LAMBDA_FUNCTIONS:
            return function_arn(logical_id, state.region, state.account_id)
        if kind == "AWS::IAM::Role":
            return f"arn:aws:iam::{state.account_id}:role/{logical_id}"
        service = kind.split("::")[1].lower() if kind.count("::") == 2 else "unknown"
        return f"arn:aws:{service}:{state.region}:{state.account_id}:{logical_id}"

    def sub(self, argument: Any) -> str:
        if isinstance(argument, list):
            text, variables = argument[0], self.resolve(argument[1])
        else:
            text, variables = argument, {}

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in variables:
                return str(variables[name])
            if "." in name and not name.startswith("AWS::"):
                logical_id, attribute = name.split(".", 1)
                return str(self.getatt(logical_id, attribute))
            return str(self.ref(name))

        return _SUB_VARIABLE.sub(replace, str(text))


def _parameters(template: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    values = {
        name: spec["Default"]
        for name, spec in (template.get("Parameters") or {}).items()
        if "Default" in spec
    }
    values.update(overrides)
    return values


def _truthy(value: Any) -> bool:
    return value is True or str(value).lower() == "true"


# --- ordering ---------------------------------------------------------------------------------


def _dependency_order(resources: Mapping[str, Any]) -> list[str]:
    """Logical ids so that every resource comes after those it references (template order kept
    otherwise)."""
    depends = {
        logical_id: {
            name
            for name in references(resource.get("Properties"))
            | set(_as_list(resource.get("DependsOn")))
            if name in resources and name != logical_id
        }
        for logical_id, resource in resources.items()
    }
    ordered: list[str] = []
    done: set[str] = set()
    while len(ordered) < len(resources):
        ready = [lid for lid in resources if lid not in done and depends[lid] <= done]
        if not ready:
            cycle = sorted(set(resources) - done)
            raise TemplateError(f"circular references between {cycle}")
        ordered.extend(ready)
        done.update(ready)
    return ordered


def _as_list(value: Any) -> Iterable[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)
