"""Step Functions executions of the payment state machine."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any, TypeVar

from botocore.exceptions import ClientError

from chalicelib.dal.dynamo import error_code

T = TypeVar("T")


class PaymentWorkflows:
    """Starts executions under deterministic names, and waits for what they write."""

    def __init__(
        self,
        client: Any,
        state_machine_arn: str,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._client = client
        self._arn = state_machine_arn
        self._clock = clock
        self._sleep = sleep

    def execution_arn(self, name: str) -> str:
        return self._arn.replace(":stateMachine:", ":execution:") + f":{name}"

    def start(self, name: str, payload: dict[str, Any]) -> str:
        """Start (or find) the execution called `name`. Standard workflows treat a repeated
        start with the same name and input as the same execution, so this is idempotent."""
        try:
            response = self._client.start_execution(
                stateMachineArn=self._arn,
                name=name,
                input=json.dumps(payload, sort_keys=True, separators=(",", ":")),
            )
        except ClientError as error:
            if error_code(error) == "ExecutionAlreadyExists":
                return self.execution_arn(name)
            raise
        return str(response["executionArn"])

    def execution(self, name: str, most_events: int = 500) -> dict[str, Any] | None:
        """The execution called `name` (DescribeExecution) with its first `most_events` history
        events (GetExecutionHistory pages), or None when there is no such execution. A payment's
        history is a few dozen events: retries and failovers, never a loop."""
        arn = self.execution_arn(name)
        try:
            described = self._client.describe_execution(executionArn=arn)
        except ClientError as error:
            if error_code(error) == "ExecutionDoesNotExist":
                return None
            raise
        events: list[dict[str, Any]] = []
        params: dict[str, Any] = {"executionArn": arn, "maxResults": 100}
        while len(events) < most_events:
            page = self._client.get_execution_history(**params)
            events.extend(page.get("events", []))
            if not page.get("nextToken"):
                break
            params["nextToken"] = page["nextToken"]
        return {"execution": described, "events": events[:most_events]}

    def wait_for(self, read: Callable[[], T], settled: Callable[[T], bool], timeout_ms: int) -> T:
        """`read()` again until `settled(value)` or `timeout_ms` passes; the last value read.

        The wait watches the object the execution writes (a strongly consistent GetItem), not
        the execution: Step Functions allows an account about 15 DescribeExecution calls a
        second (a bucket of 250), which confirms polling it would exhaust at a few payments a
        second, while reads of the table scale with it."""
        deadline = self._clock() + timeout_ms / 1000
        interval = 0.05
        while True:
            value = read()
            if settled(value) or self._clock() >= deadline:
                return value
            self._sleep(min(interval, max(0.0, deadline - self._clock())))
            interval = min(interval * 1.5, 0.25)
