"""Merchants and their API keys, in the payments table.

- `pk` = `merchant#<id>`, `sk` = `merchant`: the merchant (id, name, created).
- `pk` = `apikey#<sha256 of the secret>`, `sk` = `apikey`: which merchant a key belongs to.
Secrets are never stored, only their digests.
"""

from __future__ import annotations

import hashlib
from typing import Any

from chalicelib.dal.dynamo import ConditionFailed, WriteBatch, commit, from_attrs, to_attrs


def key_digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class MerchantStore:
    """Creates merchants and resolves API keys to merchant ids."""

    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def create(self, merchant: dict[str, Any], secret_key: str) -> bool:
        """Store `merchant` with its key; False when that merchant id exists already."""
        batch = WriteBatch()
        for pk, sk, values in (
            (f"merchant#{merchant['id']}", "merchant", {"data": merchant}),
            (
                f"apikey#{key_digest(secret_key)}",
                "apikey",
                {"merchant_id": merchant["id"], "kind": "secret"},
            ),
        ):
            batch.add(
                pk,
                {
                    "Put": {
                        "TableName": self._table,
                        "Item": to_attrs({"pk": pk, "sk": sk, **values}),
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                },
            )
        try:
            commit(self._client, batch)
        except ConditionFailed:
            return False
        return True

    def merchant_for_key(self, secret_key: str) -> str | None:
        """The merchant id a secret key belongs to, or None."""
        response = self._client.get_item(
            TableName=self._table,
            Key=to_attrs({"pk": f"apikey#{key_digest(secret_key)}", "sk": "apikey"}),
        )
        item = response.get("Item")
        return str(from_attrs(item)["merchant_id"]) if item else None

    def get(self, merchant_id: str) -> dict[str, Any] | None:
        response = self._client.get_item(
            TableName=self._table,
            Key=to_attrs({"pk": f"merchant#{merchant_id}", "sk": "merchant"}),
        )
        item = response.get("Item")
        if not item:
            return None
        data: dict[str, Any] = from_attrs(item)["data"]
        return data
