"""Which of a merchant's items of the payments table were written since a moment, read from the
table's stream rather than by scanning the table.

A Scan reads the whole session's table (thousands of items, each through moto's serializer) to
find one merchant's few; the stream lists every write (insert, modify, remove) once, in order, so
reading it from a position on costs what was written since. It is also the stricter question:
a count of the merchant's items misses a write that changes an item without adding one.
"""

from __future__ import annotations

import json
from typing import Any

from chalicelib.container import services


def _owned_by(image: dict[str, Any], merchant_id: str) -> bool:
    """Whether an item image is the merchant's: its `merchant_id`, or a key naming it
    (`merchant#<id>`, `routing#<id>`, `balance#<id>` carry no `merchant_id` attribute)."""
    if image.get("merchant_id", {}).get("S") == merchant_id:
        return True
    return str(image.get("pk", {}).get("S", "")).endswith(f"#{merchant_id}")


class TableWrites:
    """The payments table's stream from the moment of construction on."""

    def __init__(self, sandbox: Any) -> None:
        self._table = services().settings.payments_table
        self._dynamodb = services().dynamodb
        self._streams = sandbox.aws.client("dynamodbstreams")
        self._arn = self._dynamodb.describe_table(TableName=self._table)["Table"]["LatestStreamArn"]
        # Shards that exist now are read from their end; any shard opened later from its start.
        self._iterators: dict[str, str] = {
            shard_id: self._iterator(shard_id, "LATEST") for shard_id in self._shards()
        }

    def _shards(self) -> list[str]:
        description = self._streams.describe_stream(StreamArn=self._arn)["StreamDescription"]
        return [shard["ShardId"] for shard in description["Shards"]]

    def _iterator(self, shard_id: str, kind: str) -> str:
        return str(
            self._streams.get_shard_iterator(
                StreamArn=self._arn, ShardId=shard_id, ShardIteratorType=kind
            )["ShardIterator"]
        )

    def records(self) -> list[dict[str, Any]]:
        """Every stream record written since the last call (or since construction)."""
        for shard_id in self._shards():
            if shard_id not in self._iterators:
                self._iterators[shard_id] = self._iterator(shard_id, "TRIM_HORIZON")
        found: list[dict[str, Any]] = []
        for shard_id, iterator in list(self._iterators.items()):
            while iterator:
                page = self._streams.get_records(ShardIterator=iterator, Limit=1000)
                found.extend(page["Records"])
                following = page.get("NextShardIterator")
                if not page["Records"] or not following:
                    # An open shard has nothing more yet: go on from here next time.
                    self._iterators[shard_id] = following or iterator
                    break
                iterator = following
        return found

    def of_merchant(self, merchant_id: str) -> list[dict[str, Any]]:
        """The records since the last call whose old or new image is one of the merchant's."""
        return [
            record
            for record in self.records()
            if any(
                _owned_by(record["dynamodb"].get(image, {}), merchant_id)
                for image in ("NewImage", "OldImage")
            )
        ]

    def stored_items(self, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The items the records wrote, as the table holds them now (removed ones are gone)."""
        keys = {json.dumps(r["dynamodb"]["Keys"], sort_keys=True) for r in records}
        wanted = [json.loads(key) for key in sorted(keys)]
        items: list[dict[str, Any]] = []
        for start in range(0, len(wanted), 100):
            request = {self._table: {"Keys": wanted[start : start + 100], "ConsistentRead": True}}
            while request:
                answer = self._dynamodb.batch_get_item(RequestItems=request)
                items.extend(answer["Responses"].get(self._table, []))
                request = answer.get("UnprocessedKeys") or {}
        return items
