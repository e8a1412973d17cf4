"""Corrections to moto behaviour that the sandbox depends on, applied once per process.

TransactWriteItems: moto applies the actions one by one and, if one fails, rolls back by
replacing every table involved with a deep copy taken before the transaction. That costs a copy
of whole tables on every transaction (the sandbox's payments got slower as its tables grew: most
of a payment's CPU went to `deepcopy`), and the restored copy carries a new stream shard while
every shard iterator handed out keeps pointing at the old one, so after one cancelled transaction
all stream readers went silent.

The replacement does what DynamoDB specifies: first check every action's condition (and that no
item is touched twice) without writing; if any fails, cancel with the reasons and write nothing;
otherwise apply them all. The embedded AWS serializes DynamoDB requests (aws.AtomicDynamoDB), so
the conditions still hold while the writes are applied. Should an action fail while being applied
anyway (a malformed update expression), the items already written are restored.

GetRecords: stream records are already DynamoDB JSON, but moto walks each through its generic
response serializer, about 3.5 ms of CPU per record carrying a PaymentIntent image (most of a
payment's CPU once the copies were gone). The replacement answers with plain `json.dumps`.
"""

from __future__ import annotations

import base64
import copy
import datetime
import json
from typing import Any

_APPLIED = False


def apply() -> None:
    """Install the corrections (idempotent)."""
    global _APPLIED
    if _APPLIED:
        return
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodbstreams.responses import DynamoDBStreamsHandler

    DynamoDBBackend.transact_write_items = _transact_write_items  # type: ignore[method-assign]
    DynamoDBStreamsHandler.get_records = _get_records  # type: ignore[method-assign,assignment]
    _APPLIED = True


def _wire(value: Any) -> Any:
    """How the DynamoDB JSON protocol writes what json cannot: timestamps as epoch seconds,
    binary attributes as base64."""
    if isinstance(value, datetime.datetime):
        return value.timestamp()
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode("ascii")
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def _get_records(self: Any) -> str:
    limit = self._get_param("Limit") or 1000
    result = self.backend.get_records(self._get_param("ShardIterator"), limit)
    return json.dumps(result, default=_wire)


def _key(backend: Any, op_type: str, op: dict[str, Any]) -> dict[str, Any]:
    if op_type != "Put":
        return dict(op["Key"])
    table = backend.get_table(op["TableName"])
    attrs = op["Item"]
    key = {table.hash_key_attr: attrs[table.hash_key_attr]}
    if table.range_key_attr is not None:
        key[table.range_key_attr] = attrs[table.range_key_attr]
    return key


def _transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
    from moto.dynamodb.comparisons import get_filter_expression
    from moto.dynamodb.exceptions import (
        ConditionalCheckFailed,
        MultipleTransactionsException,
        TooManyTransactionsException,
        TransactionCanceledException,
        TransactWriteSingleOpException,
    )

    if len(transact_items) > 100:
        raise TooManyTransactionsException()
    actions: list[tuple[str, dict[str, Any], dict[str, Any]]] = []
    seen: set[tuple[str, str]] = set()
    errors: list[tuple[Any, Any, Any]] = []
    # Phase 1: validate and check every condition, writing nothing.
    for item in transact_items:
        if len(item) > 1:
            raise TransactWriteSingleOpException
        op_type, op = next(iter(item.items()))
        if op_type not in {"ConditionCheck", "Put", "Delete", "Update"}:
            raise ValueError("Unsupported transaction operation")
        key = _key(self, op_type, op)
        target = (str(op["TableName"]), str(dict(sorted(key.items()))))
        if target in seen:
            raise MultipleTransactionsException()
        seen.add(target)
        actions.append((op_type, op, key))
        current = self.get_item(op["TableName"], key)
        condition = op.get("ConditionExpression")
        if condition is not None:
            check = get_filter_expression(
                condition,
                op.get("ExpressionAttributeNames"),
                op.get("ExpressionAttributeValues"),
            )
            if not check.expr(current):
                old = None
                if op.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD" and current:
                    old = current.to_json()["Attributes"]
                failure = ConditionalCheckFailed(item=old)
                errors.append(("ConditionalCheckFailed", str(failure.message), old))
                continue
        errors.append((None, None, None))
    if any(code is not None for code, _, _ in errors):
        raise TransactionCanceledException(errors)

    # Phase 2: apply. Keep what each touched item was, to restore it if an action breaks.
    before: list[tuple[str, dict[str, Any], Any]] = []
    try:
        for op_type, op, key in actions:
            if op_type == "ConditionCheck":
                continue
            table_name = op["TableName"]
            current = self.get_item(table_name, key)
            before.append((table_name, key, copy.deepcopy(current) if current else None))
            names = op.get("ExpressionAttributeNames")
            values = op.get("ExpressionAttributeValues")
            if op_type == "Put":
                self.put_item(table_name, op["Item"])
            elif op_type == "Delete":
                self.delete_item(table_name, key)
            else:
                self.update_item(
                    table_name,
                    key,
                    update_expression=op["UpdateExpression"],
                    expression_attribute_names=names,
                    expression_attribute_values=values,
                )
    except Exception:
        for table_name, key, old in reversed(before):
            if old is None:
                self.delete_item(table_name, key)
            else:
                self.put_item(table_name, old.to_json()["Attributes"])
        raise
