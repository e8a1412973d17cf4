"""The payments table: every merchant-owned object (PaymentIntents, events, ...) by id.

Item layout (one table, `pk`/`sk` plus one index):
- `pk` = object id (`pi_...`, `evt_...`), `sk` = kind (`payment_intent`, `event`);
- `gsi1pk` = `<merchant id>#<kind>`, `gsi1sk` = object id: ids sort by creation time, so the
  index lists one merchant's objects of one kind newest first;
- `merchant_id`, `version`, `status`/`type` at the top level for conditions and filters, and
  `data` holding the whole object (fields at their model's defaults left out), but for its
  PACKED field, kept compressed beside it.
Reads check `merchant_id`, so another merchant's id is indistinguishable from an unknown one.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from chalicelib.dal.dynamo import WriteBatch, batch_get, from_attrs, pack, paged, to_attrs, unpack

INDEX = "gsi1"
PACKED = {"event": "data_object", "bank_statement": "lines"}
"""Kind -> the field of its data stored compressed, as `<field>_z` (dynamo.pack). An event's
snapshot of its object is most of the event (1.1-1.8 KB as JSON, about 0.1 KB packed with
the preset dictionary), its item is written in a transaction at 2 write units per KB, and
nothing filters on it. A bank statement's entries are its size (up to 5,000: about 1 MB as
JSON, far over an item's 400 KB, and about a tenth of that packed)."""


def object_data(values: dict[str, Any]) -> dict[str, Any]:
    """The object an item holds (its values, from_attrs'd), its packed field unpacked."""
    data: dict[str, Any] = values["data"]
    field = PACKED.get(values.get("kind", ""))
    if field is not None and f"{field}_z" in values:
        return {**data, field: unpack(values[f"{field}_z"])}
    return data


INDEXED_BY = {"connector": "gsi2", "payment_method_type": "gsi3"}
"""Top-level attribute -> the index that lists one merchant's objects of one kind with that
attribute's value, newest first: `<index>pk` = `<merchant>#<kind>#<value>`, `<index>sk` = the
id. Only PaymentIntents carry these attributes (`PaymentIntent.attributes`), and only once
routing or a payment method gave them a value. `gsi2` is overloaded: it also holds events by
their owner (`<merchant>#<owner id>`; an id never holds `#`, so the partitions never meet), and
overloading it rather than adding a third index keeps this change deployable as one stack
update (DynamoDB adds one index per table update). `gsi3` is overloaded too: it holds an
endpoint's webhook deliveries while they are pending or failed (dal/webhooks.py OPEN_INDEX).
A filtered page is one Query of `limit + 1` items whatever the merchant's total, as the plain
list is; the price is one index write per attribute each time such a PaymentIntent is
written."""


RELATED_INDEX = "gsi2"
"""Events by the object whose story they tell: `gsi2pk` = `<merchant>#<owner id>`, where the
owner is the object's PaymentIntent when it has one (a charge's, a refund's), else the object."""


class Stored(Protocol):
    id: str
    merchant_id: str

    def model_dump(self, *, mode: str = ..., exclude_defaults: bool = ...) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Page:
    """One page of a newest-first list."""

    items: list[dict[str, Any]]
    has_more: bool


