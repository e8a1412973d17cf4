"""Deploy a built package (build/) with CloudFormation, to AWS or to LocalStack.

The steps `aws cloudformation package` + `deploy` would take, in boto3 so the aws CLI is not
needed and so the code can be tested against moto with an injected session:

1. ensure an artifacts bucket (``<stack>-artifacts-<account>-<region>``) and upload
   deployment.zip and the state machine definitions under their content hash;
2. point ``CodeUri`` / ``DefinitionUri`` / ``DefinitionS3Location`` at those objects and expand
   the SAM transform locally with
   aws-sam-translator (the library CloudFormation's own transform runs), so AWS, LocalStack and
   the tests all receive the same plain CloudFormation template;
3. create and execute a change set (CREATE or UPDATE), wait, and return the stack's outputs.

The endpoint is the only difference between targets: None for AWS, http://localhost:4566 for
LocalStack.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from payflow.deploy.package import SERVERLESS_FUNCTION, Package, definition_files

# CloudFormation accepts a TemplateBody up to this size; larger templates go through S3.
TEMPLATE_BODY_LIMIT = 51_200
CAPABILITIES = ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"]
_NO_CHANGES = ("didn't contain changes", "No updates are to be performed")
_FAILED = ("ROLLBACK_COMPLETE", "ROLLBACK_FAILED", "DELETE_FAILED")


class DeployError(RuntimeError):
    """The stack could not be created or updated (the message says what CloudFormation said)."""


@dataclass(frozen=True)
class Target:
    """Where to deploy: the boto3 session (credentials, region) and an optional endpoint."""

    session: Any
    """A boto3.session.Session."""
    endpoint_url: str | None = None
    """None for AWS; http://localhost:4566 for LocalStack."""

    @property
    def region(self) -> str:
        return str(self.session.region_name or "us-east-1")

    def client(self, service: str) -> Any:
        return self.session.client(service, endpoint_url=self.endpoint_url)


def stack_name_for(stage: str) -> str:
    """The stack of a Chalice stage; table and queue names start with it."""
    return f"payflow-{stage}"


def expand_sam(template: Mapping[str, Any], region: str) -> dict[str, Any]:
    """Plain CloudFormation from a SAM template, offline (aws-sam-translator)."""
    import boto3
    from samtranslator.model.exceptions import InvalidDocumentException
    from samtranslator.parser.parser import Parser
    from samtranslator.translator.translator import Translator

    translator = Translator(
        managed_policy_map=None,
        sam_parser=Parser(),
        boto_session=boto3.session.Session(region_name=region),
    )
    try:
        expanded: dict[str, Any] = translator.translate(
            json.loads(json.dumps(template)), parameter_values={}, get_managed_policy_map=dict
        )
    except InvalidDocumentException as error:
        causes = "; ".join(str(cause) for cause in error.causes)
        raise DeployError(f"the SAM template does not expand: {causes}") from error
    return expanded


def with_artifacts(
    template: Mapping[str, Any], upload: Callable[[str], tuple[str, str]]
) -> dict[str, Any]:
    """The template with local files (function code, state machine definitions) replaced by
    the S3 locations `upload(relative_path) -> (bucket, key)` put them at."""
    result: dict[str, Any] = json.loads(json.dumps(template))
    for resource in result.get("Resources", {}).values():
        properties = resource.get("Properties") or {}
        code_uri = properties.get("CodeUri")
        if (
            resource.get("Type") == SERVERLESS_FUNCTION
            and isinstance(code_uri, str)
            and not code_uri.startswith("s3://")
        ):
            bucket, key = upload(code_uri)
            properties["CodeUri"] = f"s3://{bucket}/{key}"
    for logical_id, (prop, location) in definition_files(result).items():
        bucket, key = upload(location)
        result["Resources"][logical_id]["Properties"][prop] = {"Bucket": bucket, "Key": key}
    return result


def artifacts_bucket(stack_name: str, account: str, region: str) -> str:
    return f"{stack_name}-artifacts-{account}-{region}".lower()[:63]


