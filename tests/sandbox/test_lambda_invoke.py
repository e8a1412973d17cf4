"""The Lambda Invoke API answered in-process, driven through a real boto3 Lambda client."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import pytest
from botocore.exceptions import ClientError

from payflow.sandbox.aws import EmbeddedAws
from payflow.sandbox.lambda_invoke import LambdaContext, function_arn, parse_function_name
from tests.conftest import FunctionRegistry


class CardDeclined(Exception):
    """A domain error whose class name must become the Lambda errorType."""


@pytest.fixture
def lambda_client(aws: EmbeddedAws) -> Any:
    return aws.client("lambda")


def test_request_response_returns_the_handler_result(
    lambda_client: Any, functions: FunctionRegistry, unique: Callable[[str], str]
) -> None:
    # Given a function that echoes its event and context
    name = unique("echo")
    functions[name] = lambda event, context: {
        "event": event,
        "function_name": context.function_name,
        "arn": context.invoked_function_arn,
        "remaining_ms": context.get_remaining_time_in_millis(),
    }

    # When it is invoked by name
    response = lambda_client.invoke(FunctionName=name, Payload=json.dumps({"amount": 1000}))

    # Then the result comes back as JSON with a Lambda-shaped context
    assert response["StatusCode"] == 200
    assert "FunctionError" not in response
    body = json.loads(response["Payload"].read())
    assert body["event"] == {"amount": 1000}
    assert body["function_name"] == name
    assert body["arn"] == function_arn(name)
    assert 0 < body["remaining_ms"] <= 60_000


def test_a_raised_exception_is_an_unhandled_function_error(
    lambda_client: Any, functions: FunctionRegistry, unique: Callable[[str], str]
) -> None:
    name = unique("decline")

    def handler(event: Any, context: Any) -> None:
        raise CardDeclined("insufficient_funds")

    functions[name] = handler

    # When invoked by full ARN with a qualifier
    response = lambda_client.invoke(FunctionName=f"{function_arn(name)}:live", Payload=b"{}")

    # Then the error has AWS's shape, with the exception class name as errorType
    assert response["StatusCode"] == 200
    assert response["FunctionError"] == "Unhandled"
    body = json.loads(response["Payload"].read())
    assert body["errorType"] == "CardDeclined"
    assert body["errorMessage"] == "insufficient_funds"
    assert isinstance(body["stackTrace"], list)
    assert "in handler" in body["stackTrace"][0]


def test_event_invocation_answers_202_and_runs_in_the_background(
    lambda_client: Any, functions: FunctionRegistry, unique: Callable[[str], str]
) -> None:
    name = unique("async")
    received: list[Any] = []
    done = threading.Event()

    def handler(event: Any, context: Any) -> None:
        received.append(event)
        done.set()

    functions[name] = handler

    response = lambda_client.invoke(
        FunctionName=name, InvocationType="Event", Payload=json.dumps({"id": "evt_1"})
    )

    assert response["StatusCode"] == 202
    assert done.wait(5)
    assert received == [{"id": "evt_1"}]


def test_dry_run_does_not_run_the_handler(
    lambda_client: Any, functions: FunctionRegistry, unique: Callable[[str], str]
) -> None:
    name = unique("dry")
    calls: list[Any] = []
    functions[name] = lambda event, context: calls.append(event)

    response = lambda_client.invoke(FunctionName=name, InvocationType="DryRun")

    assert response["StatusCode"] == 204
    assert calls == []


def test_unknown_function_is_resource_not_found(lambda_client: Any) -> None:
    with pytest.raises(ClientError) as caught:
        lambda_client.invoke(FunctionName="no-such-function", Payload=b"{}")

    error = caught.value.response
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 404
    assert error["Error"]["Code"] == "ResourceNotFoundException"
    assert function_arn("no-such-function") in error["Error"]["Message"]


def test_url_encoded_arn_in_the_path_is_accepted(
    aws: EmbeddedAws, functions: FunctionRegistry, unique: Callable[[str], str]
) -> None:
    import urllib.request

    name = unique("encoded")
    functions[name] = lambda event, context: "ok"
    path = f"/2015-03-31/functions/{quote(function_arn(name), safe='')}/invocations"
    request = urllib.request.Request(aws.endpoint_url + path, data=b"{}", method="POST")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    with opener.open(request, timeout=5) as response:
        assert response.status == 200
        assert json.loads(response.read()) == "ok"


def test_other_requests_pass_through_to_moto(lambda_client: Any) -> None:
    # ListFunctions is not an invocation: moto answers it (and knows no functions).
    assert lambda_client.list_functions()["Functions"] == []


def test_function_names_are_parsed_from_every_form() -> None:
    arn = "arn:aws:lambda:us-east-1:123456789012:function:ProcessPayment"
    assert parse_function_name("ProcessPayment") == ("ProcessPayment", None)
    assert parse_function_name("ProcessPayment:live") == ("ProcessPayment", "live")
    assert parse_function_name(arn) == ("ProcessPayment", None)
    assert parse_function_name(f"{arn}:7") == ("ProcessPayment", "7")
    assert parse_function_name(quote(arn, safe="")) == ("ProcessPayment", None)
    assert parse_function_name("123456789012:function:ProcessPayment") == ("ProcessPayment", None)


def test_context_counts_down_with_the_injected_clock() -> None:
    now = [100.0]
    context = LambdaContext("fn", timeout_seconds=3, clock=lambda: now[0])

    now[0] += 1.5
    assert context.get_remaining_time_in_millis() == 1500
    now[0] += 10
    assert context.get_remaining_time_in_millis() == 0
