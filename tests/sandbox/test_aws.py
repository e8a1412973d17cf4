"""The embedded AWS: ports, its moto process, invocations sent back to this process."""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Callable
from typing import Any

import pytest

from payflow.sandbox.aws import EmbeddedAws, PortInUseError
from payflow.sandbox.lambda_invoke import function_arn
from payflow.sandbox.pollers import wait_for
from tests.conftest import FunctionRegistry


def test_port_zero_picks_a_free_port_and_sets_moto_port(aws: EmbeddedAws) -> None:
    assert aws.port > 0
    assert aws.endpoint_url == f"http://127.0.0.1:{aws.port}"
    assert os.environ["MOTO_PORT"] == str(aws.port)


def test_a_taken_port_raises_a_clear_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        with pytest.raises(PortInUseError, match=f"port {port} .*is in use.*PAYFLOW_AWS_PORT"):
            EmbeddedAws(port=port).start()


def test_each_server_has_a_moto_of_its_own(
    aws: EmbeddedAws, unique: Callable[[str], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The second server rewrites MOTO_PORT: restore it afterwards.
    monkeypatch.setenv("MOTO_PORT", os.environ["MOTO_PORT"])
    name = unique("isolated")
    aws.client("sqs").create_queue(QueueName=name)

    with EmbeddedAws(port=0) as other:
        urls = other.client("sqs").list_queues(QueueNamePrefix=name).get("QueueUrls", [])

    assert urls == []


def test_a_lambda_invocation_reaches_this_process_from_the_moto_process(
    aws: EmbeddedAws, functions: FunctionRegistry, unique: Callable[[str], str]
) -> None:
    # Given a handler that only this process knows
    name = unique("here")
    calls: list[Any] = []
    functions[name] = lambda event, context: calls.append(event) or {"pid": os.getpid()}

    # When moto's Step Functions engine invokes it
    sfn = aws.client("stepfunctions")
    machine = sfn.create_state_machine(
        name=name,
        roleArn="arn:aws:iam::123456789012:role/sandbox",
        definition=json.dumps(
            {
                "StartAt": "Call",
                "States": {"Call": {"Type": "Task", "Resource": function_arn(name), "End": True}},
            }
        ),
    )["stateMachineArn"]
    execution = sfn.start_execution(stateMachineArn=machine, name=name, input='{"n": 1}')
    wait_for(
        lambda: (
            sfn.describe_execution(executionArn=execution["executionArn"])["status"] != "RUNNING"
        ),
        timeout=10,
    )

    # Then it ran here, once, and its result came back through the engine
    described = sfn.describe_execution(executionArn=execution["executionArn"])
    assert described["status"] == "SUCCEEDED"
    assert json.loads(described["output"]) == {"pid": os.getpid()}
    assert calls == [{"n": 1}]


def test_stop_frees_the_port(aws: EmbeddedAws, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOTO_PORT", os.environ["MOTO_PORT"])
    server = EmbeddedAws(port=0).start()

    process = server._process
    server.stop()

    assert process is not None and process.poll() is not None

    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(("127.0.0.1", server.port))