class ObjectStore:
    """Reads and conditional writes of merchant-owned objects in the payments table."""

    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def get(self, kind: str, merchant_id: str, object_id: str) -> dict[str, Any] | None:
        """The object's data, or None when it does not exist or belongs to someone else."""
        response = self._client.get_item(
            TableName=self._table,
            Key=to_attrs({"pk": object_id, "sk": kind}),
            ConsistentRead=True,
        )
        item = response.get("Item")
        if not item:
            return None
        values = from_attrs(item)
        if values.get("merchant_id") != merchant_id:
            return None
        return object_data(values)

    def list(
        self,
        kind: str,
        merchant_id: str,
        *,
        limit: int,
        starting_after: str | None = None,
        ending_before: str | None = None,
        filters: dict[str, str] | None = None,
        indexed: tuple[str, str] | None = None,
    ) -> Page:
        """A page of objects newest first, Stripe's cursor semantics (ids are time-ordered).

        `filters` match stored attributes exactly after the read (DynamoDB filters what a Query
        read, so a rare match costs reading past the others); `indexed` = (attribute, value),
        an attribute of INDEXED_BY, reads only the objects with that value through its index.
        """
        condition = "gsi1pk = :pk"
        values: dict[str, Any] = {":pk": f"{merchant_id}#{kind}"}
        index, sort = INDEX, "gsi1sk"
        if indexed is not None:
            name, value = indexed
            index = INDEXED_BY[name]
            condition = f"{index}pk = :pk"
            sort = f"{index}sk"
            values[":pk"] = f"{merchant_id}#{kind}#{value}"
        newest_first = ending_before is None
        if starting_after:
            condition += f" AND {sort} < :cursor"
            values[":cursor"] = starting_after
        elif ending_before:
            condition += f" AND {sort} > :cursor"
            values[":cursor"] = ending_before
        params: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": index,
            "KeyConditionExpression": condition,
            "ScanIndexForward": not newest_first,
        }
        if filters:
            names = {f"#f{i}": name for i, name in enumerate(filters)}
            params["FilterExpression"] = " AND ".join(f"#f{i} = :f{i}" for i in range(len(names)))
            params["ExpressionAttributeNames"] = names
            values.update({f":f{i}": value for i, value in enumerate(filters.values())})
        params["ExpressionAttributeValues"] = to_attrs(values)
        items: list[dict[str, Any]] = []
        # With a filter DynamoDB may return short pages: keep reading until limit + 1 or the end.
        while len(items) <= limit:
            params["Limit"] = limit + 1 - len(items) if not filters else max(limit + 1, 25)
            response = self._client.query(**params)
            items.extend(object_data(from_attrs(item)) for item in response.get("Items", []))
            if "LastEvaluatedKey" not in response:
                break
            params["ExclusiveStartKey"] = response["LastEvaluatedKey"]
        has_more = len(items) > limit
        items = items[:limit]
        if not newest_first:
            items.reverse()
        return Page(items=items, has_more=has_more)

    def put_new(self, batch: WriteBatch, kind: str, obj: Stored, **top_level: Any) -> None:
        """Add the creation of `obj` to `batch`; fails if the id exists already."""
        batch.add(
            f"{kind}:{obj.id}",
            {
                "Put": {
                    "TableName": self._table,
                    "Item": self._item(kind, obj, top_level),
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            },
        )

    def put_version(
        self, batch: WriteBatch, kind: str, obj: Stored, expected_version: int, **top_level: Any
    ) -> None:
        """Add a replacement of `obj` to `batch`, on condition nobody wrote it since
        `expected_version` was read."""
        batch.add(
            f"{kind}:{obj.id}",
            {
                "Put": {
                    "TableName": self._table,
                    "Item": self._item(kind, obj, top_level),
                    "ConditionExpression": "version = :expected",
                    "ExpressionAttributeValues": to_attrs({":expected": expected_version}),
                }
            },
        )

    def _item(self, kind: str, obj: Stored, top_level: dict[str, Any]) -> dict[str, Any]:
        # Fields at their defaults are left out (readers validate the model, which restores
        # them): a new PaymentIntent is 0.3 KB stored instead of 1.05 KB, and its writes,
        # billed per KB and doubled in a transaction, half as dear.
        data = obj.model_dump(mode="json", exclude_defaults=True)
        attributes = _index_attributes(kind, obj, data, top_level)
        field = PACKED.get(kind)
        if field is not None and data.get(field) is not None:
            attributes[f"{field}_z"] = pack(data.pop(field))
        return to_attrs({**attributes, "data": data})

    def items_of(
        self,
        kind: str,
        merchant_id: str,
        *,
        after: str | None = None,
        page_size: int | None = None,
    ) -> Iterator[dict[str, Any]]:
        """The merchant's stored items of `kind` as plain values, whole, oldest first, from
        after the object `after` (an id), read `page_size` a Query (DynamoDB's 1 MB pages when
        None). For walks over stored items (reconciliation, index backfills), not requests."""
        params: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": INDEX,
            "KeyConditionExpression": "gsi1pk = :pk",
            "ExpressionAttributeValues": to_attrs({":pk": f"{merchant_id}#{kind}"}),
        }
        if page_size is not None:
            params["Limit"] = page_size
        if after is not None:
            params["ExclusiveStartKey"] = to_attrs(
                {"pk": after, "sk": kind, "gsi1pk": f"{merchant_id}#{kind}", "gsi1sk": after}
            )
        yield from paged(self._client.query, params)

    def set_index_attributes(
        self, kind: str, values: dict[str, Any], changed: dict[str, Any], removed: Iterable[str]
    ) -> bool:
        """Write only an item's index attributes (`changed` set, `removed` removed), on
        condition that its version is still the one `values` holds: the object itself, its
        version and its data are untouched. False when another write came first (that write
        stored fresh index attributes of its own)."""
        names: dict[str, str] = {"#version": "version"}
        sets = []
        for i, name in enumerate(changed):
            names[f"#s{i}"] = name
            sets.append(f"#s{i} = :s{i}")
        removes = []
        for i, name in enumerate(removed):
            names[f"#r{i}"] = name
            removes.append(f"#r{i}")
        expression = " ".join(
            part
            for part in (
                "SET " + ", ".join(sets) if sets else "",
                "REMOVE " + ", ".join(removes) if removes else "",
            )
            if part
        )
        attribute_values: dict[str, Any] = {
            f":s{i}": value for i, value in enumerate(changed.values())
        }
        # An item gone since the read is never created again by this update.
        condition = "attribute_exists(pk) AND attribute_not_exists(#version)"
        if values.get("version") is not None:
            condition = "attribute_exists(pk) AND #version = :version"
            attribute_values[":version"] = values["version"]
        params: dict[str, Any] = {
            "TableName": self._table,
            "Key": to_attrs({"pk": values["pk"], "sk": kind}),
            "UpdateExpression": expression,
            "ConditionExpression": condition,
            "ExpressionAttributeNames": names,
        }
        if attribute_values:
            params["ExpressionAttributeValues"] = to_attrs(attribute_values)
        try:
            self._client.update_item(**params)
        except self._client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def get_many(
        self, kind: str, merchant_id: str, object_ids: Iterable[str]
    ) -> dict[str, dict[str, Any]]:
        """The merchant's objects of `kind` among `object_ids`, by id (one batch read per 100)."""
        keys = [{"pk": object_id, "sk": kind} for object_id in sorted(set(object_ids))]
        found = batch_get(self._client, self._table, keys)
        return {
            pk: object_data(item)
            for (pk, _), item in found.items()
            if item.get("merchant_id") == merchant_id
        }

    def all_of(self, kind: str, merchant_id: str) -> Iterator[dict[str, Any]]:
        """Every object of `kind` the merchant has (a reconciliation-sized read, oldest first)."""
        for item in self.items_of(kind, merchant_id):
            yield object_data(item)

    def owner(self, kind: str, object_id: str) -> str | None:
        """The merchant an object belongs to, for callers that know only its id (a provider's
        webhook names a PaymentIntent, not its merchant); None when there is no such object."""
        response = self._client.get_item(
            TableName=self._table,
            Key=to_attrs({"pk": object_id, "sk": kind}),
            ProjectionExpression="merchant_id",
            ConsistentRead=True,
        )
        item = response.get("Item")
        return str(from_attrs(item)["merchant_id"]) if item else None


