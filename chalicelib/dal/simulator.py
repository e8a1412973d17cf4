"""The simulator PSP's own book of operations, in its own table.

A real PSP keeps its own record of what it charged, deduplicated by the idempotency key its
caller sends. The simulator does the same with conditional puts: `pk` = `<operation>#<key>`.
That record is what tests read to prove that nothing was charged twice.

Two small sets, each one item (`set#<name>`), name what is still pending so that a sweep reads
one item rather than scanning the table: the customer actions still waiting (UPI requests,
wallet approvals) and the simulator's webhooks not yet delivered.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from chalicelib.dal.dynamo import error_code, from_attrs, to_attrs


class SimulatorLedger:
    """Idempotent records of the simulator's authorizations, captures and voids."""

    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def record_once(self, operation: str, key: str, record: dict[str, Any]) -> dict[str, Any]:
        """Store `record` under (operation, key) unless one is there; return the one stored."""
        pk = f"{operation}#{key}"
        try:
            self._client.put_item(
                TableName=self._table,
                Item=to_attrs({"pk": pk, "operation": operation, **record}),
                ConditionExpression="attribute_not_exists(pk)",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as error:
            if error_code(error) != "ConditionalCheckFailedException":
                raise
            existing = from_attrs(error.response.get("Item", {}))
            existing.pop("pk", None)
            existing.pop("operation", None)
            return existing
        return record

    def count_call(self, key: str) -> int:
        """How many times the simulator has been called with `key`, this call included."""
        response = self._client.update_item(
            TableName=self._table,
            Key=to_attrs({"pk": f"calls#{key}"}),
            UpdateExpression="ADD calls :one",
            ExpressionAttributeValues=to_attrs({":one": 1}),
            ReturnValues="UPDATED_NEW",
        )
        return int(from_attrs(response["Attributes"])["calls"])

    def update(self, operation: str, key: str, changes: dict[str, Any]) -> None:
        """Set `changes` on a stored record (delivery bookkeeping, never what was charged)."""
        names = {f"#f{i}": name for i, name in enumerate(changes)}
        values = {f":v{i}": value for i, value in enumerate(changes.values())}
        self._client.update_item(
            TableName=self._table,
            Key=to_attrs({"pk": f"{operation}#{key}"}),
            UpdateExpression="SET "
            + ", ".join(f"{n} = {v}" for n, v in zip(names, values, strict=True)),
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=to_attrs(values),
        )

    def add_pending(self, name: str, member: str) -> None:
        """Put `member` in the pending set `name` (adding it twice keeps one)."""
        self._client.update_item(
            TableName=self._table,
            Key=to_attrs({"pk": f"set#{name}"}),
            UpdateExpression="ADD members :m",
            ExpressionAttributeValues={":m": {"SS": [member]}},
        )

    def remove_pending(self, name: str, member: str) -> None:
        """Take `member` out of the pending set `name` (a member not there is no error)."""
        self._client.update_item(
            TableName=self._table,
            Key=to_attrs({"pk": f"set#{name}"}),
            UpdateExpression="DELETE members :m",
            ExpressionAttributeValues={":m": {"SS": [member]}},
        )

    def pending(self, name: str) -> set[str]:
        """The members of the pending set `name`."""
        response = self._client.get_item(
            TableName=self._table, Key=to_attrs({"pk": f"set#{name}"}), ConsistentRead=True
        )
        return set(response.get("Item", {}).get("members", {}).get("SS", []))

    def find(self, operation: str, key: str) -> dict[str, Any] | None:
        """The record stored under (operation, key), or None."""
        response = self._client.get_item(
            TableName=self._table, Key=to_attrs({"pk": f"{operation}#{key}"}), ConsistentRead=True
        )
        item = response.get("Item")
        return from_attrs(item) if item else None

    def annotate(self, pk: str, fields: dict[str, Any]) -> None:
        """Set `fields` on the record stored under `pk` (the sandbox's injected discrepancies:
        how the PSP's own book comes to differ from what it answered)."""
        names = {f"#f{i}": name for i, name in enumerate(fields)}
        values = {f":v{i}": value for i, value in enumerate(fields.values())}
        self._client.update_item(
            TableName=self._table,
            Key=to_attrs({"pk": pk}),
            UpdateExpression="SET "
            + ", ".join(f"{n} = {v}" for n, v in zip(names, values, strict=True)),
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=to_attrs(values),
        )

    def all_records(self) -> list[dict[str, Any]]:
        """Every record (a sandbox-sized scan, for tests and checks)."""
        records: list[dict[str, Any]] = []
        params: dict[str, Any] = {"TableName": self._table, "ConsistentRead": True}
        while True:
            response = self._client.scan(**params)
            records.extend(from_attrs(item) for item in response.get("Items", []))
            if "LastEvaluatedKey" not in response:
                return records
            params["ExclusiveStartKey"] = response["LastEvaluatedKey"]
