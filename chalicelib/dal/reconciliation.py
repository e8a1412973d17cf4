"""Reconciliation's own items in the payments table (runs and exceptions are merchant-owned
objects of the ObjectStore; these are their working parts).

- `<run>#chunk#<n>` / `reconciliation_chunk`: a share of a run's settlement lines, packed; what
  one Map iteration of the workflow matches.
- `reconciled#<merchant>#<provider>#<object>` / `reconciliation_settled`: which line settled a
  charge or a refund (provider `bank`: which payout a bank credit carried). Written once
  (conditionally), so a second line settling the same object is a duplicate however many
  runs apart they come, and a rerun of the same line is not.
- `bankstatement#<merchant>#<digest>` / `reconciliation_statement_name`: which upload holds a
  statement (by its bank's statement id, or its content), so that a second upload is the
  first.
"""

from __future__ import annotations

from typing import Any

from chalicelib.dal.dynamo import WriteBatch, batch_get, pack, to_attrs, unpack

CHUNK = "reconciliation_chunk"
SETTLED = "reconciliation_settled"
STATEMENT_NAME = "reconciliation_statement_name"


class ReconciliationStore:
    """Chunks of settlement lines and the settled markers."""

    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def put_chunks(self, run_id: str, chunks: list[list[dict[str, Any]]]) -> None:
        """Store the run's lines, chunk by chunk (a rerun overwrites them with the same)."""
        for number, rows in enumerate(chunks):
            self._client.put_item(
                TableName=self._table,
                Item=to_attrs(
                    {"pk": f"{run_id}#chunk#{number}", "sk": CHUNK, "rows_z": pack(rows)}
                ),
            )

    def chunk(self, run_id: str, number: int) -> list[dict[str, Any]]:
        found = batch_get(
            self._client, self._table, [{"pk": f"{run_id}#chunk#{number}", "sk": CHUNK}]
        )
        item = found.get((f"{run_id}#chunk#{number}", CHUNK))
        if item is None:
            raise LookupError(f"{run_id} has no chunk {number}")
        rows: list[dict[str, Any]] = unpack(item["rows_z"])
        return rows

    @staticmethod
    def _settled_key(merchant_id: str, provider: str, object_id: str) -> dict[str, str]:
        return {"pk": f"reconciled#{merchant_id}#{provider}#{object_id}", "sk": SETTLED}

    def settled_by(self, merchant_id: str, provider: str, object_ids: list[str]) -> dict[str, str]:
        """object id -> the line that settled it, for those already settled."""
        keys = [self._settled_key(merchant_id, provider, o) for o in sorted(set(object_ids))]
        found = batch_get(self._client, self._table, keys)
        prefix = f"reconciled#{merchant_id}#{provider}#"
        return {pk.removeprefix(prefix): item["row_id"] for (pk, _), item in found.items()}

    def mark_settled(
        self, batch: WriteBatch, merchant_id: str, provider: str, object_id: str, row_id: str
    ) -> None:
        """Add to `batch`: `row_id` settled `object_id` (fails if a line already did)."""
        batch.add(
            "settled",
            {
                "Put": {
                    "TableName": self._table,
                    "Item": to_attrs(
                        {**self._settled_key(merchant_id, provider, object_id), "row_id": row_id}
                    ),
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            },
        )

    @staticmethod
    def _name_key(merchant_id: str, name: str) -> dict[str, str]:
        return {"pk": f"bankstatement#{merchant_id}#{name}", "sk": STATEMENT_NAME}

    def statement_named(self, merchant_id: str, name: str) -> str | None:
        """The uploaded statement that `name` (what identifies its content) belongs to."""
        key = self._name_key(merchant_id, name)
        found = batch_get(self._client, self._table, [key])
        item = found.get((key["pk"], STATEMENT_NAME))
        return str(item["statement"]) if item else None

    def name_statement(
        self, batch: WriteBatch, merchant_id: str, name: str, statement_id: str
    ) -> None:
        """Add to `batch`: `name` is `statement_id`'s (fails if another upload has it)."""
        batch.add(
            "statement_name",
            {
                "Put": {
                    "TableName": self._table,
                    "Item": to_attrs(
                        {**self._name_key(merchant_id, name), "statement": statement_id}
                    ),
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            },
        )
