"""The deploy step without Docker or AWS: targets, artifact uploads, SAM expansion. (Deploying
the package into moto's CloudFormation runs in the drift probe: see test_drift.py.)"""

from __future__ import annotations

from typing import Any

import pytest

from payflow.deploy.__main__ import LOCALSTACK_URL, make_target, parse_args
from payflow.deploy.cloudformation import (
    artifacts_bucket,
    expand_sam,
    stack_name_for,
    with_artifacts,
)
from payflow.deploy.package import Package


def test_localstack_gets_the_same_package_at_its_endpoint_with_test_credentials() -> None:
    target = make_target(LOCALSTACK_URL, environ={})

    client = target.client("cloudformation")

    assert client.meta.endpoint_url == LOCALSTACK_URL
    assert target.session.get_credentials().access_key == "test"
    assert target.region == "us-east-1"


def test_aws_gets_the_default_endpoint_and_the_environments_region(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # boto3 honours AWS_ENDPOINT_URL from the process (the session sandbox sets it).
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    target = make_target(None, environ={"AWS_REGION": "eu-west-1"})

    assert target.endpoint_url is None
    assert target.client("s3").meta.endpoint_url.startswith("https://")


def test_the_stage_names_the_stack() -> None:
    args = parse_args(["deploy", "--stage", "prod"])

    assert stack_name_for(args.stage) == "payflow-prod"
    assert artifacts_bucket("payflow-dev", "123456789012", "us-east-1") == (
        "payflow-dev-artifacts-123456789012-us-east-1"
    )


def test_local_files_are_uploaded_once_and_referenced_by_their_s3_location(
    built: Package,
) -> None:
    uploads: list[str] = []

    def upload(location: str) -> tuple[str, str]:
        uploads.append(location)
        return "bucket", f"key/{location}"

    template = with_artifacts(built.template(), upload)

    functions = [
        r["Properties"]
        for r in template["Resources"].values()
        if r["Type"] == "AWS::Serverless::Function"
    ]
    assert {f["CodeUri"] for f in functions} == {"s3://bucket/key/./deployment.zip"}
    assert "./deployment.zip" in uploads
    assert all(not (built.directory / u).is_dir() for u in uploads)


def test_the_sam_template_expands_offline_to_plain_cloudformation(built: Package) -> None:
    template: dict[str, Any] = expand_sam(
        with_artifacts(built.template(), lambda location: ("bucket", location)), "us-east-1"
    )

    kinds = {r["Type"] for r in template["Resources"].values()}
    assert "Transform" not in template
    assert not {k for k in kinds if k.startswith("AWS::Serverless::")}
    assert {"AWS::Lambda::Function", "AWS::Lambda::EventSourceMapping"} <= kinds
    mappings = [
        r["Properties"]
        for r in template["Resources"].values()
        if r["Type"] == "AWS::Lambda::EventSourceMapping"
    ]
    assert all(m.get("FunctionResponseTypes") == ["ReportBatchItemFailures"] for m in mappings)
