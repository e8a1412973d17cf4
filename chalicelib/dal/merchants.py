"""Merchants and their API keys, in the payments table.

- `pk` = `merchant#<id>`, `sk` = `merchant`: the merchant (`data`: id, name, created, deleted,
  rate limits).
- `pk` = `apikey#<sha256 of the secret>`, `sk` = `apikey`: one API key. Authentication is one
  GetItem by digest. `data` is the key's record (id, kind, created, expires_at, redacted);
  `gsi1pk` = `<merchant id>#api_key` lists a merchant's keys newest first on the shared index.
  A merchant holds any number of keys of each `kind` ("secret" today; "publishable" is the next
  kind): rolling adds one and gives the old one an expiry.
Secrets are never stored, only their digests.
"""

from __future__ import annotations

import hashlib
from typing import Any

from chalicelib.dal.dynamo import ConditionFailed, WriteBatch, commit, from_attrs, paged, to_attrs
from chalicelib.dal.objects import INDEX

KEYS = "api_key"
"""The kind under which keys are listed on the index."""
MAX_BATCH = 100
"""TransactWriteItems' limit: a merchant's keys are expired in batches of this size."""


def key_digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


class MerchantStore:
    """Creates merchants, resolves API keys, and rolls, expires and lists them."""

    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def create(self, merchant: dict[str, Any], keys: list[tuple[str, dict[str, Any]]]) -> bool:
        """Store `merchant` with its first keys, (secret, record) each, in one transaction;
        False when that merchant id exists already."""
        batch = WriteBatch()
        self._put_new(batch, f"merchant#{merchant['id']}", "merchant", {"data": merchant})
        for secret_key, key in keys:
            self._put_key(batch, merchant["id"], secret_key, key)
        try:
            commit(self._client, batch)
        except ConditionFailed:
            return False
        return True

    def key_for_secret(self, secret_key: str) -> dict[str, Any] | None:
        """The record of the key whose secret this is, with its `merchant`; None if unknown.

        Keys written before key records existed have only `merchant_id`: they read as a
        secret key without id or expiry.
        """
        response = self._client.get_item(
            TableName=self._table,
            Key=to_attrs({"pk": f"apikey#{key_digest(secret_key)}", "sk": "apikey"}),
        )
        item = response.get("Item")
        if not item:
            return None
        values = from_attrs(item)
        record: dict[str, Any] = values.get("data") or {
            "id": None,
            "kind": values.get("kind", "secret"),
            "expires_at": None,
        }
        return {**record, "merchant": str(values["merchant_id"])}

    def get(self, merchant_id: str) -> dict[str, Any] | None:
        response = self._client.get_item(
            TableName=self._table,
            Key=to_attrs({"pk": f"merchant#{merchant_id}", "sk": "merchant"}),
            ConsistentRead=True,
        )
        item = response.get("Item")
        if not item:
            return None
        data: dict[str, Any] = from_attrs(item)["data"]
        return data

    def ids(self) -> list[str]:
        """Every merchant's id: a scan of the table, for once-a-day jobs only."""
        params: dict[str, Any] = {
            "TableName": self._table,
            "FilterExpression": "sk = :merchant",
            "ProjectionExpression": "pk",
            "ExpressionAttributeValues": to_attrs({":merchant": "merchant"}),
        }
        return sorted(
            str(item["pk"]).removeprefix("merchant#")
            for item in paged(self._client.scan, params)
            if str(item["pk"]).startswith("merchant#")
        )

    def keys(self, merchant_id: str) -> list[dict[str, Any]]:
        """Every key record of the merchant, newest first, with the digest it is stored by."""
        params: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": INDEX,
            "KeyConditionExpression": "gsi1pk = :pk",
            "ExpressionAttributeValues": to_attrs({":pk": f"{merchant_id}#{KEYS}"}),
            "ScanIndexForward": False,
        }
        found: list[dict[str, Any]] = []
        while True:
            response = self._client.query(**params)
            for item in response.get("Items", []):
                values = from_attrs(item)
                found.append({**values["data"], "_pk": values["pk"]})
            if "LastEvaluatedKey" not in response:
                return found
            params["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def roll(
        self,
        merchant_id: str,
        old: dict[str, Any],
        expires_at: int,
        secret_key: str,
        new: dict[str, Any],
    ) -> None:
        """In one transaction: add the `new` key and give the `old` one its expiry (never a
        later one than it already has)."""
        batch = WriteBatch()
        self._put_key(batch, merchant_id, secret_key, new)
        if _expires_later(old, expires_at):
            self._expire(batch, merchant_id, old, expires_at)
        commit(self._client, batch)

    def expire(self, merchant_id: str, keys: list[dict[str, Any]], at: int) -> None:
        """Make every one of `keys` stop working at `at` (epoch seconds) at the latest."""
        keys = [key for key in keys if _expires_later(key, at)]
        for start in range(0, len(keys), MAX_BATCH):
            batch = WriteBatch()
            for key in keys[start : start + MAX_BATCH]:
                self._expire(batch, merchant_id, key, at)
            commit(self._client, batch)

    def mark_deleted(self, merchant_id: str, at: int) -> None:
        """Flag the merchant deleted (its data stays; its keys are expired by `expire`)."""
        self._set(merchant_id, {"deleted": True, "deleted_at": at})

    def set_rate_limits(self, merchant_id: str, limits: dict[str, int] | None) -> None:
        """Store the merchant's own rate limits (None: back to the defaults)."""
        self._set(merchant_id, {"rate_limits": limits})

    def _set(self, merchant_id: str, fields: dict[str, Any]) -> None:
        # Fields of an existing merchant's `data`, None included (stored as NULL).
        names = {f"#f{i}": name for i, name in enumerate(fields)}
        values = {f":v{i}": _serialized(value) for i, value in enumerate(fields.values())}
        self._client.update_item(
            TableName=self._table,
            Key=to_attrs({"pk": f"merchant#{merchant_id}", "sk": "merchant"}),
            UpdateExpression="SET " + ", ".join(f"#d.#f{i} = :v{i}" for i in range(len(fields))),
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeNames={"#d": "data", **names},
            ExpressionAttributeValues=values,
        )

    def _put_new(self, batch: WriteBatch, pk: str, sk: str, values: dict[str, Any]) -> None:
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

    def _put_key(
        self, batch: WriteBatch, merchant_id: str, secret_key: str, key: dict[str, Any]
    ) -> None:
        self._put_new(
            batch,
            f"apikey#{key_digest(secret_key)}",
            "apikey",
            {
                "merchant_id": merchant_id,
                "kind": key["kind"],
                "gsi1pk": f"{merchant_id}#{KEYS}",
                "gsi1sk": key["id"],
                "data": key,
            },
        )

    def _expire(self, batch: WriteBatch, merchant_id: str, key: dict[str, Any], at: int) -> None:
        batch.add(
            f"expire:{key['id']}",
            {
                "Update": {
                    "TableName": self._table,
                    "Key": to_attrs({"pk": key["_pk"], "sk": "apikey"}),
                    "UpdateExpression": "SET #d.expires_at = :at",
                    # Only ever sooner: rolling twice cannot extend the old key's life.
                    "ConditionExpression": _SOONER,
                    "ExpressionAttributeNames": {"#d": "data"},
                    "ExpressionAttributeValues": to_attrs(
                        {":at": at, ":m": merchant_id, ":null": "NULL"}
                    ),
                }
            },
        )


_SOONER = (
    "merchant_id = :m AND (attribute_not_exists(#d.expires_at)"
    " OR attribute_type(#d.expires_at, :null) OR #d.expires_at > :at)"
)


def _expires_later(key: dict[str, Any], at: int) -> bool:
    expires_at = key.get("expires_at")
    return expires_at is None or int(expires_at) > at


def _serialized(value: Any) -> dict[str, Any]:
    return to_attrs({"v": value})["v"] if value is not None else {"NULL": True}
