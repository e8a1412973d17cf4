"""State machines executed for real by moto, their Lambda tasks answered in-process."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from payflow.sandbox.aws import EmbeddedAws
from payflow.sandbox.lambda_invoke import function_arn
from payflow.sandbox.pollers import wait_for
from tests.conftest import FunctionRegistry

ROLE_ARN = "arn:aws:iam::123456789012:role/sandbox"


class PspTimeout(Exception):
    """Transient: the ASL retries it."""


class CardDeclined(Exception):
    """Final: the ASL catches it."""


@pytest.fixture
def sfn(aws: EmbeddedAws) -> Any:
    return aws.client("stepfunctions")


def charge_machine(charge_arn: str) -> str:
    return json.dumps(
        {
            "StartAt": "Charge",
            "States": {
                "Charge": {
                    "Type": "Task",
                    "Resource": charge_arn,
                    "Retry": [
                        {
                            "ErrorEquals": ["PspTimeout"],
                            "IntervalSeconds": 1,
                            "MaxAttempts": 2,
                            "BackoffRate": 1.0,
                        }
                    ],
                    "Catch": [
                        {
                            "ErrorEquals": ["CardDeclined"],
                            "ResultPath": "$.error",
                            "Next": "Declined",
                        }
                    ],
                    "End": True,
                },
                "Declined": {
                    "Type": "Pass",
                    "Result": "declined",
                    "ResultPath": "$.outcome",
                    "End": True,
                },
            },
        }
    )


def run(sfn: Any, machine_arn: str, name: str, payload: dict[str, Any]) -> dict[str, Any]:
    execution_arn = sfn.start_execution(
        stateMachineArn=machine_arn, name=name, input=json.dumps(payload)
    )["executionArn"]
    result: dict[str, Any] = {}

    def finished() -> bool:
        result.update(sfn.describe_execution(executionArn=execution_arn))
        return result["status"] != "RUNNING"

    wait_for(finished, timeout=15, interval=0.1)
    return result


def test_task_retries_on_the_exception_class_name_then_succeeds(
    sfn: Any, functions: FunctionRegistry, unique: Callable[[str], str]
) -> None:
    # Given a charge function that times out once, then succeeds
    name = unique("charge")
    attempts: list[Any] = []

    def charge(event: Any, context: Any) -> dict[str, Any]:
        attempts.append(event)
        if len(attempts) == 1:
            raise PspTimeout("psp did not answer")
        return {"status": "succeeded", "amount": event["amount"]}

    functions[name] = charge
    machine = sfn.create_state_machine(
        name=unique("charge-sm"), definition=charge_machine(function_arn(name)), roleArn=ROLE_ARN
    )["stateMachineArn"]

    # When the machine runs
    execution = run(sfn, machine, unique("exec"), {"amount": 1000})

    # Then the Retry on "PspTimeout" made a second call that succeeded
    assert execution["status"] == "SUCCEEDED", execution
    assert json.loads(execution["output"]) == {"status": "succeeded", "amount": 1000}
    assert len(attempts) == 2


def test_task_error_is_caught_by_the_exception_class_name(
    sfn: Any, functions: FunctionRegistry, unique: Callable[[str], str]
) -> None:
    name = unique("charge")

    def charge(event: Any, context: Any) -> None:
        raise CardDeclined("insufficient_funds")

    functions[name] = charge
    machine = sfn.create_state_machine(
        name=unique("charge-sm"), definition=charge_machine(function_arn(name)), roleArn=ROLE_ARN
    )["stateMachineArn"]

    execution = run(sfn, machine, unique("exec"), {"amount": 1000})

    assert execution["status"] == "SUCCEEDED", execution
    output = json.loads(execution["output"])
    assert output["outcome"] == "declined"
    assert output["error"]["Error"] == "CardDeclined"
    assert json.loads(output["error"]["Cause"])["errorMessage"] == "insufficient_funds"


def test_an_uncaught_error_fails_the_execution_with_its_name(
    sfn: Any, functions: FunctionRegistry, unique: Callable[[str], str]
) -> None:
    name = unique("charge")

    def charge(event: Any, context: Any) -> None:
        raise ValueError("bad amount")

    functions[name] = charge
    machine = sfn.create_state_machine(
        name=unique("charge-sm"), definition=charge_machine(function_arn(name)), roleArn=ROLE_ARN
    )["stateMachineArn"]

    execution = run(sfn, machine, unique("exec"), {"amount": -1})

    assert execution["status"] == "FAILED"
    assert execution["error"] == "ValueError"
