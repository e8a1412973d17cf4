"""Which PayFlow dispute a provider's dispute is, in the payments table.

- `dispute_ref#<provider>#<provider's dispute id>` / `dispute_ref`: the PayFlow dispute id and
  its merchant, written in the transaction that creates the dispute, on condition that it is
  new: two reports of one dispute racing each other make one dispute, and reconciliation finds
  a provider's dispute in one read.
"""

from __future__ import annotations

from typing import Any

from chalicelib.dal.dynamo import WriteBatch, from_attrs, to_attrs


class DisputeRefs:
    """Provider dispute references -> PayFlow disputes."""

    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name

    @staticmethod
    def _key(provider: str, reference: str) -> dict[str, Any]:
        return to_attrs({"pk": f"dispute_ref#{provider}#{reference}", "sk": "dispute_ref"})

    def find(self, provider: str, reference: str) -> tuple[str, str] | None:
        """(merchant id, dispute id) of the provider's dispute, or None."""
        response = self._client.get_item(
            TableName=self._table, Key=self._key(provider, reference), ConsistentRead=True
        )
        item = response.get("Item")
        if not item:
            return None
        values = from_attrs(item)
        return str(values["merchant_id"]), str(values["dispute_id"])

    def add(
        self, batch: WriteBatch, provider: str, reference: str, merchant_id: str, dispute_id: str
    ) -> None:
        """Add the reference to `batch`; the batch fails if the reference is known already."""
        batch.add(
            f"dispute_ref:{provider}:{reference}",
            {
                "Put": {
                    "TableName": self._table,
                    "Item": {
                        **self._key(provider, reference),
                        **to_attrs({"merchant_id": merchant_id, "dispute_id": dispute_id}),
                    },
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            },
        )
