"""A Step Functions execution of the payment state machine, as a payment's page shows it.

DescribeExecution and GetExecutionHistory answer with AWS's shapes: dates as datetimes, inputs
and outputs as JSON strings, one `...EventDetails` key per event type. This turns them into
what a reader needs: the execution's status and times, and one row per history event (its
state, the candidate connector an Authorize or Reconcile state worked on, the error and cause
of a failure). Inputs and outputs are not copied: they hold the payment's whole task state,
which the page shows elsewhere. Nothing here performs I/O.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

MAX_CAUSE = 300
"""Longest error cause kept (a Lambda's cause is its whole error JSON)."""
CONNECTOR_STATES = frozenset({"Authorize", "Reconcile"})
"""The states of statemachines/payment.asl.json that call the candidate connector: their rows
name it (the other states' inputs point at a candidate too, but call none)."""


def _millis(value: Any) -> int | None:
    if isinstance(value, datetime):
        return int(value.timestamp() * 1000)
    if isinstance(value, (int, float)):
        return int(value * 1000)
    return None


def _candidate(raw: Any) -> str | None:
    """The connector a state's input points at (candidates[index]), when it has one."""
    try:
        task = json.loads(raw) if isinstance(raw, str) else None
    except ValueError:
        return None
    if not isinstance(task, Mapping):
        return None
    candidates, index = task.get("candidates"), task.get("index")
    if isinstance(candidates, list) and isinstance(index, int) and 0 <= index < len(candidates):
        return str(candidates[index])
    return None


def _details(event: Mapping[str, Any]) -> Mapping[str, Any]:
    for key, value in event.items():
        if key.endswith("EventDetails") and isinstance(value, Mapping):
            return value
    return {}


def event_row(event: Mapping[str, Any]) -> dict[str, Any]:
    """One history event: id, type, time, and what of its details a reader needs."""
    details = _details(event)
    row: dict[str, Any] = {
        "id": event.get("id"),
        "type": event.get("type"),
        "timestamp_ms": _millis(event.get("timestamp")),
    }
    if details.get("name"):
        row["state"] = details["name"]
    candidate = _candidate(details.get("input"))
    if candidate and details.get("name") in CONNECTOR_STATES:
        row["connector"] = candidate
    if details.get("error"):
        row["error"] = details["error"]
    if details.get("cause"):
        cause = str(details["cause"])
        row["cause"] = cause if len(cause) <= MAX_CAUSE else cause[: MAX_CAUSE - 1] + "…"
    return row


def execution_view(name: str, attempt: int, found: Mapping[str, Any] | None) -> dict[str, Any]:
    """The execution called `name` for `attempt` (`found`: PaymentWorkflows.execution, None
    when Step Functions has no such execution yet or any more)."""
    if found is None:
        return {"object": "execution", "name": name, "attempt": attempt, "status": "not_found"}
    described = found["execution"]
    return {
        "object": "execution",
        "name": name,
        "attempt": attempt,
        "arn": described.get("executionArn"),
        "status": str(described.get("status", "")).lower(),
        "started_ms": _millis(described.get("startDate")),
        "stopped_ms": _millis(described.get("stopDate")),
        "events": [event_row(e) for e in found["events"]],
    }
