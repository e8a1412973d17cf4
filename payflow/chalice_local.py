"""`chalice local` against a running sandbox (`make chalice-local`, `payflow chalice-local`).

`make dev` provides the AWS side (moto with the resources of infra/, the pollers that relay
events and deliver webhooks, the Lambda invoke endpoint the payment executions call); `chalice
local` serves the same app.py beside it, with autoreload. Its handlers get the environment the
sandbox gives its own: infra/environment.json resolved against what the sandbox provisioned,
looked up read-only in the running embedded AWS, plus the sandbox-mode settings.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from payflow.locate import DUMMY_AWS_ENVIRONMENT, ROOT, CliError, aws_client

TEMPLATE = ROOT / "infra" / "resources.json"
ENVIRONMENT = ROOT / "infra" / "environment.json"
DEFAULT_STACK = "payflow"
CHALICE_STAGE = "local"
"""The .chalice/config.json stage whose variables turn X-Ray tracing off (no daemon locally)."""


def lookup_environment(
    aws_url: str, stack: str = DEFAULT_STACK, environ: Mapping[str, str] | None = None
) -> dict[str, str]:
    """infra/environment.json resolved against the resources the sandbox at `aws_url`
    provisioned for `stack` (read-only: nothing is created). CliError names what is missing."""
    from payflow.sandbox.lambda_invoke import REGION
    from payflow.sandbox.provision import Provisioned, load_template

    template = load_template(TEMPLATE)
    resources: dict[str, Any] = template.get("Resources") or {}
    provisioned = Provisioned(
        stack_name=stack,
        region=REGION,
        resource_types={lid: str(res.get("Type", "")) for lid, res in resources.items()},
    )
    wanted: dict[str, Any] = json.loads(ENVIRONMENT.read_text(encoding="utf-8"))
    for name, value in wanted.items():
        if name.startswith("_") or not isinstance(value, dict) or "Ref" not in value:
            continue
        logical_id = str(value["Ref"])
        resource = resources.get(logical_id)
        if resource is None:
            raise CliError(f"infra/environment.json: {name} refers to unknown {logical_id}")
        provisioned.physical_ids[logical_id] = _find(
            logical_id, resource, provisioned, aws_url, environ
        )
    environment = {
        name: str(provisioned.resolve(value))
        for name, value in wanted.items()
        if not name.startswith("_")
    }
    return environment


def _find(
    logical_id: str,
    resource: Mapping[str, Any],
    provisioned: Any,
    aws_url: str,
    environ: Mapping[str, str] | None,
) -> str:
    """The physical id of one resource of the template in the running sandbox."""
    properties = resource.get("Properties") or {}
    kind = resource.get("Type", "")
    if kind == "AWS::DynamoDB::Table":
        table = str(provisioned.resolve(properties["TableName"]))
        dynamodb = aws_client("dynamodb", aws_url, environ)
        if table not in dynamodb.list_tables()["TableNames"]:
            raise CliError(_missing("table", table, aws_url))
        return table
    if kind == "AWS::SQS::Queue":
        queue = str(provisioned.resolve(properties["QueueName"]))
        sqs = aws_client("sqs", aws_url, environ)
        try:
            return str(sqs.get_queue_url(QueueName=queue)["QueueUrl"])
        except sqs.exceptions.QueueDoesNotExist:
            raise CliError(_missing("queue", queue, aws_url)) from None
    if kind in ("AWS::StepFunctions::StateMachine", "AWS::Serverless::StateMachine"):
        machine = str(provisioned.resolve(properties.get("StateMachineName") or properties["Name"]))
        sfn = aws_client("stepfunctions", aws_url, environ)
        for page in sfn.get_paginator("list_state_machines").paginate():
            for found in page["stateMachines"]:
                if found["name"] == machine:
                    return str(found["stateMachineArn"])
        raise CliError(_missing("state machine", machine, aws_url))
    raise CliError(f"infra/environment.json: cannot look up {logical_id} ({kind}) locally")


def _missing(kind: str, name: str, aws_url: str) -> str:
    return (
        f"the sandbox at {aws_url} has no {kind} {name}: is `make dev` running "
        "(with the same stack name)?"
    )


def sandbox_settings(aws_url: str, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The settings the sandbox gives its handlers besides the resource names: its AWS endpoint,
    dummy credentials, and sandbox mode (loopback webhook URLs, funds available at once, the
    compressed retry schedule). Values already in `environ` win."""
    from payflow.sandbox.runtime import SANDBOX_WEBHOOK_RETRY_SCHEDULE

    env = os.environ if environ is None else environ
    defaults = {
        "PAYFLOW_ADMIN_KEY": "sk_admin_payflow",
        "PAYFLOW_AVAILABILITY_DELAY_SECONDS": "0",
        "PAYFLOW_WEBHOOK_RETRY_SCHEDULE": SANDBOX_WEBHOOK_RETRY_SCHEDULE,
        "PAYFLOW_METRICS_SINK": "memory",
    }
    settings = {name: env.get(name, value) for name, value in defaults.items()}
    return {
        **settings,
        **DUMMY_AWS_ENVIRONMENT,
        "AWS_REGION": DUMMY_AWS_ENVIRONMENT["AWS_DEFAULT_REGION"],
        "AWS_ENDPOINT_URL": aws_url,
        "PAYFLOW_SANDBOX": "true",
        "PAYFLOW_TRACING": "false",
        "POWERTOOLS_TRACE_DISABLED": "true",
    }


def local_environment(
    aws_url: str, stack: str = DEFAULT_STACK, environ: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Everything `chalice local` needs to serve the app against the sandbox at `aws_url`."""
    return {**sandbox_settings(aws_url, environ), **lookup_environment(aws_url, stack, environ)}


def export_lines(environment: Mapping[str, str]) -> str:
    """`export NAME=value` lines a POSIX shell can `eval`."""
    return "".join(
        f"export {name}={shlex.quote(value)}\n" for name, value in sorted(environment.items())
    )


def chalice_command(host: str, port: int, *, autoreload: bool = True) -> list[str]:
    """The `chalice local` command line for this checkout and the local stage."""
    chalice = Path(sys.executable).with_name("chalice")
    return [
        str(chalice) if chalice.exists() else "chalice",
        "--project-dir",
        str(ROOT),
        "local",
        "--stage",
        CHALICE_STAGE,
        "--host",
        host,
        "--port",
        str(port),
        "--autoreload" if autoreload else "--no-autoreload",
    ]


def exec_chalice_local(
    environment: Mapping[str, str], host: str, port: int, *, autoreload: bool = True
) -> None:
    """Replace this process with `chalice local` (Ctrl-C then goes straight to Chalice)."""
    command = chalice_command(host, port, autoreload=autoreload)
    os.execvpe(command[0], command, {**os.environ, **environment})


def describe(environment: Mapping[str, str], port: int, out: Any = sys.stdout) -> None:
    """What `chalice local` is about to serve against (one block, before it starts)."""
    print(
        f"chalice local on http://127.0.0.1:{port} (stage {CHALICE_STAGE}, autoreload) against "
        f"the sandbox's AWS at {environment['AWS_ENDPOINT_URL']}\n"
        f"  payments table {environment.get('PAYFLOW_PAYMENTS_TABLE')}; executions and webhooks "
        "run in the `make dev` process",
        file=out,
        flush=True,
    )
