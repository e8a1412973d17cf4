"""The items of each global or local secondary index partition, kept as moto writes them.

moto keeps a table's items by primary key only: a Query on an index tests every item of the
table. With a chaos run's tens of thousands of items, listing one endpoint's deliveries took
a Query per 100 deliveries, each testing every item, and the listing outlasted its 30 s
timeout. `IndexPartitions` maps each index's partition key value to its items, built the first
time an index is queried and then kept current by the backend's item writes:

- PutItem, UpdateItem and DeleteItem (which TransactWriteItems, BatchWriteItem and the
  persistence journal's replay go through) refresh the item they name, after the write;
- anything that writes around them (PartiQL, a table or index created, changed or deleted)
  drops what was kept for the table, rebuilt at the next Query; so does a table whose items
  were replaced wholesale (a snapshot being written swaps them out and back).

A partition a Query pages through is also kept in moto's order (`SortedPartition`), and the
same writes move an item within it, so that a page starts by bisection and reads only its own
items, however often the table is written between pages. A chaos run's final check pages
through 140,000 deliveries while webhook retries still write: each page had sorted its whole
partition again.

The map only narrows moto's candidates: moto's own Query still tests each one, so an item kept
in a partition it has left is never answered. The backend's requests are serialized
(`aws_server.OneAtATime`); the lock here covers in-process use.
"""

from __future__ import annotations

import bisect
import functools
import threading
from collections.abc import Callable
from typing import Any

Key = tuple[Any, Any]
"""A primary key: (hash DynamoType, range DynamoType or None)."""

ITEM_WRITES = ("put_item", "update_item", "delete_item")
WHOLESALE = (
    "create_table",
    "delete_table",
    "update_table",
    "update_table_global_indexes",
    "execute_statement",
    "execute_transaction",
    "batch_execute_statement",
    "import_table",
    "restore_table_from_backup",
    "restore_table_to_point_in_time",
)


class SortedPartition:
    """One index partition's items in moto's order by `attrs` (the index's keys, then the
    table's: unique per item), with each one's sort key, kept in order as items come and go."""

    def __init__(self, attrs: tuple[str, ...], items: list[Any]) -> None:
        self.attrs = attrs
        self.items, self.keys = sorted_with_keys([i for i in items if self.holds(i)], attrs)
        self._key_of = {primary_key(i): k for i, k in zip(self.items, self.keys, strict=True)}
        """primary key -> its sort key when added: moto's UpdateItem changes items in place"""

    def holds(self, item: Any) -> bool:
        """Whether moto's Query of this partition matches `item`: it has every key."""
        return all(item.attrs.get(a) for a in self.attrs)

    def remove(self, primary: Key) -> None:
        """Take out the item with this primary key, if it is here."""
        key = self._key_of.pop(primary, None)
        if key is None:
            return
        at = bisect.bisect_left(self.keys, key)
        del self.keys[at], self.items[at]

    def add(self, primary: Key, item: Any) -> None:
        """Put `item` in its place, if moto's Query would match it."""
        if not self.holds(item):
            return
        key = sort_key(item, self.attrs)
        at = bisect.bisect_left(self.keys, key)
        self.keys.insert(at, key)
        self.items.insert(at, item)
        self._key_of[primary] = key


class _TableIndexes:
    def __init__(self, table: Any) -> None:
        self.items = table.items
        self.partitions: dict[str, dict[Any, dict[Key, Any]]] = {}
        """index name -> index partition key value -> primary key -> item"""
        self.placed: dict[str, dict[Key, Any]] = {}
        """index name -> primary key -> the partition key value it is kept under"""
        self.attributes: dict[str, str] = {}
        """index name -> its partition key attribute"""
        self.orders: dict[str, tuple[str, ...]] = {}
        """index name -> what moto sorts its Query's items by (learnt from moto's first sort)"""
        self.sorted: dict[tuple[str, Any], SortedPartition] = {}
        """(index name, partition key value) -> the partition in moto's order"""


