"""One embedded AWS for the whole sandbox test session.

moto's backends are process-wide globals, so a second server would share them anyway: tests
share this one and give every resource a unique name.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from payflow.sandbox.aws import EmbeddedAws
from payflow.sandbox.lambda_invoke import Handler
from payflow.sandbox.provision import AwsClients


class FunctionRegistry(dict[str, Handler]):
    """Lambda functions the session's invoke middleware knows; tests register their own."""

    def resolve(self, name: str) -> Handler | None:
        return self.get(name)


@pytest.fixture(scope="session")
def functions() -> FunctionRegistry:
    return FunctionRegistry()


@pytest.fixture(scope="session")
def aws(functions: FunctionRegistry) -> Iterator[EmbeddedAws]:
    server = EmbeddedAws(port=0, resolve=functions.resolve).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def clients(aws: EmbeddedAws) -> AwsClients:
    return AwsClients.for_endpoint(aws.endpoint_url)


@pytest.fixture(scope="session")
def streams(aws: EmbeddedAws) -> Any:
    return aws.client("dynamodbstreams")


@pytest.fixture
def unique() -> Callable[[str], str]:
    """Resource names unique across the session: moto's state outlives each test."""

    def make(prefix: str) -> str:
        return f"{prefix}-{uuid.uuid4().hex[:10]}"

    return make