def deploy(
    package: Package,
    stack_name: str,
    target: Target,
    *,
    parameters: Mapping[str, str] | None = None,
    prepare: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    poll_seconds: float = 5.0,
    log: Callable[[str], None] = print,
) -> dict[str, str]:
    """Create or update `stack_name` from `package`; returns the stack's outputs.

    `prepare` may rewrite the expanded template just before it is sent (tests use it to work
    around moto's CloudFormation gaps; real targets get the template untouched).
    """
    s3 = target.client("s3")
    cfn = target.client("cloudformation")
    account = target.client("sts").get_caller_identity()["Account"]
    bucket = artifacts_bucket(stack_name, account, target.region)
    _ensure_bucket(s3, bucket, target.region)

    uploaded: dict[str, tuple[str, str]] = {}

    def upload(location: str) -> tuple[str, str]:
        if location not in uploaded:
            path = package.directory / location
            data = path.read_bytes()
            key = f"{stack_name}/{hashlib.sha256(data).hexdigest()[:20]}-{path.name}"
            log(f"uploading {location} ({len(data) // 1024} KiB) to s3://{bucket}/{key}")
            s3.put_object(Bucket=bucket, Key=key, Body=data)
            uploaded[location] = (bucket, key)
        return uploaded[location]

    template = expand_sam(with_artifacts(package.template(), upload), target.region)
    if prepare is not None:
        template = prepare(template)
    body = json.dumps(template, separators=(",", ":"))
    source: dict[str, str]
    if len(body) <= TEMPLATE_BODY_LIMIT:
        source = {"TemplateBody": body}
    else:
        template_key = (
            f"{stack_name}/template-{hashlib.sha256(body.encode()).hexdigest()[:20]}.json"
        )
        s3.put_object(Bucket=bucket, Key=template_key, Body=body.encode())
        source = {"TemplateURL": f"{s3.meta.endpoint_url}/{bucket}/{template_key}"}

    change_set_type = "UPDATE" if _stack_exists(cfn, stack_name) else "CREATE"
    change_set = f"payflow-{int(time.time())}"
    log(f"{change_set_type.lower()} stack {stack_name} (change set {change_set})")
    cfn.create_change_set(
        StackName=stack_name,
        ChangeSetName=change_set,
        ChangeSetType=change_set_type,
        Capabilities=CAPABILITIES,
        Parameters=[
            {"ParameterKey": key, "ParameterValue": value}
            for key, value in (parameters or {}).items()
        ],
        Tags=[{"Key": "app", "Value": "payflow"}],
        **source,
    )
    status = _wait_change_set(cfn, stack_name, change_set, poll_seconds)
    if status["Status"] == "FAILED":
        reason = str(status.get("StatusReason", ""))
        if any(marker in reason for marker in _NO_CHANGES):
            log("no changes")
            cfn.delete_change_set(StackName=stack_name, ChangeSetName=change_set)
            return stack_outputs(cfn, stack_name)
        raise DeployError(f"change set {change_set} failed: {reason}")
    cfn.execute_change_set(StackName=stack_name, ChangeSetName=change_set)
    _wait_stack(cfn, stack_name, poll_seconds)
    outputs = stack_outputs(cfn, stack_name)
    log(f"stack {stack_name} is ready")
    return outputs


def destroy(
    stack_name: str,
    target: Target,
    *,
    poll_seconds: float = 5.0,
    log: Callable[[str], None] = print,
) -> None:
    """Delete the stack (tables and their data included) and empty and delete its bucket."""
    cfn = target.client("cloudformation")
    if _stack_exists(cfn, stack_name):
        log(f"deleting stack {stack_name}")
        cfn.delete_stack(StackName=stack_name)
        _wait_stack(cfn, stack_name, poll_seconds, deleting=True)
    account = target.client("sts").get_caller_identity()["Account"]
    bucket = artifacts_bucket(stack_name, account, target.region)
    s3 = target.client("s3")
    try:
        s3.head_bucket(Bucket=bucket)
    except s3.exceptions.ClientError:
        return
    log(f"deleting bucket {bucket}")
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
        if keys:
            s3.delete_objects(Bucket=bucket, Delete={"Objects": keys})
    s3.delete_bucket(Bucket=bucket)


def stack_outputs(cfn: Any, stack_name: str) -> dict[str, str]:
    stack = cfn.describe_stacks(StackName=stack_name)["Stacks"][0]
    return {output["OutputKey"]: output["OutputValue"] for output in stack.get("Outputs", [])}


def _ensure_bucket(s3: Any, bucket: str, region: str) -> None:
    try:
        s3.head_bucket(Bucket=bucket)
        return
    except s3.exceptions.ClientError as error:
        if error.response["Error"]["Code"] not in ("404", "NoSuchBucket", "NotFound"):
            raise
    request: dict[str, Any] = {"Bucket": bucket}
    if region != "us-east-1":
        request["CreateBucketConfiguration"] = {"LocationConstraint": region}
    s3.create_bucket(**request)
    s3.put_public_access_block(
        Bucket=bucket,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
    )


def _stack_exists(cfn: Any, stack_name: str) -> bool:
    try:
        stack = cfn.describe_stacks(StackName=stack_name)["Stacks"][0]
    except cfn.exceptions.ClientError as error:
        if "does not exist" in str(error):
            return False
        raise
    status = str(stack["StackStatus"])
    if status == "REVIEW_IN_PROGRESS":
        return False  # only a never-executed CREATE change set: create again
    if status == "ROLLBACK_COMPLETE":
        raise DeployError(
            f"stack {stack_name} failed to create and was rolled back: delete it "
            "(make destroy) and deploy again"
        )
    return True


def _wait_change_set(cfn: Any, stack_name: str, name: str, poll_seconds: float) -> dict[str, Any]:
    while True:
        status: dict[str, Any] = cfn.describe_change_set(StackName=stack_name, ChangeSetName=name)
        if status["Status"] in ("CREATE_COMPLETE", "FAILED"):
            return status
        time.sleep(poll_seconds)


def _wait_stack(cfn: Any, stack_name: str, poll_seconds: float, *, deleting: bool = False) -> None:
    while True:
        try:
            stack = cfn.describe_stacks(StackName=stack_name)["Stacks"][0]
        except cfn.exceptions.ClientError:
            if deleting:
                return
            raise
        status = str(stack["StackStatus"])
        if status.endswith("_IN_PROGRESS"):
            time.sleep(poll_seconds)
            continue
        if deleting and status == "DELETE_COMPLETE":
            return
        if status.endswith("_COMPLETE") and "ROLLBACK" not in status and not deleting:
            return
        raise DeployError(
            f"stack {stack_name} ended in {status}: {_failure_reasons(cfn, stack_name)}"
        )


def _failure_reasons(cfn: Any, stack_name: str) -> str:
    events = cfn.describe_stack_events(StackName=stack_name).get("StackEvents", [])
    reasons = [
        f"{e['LogicalResourceId']}: {e.get('ResourceStatusReason', '')}"
        for e in events
        if str(e.get("ResourceStatus", "")).endswith("_FAILED")
    ]
    return "; ".join(reasons[:5]) or "no resource failed (see the stack's events)"
