"""Fixtures for the webhook tests: receivers on 127.0.0.1 and endpoints cleaned up after."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import Api
from tests.integration.webhook_receiver import Receiver, eventually


class Hooks:
    """Starts receivers and registers endpoints for one test; undoes both afterwards."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self._receivers: list[Receiver] = []
        self._endpoints: list[str] = []

    def receiver(self, statuses: list[int] | None = None, default: int = 200) -> Receiver:
        receiver = Receiver(statuses, default).start()
        self._receivers.append(receiver)
        return receiver

    def endpoint(self, receiver: Receiver, events: list[str] | None = None) -> dict[str, Any]:
        response = self.api.post(
            "/v1/webhook_endpoints",
            {"url": receiver.url, "enabled_events[]": events or ["*"]},
        )
        assert response.status_code == 200, response.text
        endpoint: dict[str, Any] = response.json()
        self._endpoints.append(endpoint["id"])
        return endpoint

    def close(self) -> None:
        # Deleting the endpoints ends their pending retries: nothing leaks into the next test.
        for endpoint_id in self._endpoints:
            self.api.session.delete(f"{self.api.base}/v1/webhook_endpoints/{endpoint_id}")
        for receiver in self._receivers:
            receiver.stop()


def webhook_queue_drained(sandbox: Any) -> bool:
    """Whether the webhook queue holds no message at all (visible, in flight or delayed): after
    that, no delivery queued so far can still reach a receiver."""
    attributes = sandbox.aws.client("sqs").get_queue_attributes(
        QueueUrl=sandbox.provisioned.physical_ids["WebhookQueue"],
        AttributeNames=[
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed",
        ],
    )["Attributes"]
    return all(int(count) == 0 for count in attributes.values())


def wait_until_drained(sandbox: Any, timeout: float = 15.0) -> None:
    """Until `webhook_queue_drained` (AssertionError after `timeout`)."""
    eventually(lambda: _asserted(webhook_queue_drained(sandbox)), timeout=timeout)


def _asserted(condition: bool) -> bool:
    assert condition
    return condition


@pytest.fixture
def hooks(api: Api) -> Iterator[Hooks]:
    helper = Hooks(api)
    yield helper
    helper.close()