class IndexPartitions:
    """Index partition -> items, per table (see the module's docstring)."""

    def __init__(self) -> None:
        self._tables: dict[int, tuple[Any, _TableIndexes]] = {}
        self._lock = threading.Lock()

    def learn_order(self, table: Any, index_name: str, attrs: tuple[str, ...]) -> None:
        """Remember that moto orders `index_name`'s items by `attrs` (which only a change of
        the table's or the index's keys, a WHOLESALE operation, can change)."""
        with self._lock:
            self._indexes(table).orders[index_name] = attrs

    def sorted_partition(
        self, table: Any, index_name: str, attribute: str, value: Any
    ) -> SortedPartition | None:
        """The partition of `index_name` under `value`, in moto's order; None until the order
        is learnt."""
        with self._lock:
            indexes = self._indexes(table)
            attrs = indexes.orders.get(index_name)
            if attrs is None:
                return None
            kept = indexes.sorted.get((index_name, value))
            if kept is None or kept.attrs != attrs:
                partitions = self._partitions(table, indexes, index_name, attribute)
                kept = SortedPartition(attrs, list(partitions.get(value, {}).values()))
                indexes.sorted[(index_name, value)] = kept
            return kept

    def candidates(self, table: Any, index_name: str, attribute: str, value: Any) -> list[Any]:
        """The items whose `attribute` (the index's partition key) equals `value`."""
        with self._lock:
            partitions = self._partitions(table, self._indexes(table), index_name, attribute)
            return list(partitions.get(value, {}).values())

    def refresh(self, table: Any, key: dict[str, Any]) -> None:
        """Put the item at `key` (DynamoDB JSON, the table's key attributes) where its index
        keys now place it, or nowhere when it is gone."""
        from moto.dynamodb.models.dynamo_type import DynamoType

        with self._lock:
            kept = self._tables.get(id(table))
            if kept is None or kept[0] is not table or not kept[1].partitions:
                return
            indexes = kept[1]
            if indexes.items is not table.items:
                del self._tables[id(table)]
                return
            hash_value = DynamoType(key[table.hash_key_attr])
            range_value = DynamoType(key[table.range_key_attr]) if table.range_key_attr else None
            bucket = table.items.get(hash_value)
            if table.range_key_attr:
                item = bucket.get(range_value) if bucket is not None else None
            else:
                item = bucket
            primary = (hash_value, range_value)
            for index_name, partitions in indexes.partitions.items():
                placed = indexes.placed[index_name]
                before = placed.pop(primary, None)
                if before is not None:
                    partitions[before].pop(primary, None)
                    if not partitions[before]:
                        del partitions[before]
                    ordered = indexes.sorted.get((index_name, before))
                    if ordered is not None:
                        ordered.remove(primary)
                attribute = indexes.attributes[index_name]
                value = None if item is None else item.attrs.get(attribute)
                if value is not None:
                    partitions.setdefault(value, {})[primary] = item
                    placed[primary] = value
                    ordered = indexes.sorted.get((index_name, value))
                    if ordered is not None:
                        ordered.add(primary, item)

    def forget(self) -> None:
        """Drop everything kept: rebuilt at the next Query of each index."""
        with self._lock:
            self._tables.clear()

    def _indexes(self, table: Any) -> _TableIndexes:
        kept = self._tables.get(id(table))
        if kept is None or kept[0] is not table or kept[1].items is not table.items:
            kept = self._tables[id(table)] = (table, _TableIndexes(table))
        return kept[1]

    @staticmethod
    def _partitions(
        table: Any, indexes: _TableIndexes, index_name: str, attribute: str
    ) -> dict[Any, dict[Key, Any]]:
        """The index's partitions, built from the table's items the first time."""
        kept = indexes.partitions.get(index_name)
        if kept is not None:
            return kept
        partitions: dict[Any, dict[Key, Any]] = {}
        placed: dict[Key, Any] = {}
        for item in all_items(table):
            value = item.attrs.get(attribute)
            if value is not None:
                primary = primary_key(item)
                partitions.setdefault(value, {})[primary] = item
                placed[primary] = value
        indexes.partitions[index_name] = partitions
        indexes.placed[index_name] = placed
        indexes.attributes[index_name] = attribute
        return partitions


def primary_key(item: Any) -> Key:
    """A moto item's primary key, as `IndexPartitions` keeps it."""
    return (item.hash_key, item.range_key)


def sort_key(item: Any, attrs: tuple[str, ...]) -> tuple[Any, ...]:
    """An item's place in moto's index order: its values of `attrs`, each converted once."""
    return tuple(item.attrs[a].cast_value for a in attrs)


def sorted_with_keys(
    items: list[Any], attrs: tuple[str, ...]
) -> tuple[list[Any], list[tuple[Any, ...]]]:
    """`items` in moto's index order by `attrs`, and each one's `sort_key`, computed once."""
    ordered = sorted(((sort_key(item, attrs), item) for item in items), key=_first)
    return [item for _, item in ordered], [key for key, _ in ordered]


def _first(pair: tuple[Any, Any]) -> Any:
    return pair[0]


def all_items(table: Any) -> list[Any]:
    """Every item of a moto table, unsorted."""
    if not table.range_key_attr:
        return list(table.items.values())
    return [item for bucket in table.items.values() for item in bucket.values()]


def index_schema(table: Any, index_name: str) -> list[dict[str, str]]:
    """The index's key schema (empty for an index moto does not know, which its own query
    then refuses)."""
    index = next((i for i in table.all_indexes() if i.name == index_name), None)
    return list(index.schema) if index is not None else []


def index_hash_attribute(table: Any, index_name: str) -> str | None:
    """The index's partition key attribute, when it is a single one (None otherwise, or for
    an index moto does not know)."""
    hashes = [k["AttributeName"] for k in index_schema(table, index_name) if k["KeyType"] == "HASH"]
    return hashes[0] if len(hashes) == 1 else None


def install(backend_class: Any, partitions: IndexPartitions) -> None:
    """Keep `partitions` current through `backend_class`'s (moto's DynamoDBBackend) writes."""
    for name in ITEM_WRITES:
        setattr(backend_class, name, _refreshing(getattr(backend_class, name), partitions))
    for name in WHOLESALE:
        setattr(backend_class, name, _forgetting(getattr(backend_class, name), partitions))


def _refreshing(write: Callable[..., Any], partitions: IndexPartitions) -> Callable[..., Any]:
    @functools.wraps(write)
    def written(
        self: Any, table_name: str, key_or_item: dict[str, Any], *args: Any, **kw: Any
    ) -> Any:
        try:
            return write(self, table_name, key_or_item, *args, **kw)
        finally:
            table = self.tables.get(table_name)
            if table is not None and _names_key(table, key_or_item):
                partitions.refresh(table, key_or_item)

    return written


def _names_key(table: Any, attributes: dict[str, Any]) -> bool:
    return table.hash_key_attr in attributes and (
        not table.range_key_attr or table.range_key_attr in attributes
    )


def _forgetting(change: Callable[..., Any], partitions: IndexPartitions) -> Callable[..., Any]:
    @functools.wraps(change)
    def changed(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return change(self, *args, **kwargs)
        finally:
            partitions.forget()

    return changed
