"""DynamoDB plumbing shared by the stores: item (de)serialization and atomic write batches."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def _decimals(value: Any) -> Any:
    # Rates and thresholds are fractions; DynamoDB numbers want Decimal, never binary floats.
    if isinstance(value, float):
        return Decimal(str(value))
    if isinstance(value, dict):
        return {k: _decimals(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_decimals(v) for v in value]
    return value


def to_attrs(values: dict[str, Any]) -> dict[str, Any]:
    """Python values -> DynamoDB attribute values (None at the top level is left out)."""
    return {k: _serializer.serialize(_decimals(v)) for k, v in values.items() if v is not None}


def _plain(value: Any) -> Any:
    # Money is integer minor units and comes back as int; only rates have a fraction.
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | set):
        return [_plain(v) for v in value]
    return value


def from_attrs(item: Mapping[str, Any] | Any) -> dict[str, Any]:
    """DynamoDB attribute values -> plain Python values with ints for numbers."""
    return {k: _plain(_deserializer.deserialize(v)) for k, v in item.items()}


def error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


class ConditionFailed(Exception):
    """One action of a write batch failed its condition; `label` says which."""

    def __init__(self, label: str, old_item: dict[str, Any] | None = None) -> None:
        super().__init__(label)
        self.label = label
        self.old_item = old_item


@dataclass
class WriteBatch:
    """Writes that commit together in one TransactWriteItems call, or not at all."""

    actions: list[dict[str, Any]] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    on_commit: list[Any] = field(default_factory=list)
    """Callbacks run after the batch committed (e.g. marking an idempotency claim complete)."""

    def add(self, label: str, action: dict[str, Any]) -> None:
        self.actions.append(action)
        self.labels.append(label)


def commit(client: Any, batch: WriteBatch) -> None:
    """Write `batch` atomically; a failed condition raises ConditionFailed naming its action."""
    if not batch.actions:
        return
    try:
        if len(batch.actions) == 1:
            _single(client, batch.actions[0])
        else:
            client.transact_write_items(TransactItems=batch.actions)
    except ClientError as error:
        code = error_code(error)
        if code == "ConditionalCheckFailedException":
            item = error.response.get("Item")
            raise ConditionFailed(batch.labels[0], from_attrs(item) if item else None) from error
        if code == "TransactionCanceledException":
            reasons = error.response.get("CancellationReasons", [])
            for label, reason in zip(batch.labels, reasons, strict=False):
                if reason.get("Code") == "ConditionalCheckFailed":
                    item = reason.get("Item")
                    raise ConditionFailed(label, from_attrs(item) if item else None) from error
        raise
    for callback in batch.on_commit:
        callback()


def _single(client: Any, action: dict[str, Any]) -> None:
    # One action needs no transaction: a plain conditional write costs half as much.
    ((kind, params),) = action.items()
    params = {**params, "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}
    if kind == "Put":
        client.put_item(**params)
    elif kind == "Update":
        client.update_item(**params)
    elif kind == "Delete":
        client.delete_item(**params)
    else:
        client.transact_write_items(TransactItems=[action])