def index_attributes(kind: str, obj: Stored, **top_level: Any) -> dict[str, Any]:
    """Every attribute a write of `obj` stores beside its data, as `put_new`/`put_version`
    store it: its keys, kind, merchant and version, `top_level` (the family's filter and
    condition attributes), the keys of INDEXED_BY's indexes and, for an event, of
    RELATED_INDEX. The one rule for both a write and a backfill of items stored before an
    index existed."""
    return _index_attributes(
        kind, obj, obj.model_dump(mode="json", exclude_defaults=True), top_level
    )


INDEX_KEYS = frozenset(
    {*INDEXED_BY, "object_id"}
    | {f"{index}{part}" for index in (*INDEXED_BY.values(), RELATED_INDEX) for part in ("pk", "sk")}
)
"""The attributes an item holds only for an index (or a filter that stands in for one): a
backfill removes those a fresh write would no longer store."""

KEY_ATTRIBUTES = frozenset({"pk", "sk", "version"})
"""What a backfill never writes: the item's key, and the version its condition reads."""


def _index_attributes(
    kind: str, obj: Stored, data: dict[str, Any], top_level: dict[str, Any]
) -> dict[str, Any]:
    if kind == "event":
        top_level = {**top_level, **related_keys(obj.merchant_id, obj.id, data)}
    else:
        for name, index in INDEXED_BY.items():
            if top_level.get(name):
                top_level = {
                    **top_level,
                    f"{index}pk": f"{obj.merchant_id}#{kind}#{top_level[name]}",
                    f"{index}sk": obj.id,
                }
    return {
        "pk": obj.id,
        "sk": kind,
        "gsi1pk": f"{obj.merchant_id}#{kind}",
        "gsi1sk": obj.id,
        "kind": kind,
        "merchant_id": obj.merchant_id,
        "version": getattr(obj, "version", 0),
        **{name: value for name, value in top_level.items() if value is not None},
    }


def related_keys(merchant_id: str, event_id: str, data: dict[str, Any]) -> dict[str, str]:
    """The RELATED_INDEX keys of an event, and its object's id at the top level (filters
    cannot read the packed snapshot); none when its object has no id."""
    obj = data.get("data_object") or {}
    owner = obj.get("payment_intent") or obj.get("id")
    if not isinstance(owner, str) or not owner:
        return {}
    keys = {"gsi2pk": f"{merchant_id}#{owner}", "gsi2sk": event_id}
    if isinstance(obj.get("id"), str) and obj["id"]:
        keys["object_id"] = obj["id"]
    return keys
