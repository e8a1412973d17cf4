"""One embedded AWS for the whole sandbox test session.

moto's backends are process-wide globals, so a second server would share them anyway: tests
share this one and give every resource a unique name.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest

from payflow.sandbox.aws import EmbeddedAws
from payflow.sandbox.pollers import WireStreams
from payflow.sandbox.provision import AwsClients


@pytest.fixture(scope="session")
def aws(sandbox: Any) -> EmbeddedAws:
    """The session sandbox's embedded AWS: one moto server per process (MOTO_PORT is global)."""
    return sandbox.aws  # type: ignore[no-any-return]


@pytest.fixture(scope="session")
def clients(aws: EmbeddedAws) -> AwsClients:
    return AwsClients.for_endpoint(aws.endpoint_url)


@pytest.fixture(scope="session")
def streams(aws: EmbeddedAws) -> Any:
    """The client the sandbox's stream pollers read with (GetRecords' JSON as it came)."""
    return WireStreams(aws.client("dynamodbstreams"), aws.endpoint_url)


@pytest.fixture
def unique() -> Callable[[str], str]:
    """Resource names unique across the session: moto's state outlives each test."""

    def make(prefix: str) -> str:
        return f"{prefix}-{uuid.uuid4().hex[:10]}"

    return make
