"""The ledger in the payments table: journal entries, materialized balances, and the merchant's
balance transactions, all written into the caller's atomic batch.

- `je_...` / `journal_entry`: an entry with its postings (condition: new, so a deterministic id
  is posted once). An entry that moves the merchant's balance is also its balance transaction
  (`txn_` + the same suffix), which is derived from it on read: the item carries the
  transaction's `status`, `type` and `source` at the top level, and `gsi1` lists it under
  `<merchant>#balance_transaction` newest first (`gsi1sk` = zero-padded creation time + id);
  other entries are listed under `<merchant>#journal_entry`.
- `balance#<merchant>` / `<currency>`: one attribute per account, moved with ADD in the same
  transaction as the entry (materialized totals).
- `txn_...` / `balance_transaction`: balance transactions stored apart, as they were before
  2026-12-01 (one more item per entry); still read, never written.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from chalicelib.dal.dynamo import WriteBatch, from_attrs, paged, to_attrs
from chalicelib.dal.objects import INDEX, Page
from chalicelib.domain.ledger import JournalEntry, balance_transaction


class LedgerStore:
    """Writes entries atomically with the state change that caused them; reads balances."""

    def __init__(
        self, client: Any, table_name: str, clock: Callable[[], float] = time.time
    ) -> None:
        self._client = client
        self._table = table_name
        self._clock = clock

    def add(self, batch: WriteBatch, *entries: JournalEntry, status: str = "available") -> None:
        """Add `entries` (one merchant and currency), their balance updates (folded into one:
        a transaction touches an item once); those that move the merchant's balance are the
        balance transactions the merchant sees, in `status`."""
        changes: dict[str, int] = defaultdict(int)
        stamp = int(self._clock() * 1000)
        for position, entry in enumerate(entries):
            if entry.created_ms is None:
                entry = entry.model_copy(update={"created_ms": stamp + position})
            batch.add(
                f"ledger:{entry.id}",
                {
                    "Put": {
                        "TableName": self._table,
                        "Item": to_attrs(_entry_item(entry, status)),
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                },
            )
            for account, amount in entry.balance_changes().items():
                changes[account] += amount
        moved = {account: amount for account, amount in changes.items() if amount}
        if not moved:
            return
        first = entries[0]
        names = {f"#a{i}": account for i, account in enumerate(moved)}
        values = {f":v{i}": amount for i, amount in enumerate(moved.values())}
        batch.add(
            f"balance:{first.merchant_id}:{first.currency}",
            {
                "Update": {
                    "TableName": self._table,
                    "Key": to_attrs({"pk": f"balance#{first.merchant_id}", "sk": first.currency}),
                    "UpdateExpression": "ADD "
                    + ", ".join(f"{n} {v}" for n, v in zip(names, values, strict=True)),
                    "ExpressionAttributeNames": names,
                    "ExpressionAttributeValues": to_attrs(values),
                }
            },
        )

    def set_transaction_status(self, batch: WriteBatch, entry: JournalEntry, status: str) -> None:
        """Move the balance transaction of a posted `entry` to `status` (pending funds
        released)."""
        batch.add(
            f"txn:{entry.id}",
            {
                "Update": {
                    "TableName": self._table,
                    "Key": to_attrs({"pk": entry.id, "sk": _ENTRY}),
                    "UpdateExpression": "SET #s = :s",
                    "ConditionExpression": "attribute_exists(pk)",
                    "ExpressionAttributeNames": {"#s": "status"},
                    "ExpressionAttributeValues": to_attrs({":s": status}),
                }
            },
        )

    def transaction(self, merchant_id: str, txn_id: str) -> dict[str, Any] | None:
        item = self._transaction_item(txn_id)
        return _transaction(item) if item and item.get("merchant_id") == merchant_id else None

    def _transaction_item(self, txn_id: str) -> dict[str, Any] | None:
        if not txn_id.startswith("txn_"):
            return None
        response = self._client.get_item(
            TableName=self._table,
            Key=to_attrs({"pk": "je_" + txn_id.removeprefix("txn_"), "sk": _ENTRY}),
        )
        item = from_attrs(response.get("Item") or {})
        if item.get("status"):
            return item
        stored_apart = self._client.get_item(  # written before entries carried their view
            TableName=self._table, Key=to_attrs({"pk": txn_id, "sk": _TRANSACTION})
        ).get("Item")
        return from_attrs(stored_apart) if stored_apart else None

    def entry(self, entry_id: str) -> JournalEntry | None:
        response = self._client.get_item(
            TableName=self._table,
            Key=to_attrs({"pk": entry_id, "sk": "journal_entry"}),
            ConsistentRead=True,
        )
        item = response.get("Item")
        return JournalEntry.model_validate(from_attrs(item)["data"]) if item else None

    def balances(self, merchant_id: str) -> dict[str, dict[str, int]]:
        """currency -> account -> materialized total, for one merchant."""
        response = self._client.query(
            TableName=self._table,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues=to_attrs({":pk": f"balance#{merchant_id}"}),
            ConsistentRead=True,
        )
        result: dict[str, dict[str, int]] = {}
        for item in map(from_attrs, response.get("Items", [])):
            result[item["sk"]] = {k: int(v) for k, v in item.items() if k not in ("pk", "sk")}
        return result

    def transactions(
        self,
        merchant_id: str,
        *,
        limit: int,
        starting_after: str | None,
        ending_before: str | None,
        type: str | None,
        source: str | None,
    ) -> Page:
        """Balance transactions newest first, with Stripe's cursors and filters."""
        cursor_id = starting_after or ending_before
        condition = "gsi1pk = :pk"
        values: dict[str, Any] = {":pk": f"{merchant_id}#balance_transaction"}
        if cursor_id:
            cursor = self._transaction_item(cursor_id)
            if cursor and cursor.get("merchant_id") == merchant_id:
                condition += " AND gsi1sk " + ("<" if starting_after else ">") + " :cursor"
                values[":cursor"] = cursor["gsi1sk"]
        filters = {k: v for k, v in (("type", type), ("source", source)) if v}
        params: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": INDEX,
            "KeyConditionExpression": condition,
            "ScanIndexForward": ending_before is not None and starting_after is None,
        }
        if filters:
            params["FilterExpression"] = " AND ".join(f"#f{i} = :f{i}" for i in range(len(filters)))
            params["ExpressionAttributeNames"] = {f"#f{i}": k for i, k in enumerate(filters)}
            values.update({f":f{i}": v for i, v in enumerate(filters.values())})
        params["ExpressionAttributeValues"] = to_attrs(values)
        items: list[dict[str, Any]] = []
        while len(items) <= limit:
            response = self._client.query(**params)
            items.extend(_transaction(from_attrs(i)) for i in response.get("Items", []))
            if "LastEvaluatedKey" not in response:
                break
            params["ExclusiveStartKey"] = response["LastEvaluatedKey"]
        has_more = len(items) > limit
        items = items[:limit]
        if not params["ScanIndexForward"]:
            return Page(items=items, has_more=has_more)
        return Page(items=list(reversed(items)), has_more=has_more)

    def pending_charges(self, merchant_id: str | None) -> list[JournalEntry]:
        """Charge entries whose funds are still pending (of every merchant for None)."""
        values = {":charge": "charge", ":pending": "pending"}
        params: dict[str, Any] = {
            "TableName": self._table,
            "FilterExpression": "#t = :charge AND #s = :pending",
            "ExpressionAttributeNames": {"#t": "type", "#s": "status"},
        }
        if merchant_id is not None:
            params.update(IndexName=INDEX, KeyConditionExpression="gsi1pk = :pk")
            values[":pk"] = f"{merchant_id}#balance_transaction"
        params["ExpressionAttributeValues"] = to_attrs(values)
        entries = []
        for item in paged(self._client.scan if merchant_id is None else self._client.query, params):
            if item["sk"] == _ENTRY:
                entries.append(JournalEntry.model_validate(item["data"]))
            elif (entry := self.entry(item["entry_id"])) is not None:
                entries.append(entry)
        return entries

    def of_merchant(
        self, merchant_id: str
    ) -> tuple[list[JournalEntry], dict[tuple[str, str, str], int]]:
        """One merchant's journal entries and materialized balances."""
        entries: list[JournalEntry] = []
        for listing in (_ENTRY, _TRANSACTION):  # an entry is listed under one of the two
            params: dict[str, Any] = {
                "TableName": self._table,
                "IndexName": INDEX,
                "KeyConditionExpression": "gsi1pk = :pk",
                "ExpressionAttributeValues": to_attrs({":pk": f"{merchant_id}#{listing}"}),
            }
            entries.extend(
                JournalEntry.model_validate(i["data"])
                for i in paged(self._client.query, params)
                if i["sk"] == _ENTRY
            )
        balances = {
            (merchant_id, currency, account): amount
            for currency, accounts in self.balances(merchant_id).items()
            for account, amount in accounts.items()
        }
        return entries, balances

    def everything(self) -> tuple[list[JournalEntry], dict[tuple[str, str, str], int]]:
        """Every journal entry and every materialized balance (a check-sized scan)."""
        entries: list[JournalEntry] = []
        balances: dict[tuple[str, str, str], int] = {}
        params: dict[str, Any] = {"TableName": self._table, "ConsistentRead": True}
        while True:
            response = self._client.scan(**params)
            for item in map(from_attrs, response.get("Items", [])):
                if item.get("sk") == "journal_entry":
                    entries.append(JournalEntry.model_validate(item["data"]))
                elif str(item.get("pk", "")).startswith("balance#"):
                    merchant = item["pk"].removeprefix("balance#")
                    for account, amount in item.items():
                        if account not in ("pk", "sk"):
                            balances[(merchant, item["sk"], account)] = int(amount)
            if "LastEvaluatedKey" not in response:
                return entries, balances
            params["ExclusiveStartKey"] = response["LastEvaluatedKey"]


_ENTRY = "journal_entry"
_TRANSACTION = "balance_transaction"


def _entry_item(entry: JournalEntry, status: str) -> dict[str, Any]:
    item: dict[str, Any] = {
        "pk": entry.id,
        "sk": _ENTRY,
        "gsi1pk": f"{entry.merchant_id}#{_ENTRY}",
        "gsi1sk": entry.id,
        "merchant_id": entry.merchant_id,
        "data": entry.model_dump(mode="json"),
    }
    if entry.merchant_effect:
        txn = balance_transaction(entry, status)
        item.update(
            {
                "gsi1pk": f"{entry.merchant_id}#{_TRANSACTION}",
                "gsi1sk": f"{entry.created_ms or entry.created * 1000:013d}#{txn['id']}",
                "type": txn["type"],
                "source": txn["source"],
                "status": status,
            }
        )
    return item


def _transaction(item: dict[str, Any]) -> dict[str, Any]:
    """The balance transaction an item holds: derived from its entry, or stored apart."""
    if item["sk"] == _ENTRY:
        return balance_transaction(JournalEntry.model_validate(item["data"]), item["status"])
    return dict(item["data"])
