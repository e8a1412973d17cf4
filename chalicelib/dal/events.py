"""Events (the outbox) as the events API reads them, from the payments table.

Events are written by the services in the transaction of the change they announce (`pk` =
`evt_...`, `sk` = `event`, `type` at the top level, the Event in `data`). An event's webhook
deliveries share its partition (dal/webhooks.py), and its `pending_webhooks` is counted from
them on every read (deliveries not yet succeeded) rather than kept on the event: a read is one
Query either way, and the deliveries never rewrite the event's item. Listing uses `gsi1`
(`<merchant>#event`, newest first). Event ids start with their creation time in milliseconds, so
a `created` range becomes a key range on the index (widened by a second, since the id and the
`created` field come from two readings of the clock), and a filter on `data.created` makes it
exact.
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.concurrency import each_concurrently
from chalicelib.dal.dynamo import error_code, from_attrs, paged, to_attrs
from chalicelib.dal.objects import INDEX, RELATED_INDEX, ObjectStore, object_data
from chalicelib.dal.webhooks import DELIVERY
from chalicelib.domain.events import Event
from chalicelib.domain.ids import time_prefix
from chalicelib.domain.webhooks import DeliveryStatus

KIND = "event"


@dataclass(frozen=True)
class EventQuery:
    """Which of a merchant's events to list."""

    types: tuple[str, ...] = ()
    """Exact types, or `prefix.*` wildcards; empty means every type."""
    created_gte: int | None = None
    created_lte: int | None = None
    related_object: str | None = None
    """Only events about this object: its id, or the PaymentIntent it belongs to (a charge's or
    a refund's `payment_intent`). A filter, so bound it with `created_gte` to keep reads small."""


class EventStore:
    """Reads events; writing them is the services' business (in their own transactions)."""

    def __init__(self, client: Any, table_name: str, objects: ObjectStore) -> None:
        self._client = client
        self._table = table_name
        self._objects = objects

    def get(self, merchant_id: str, event_id: str) -> Event | None:
        event, _ = self.with_deliveries(event_id)
        return event if event is not None and event.merchant_id == merchant_id else None

    def with_deliveries(self, event_id: str) -> tuple[Event | None, list[dict[str, Any]]]:
        """An event (its pending_webhooks counted) and its deliveries' items, one Query."""
        items = self._partition(event_id)
        found = next((item for item in items if item["sk"] == KIND), None)
        deliveries = [item for item in items if item["sk"].startswith(f"{DELIVERY}#")]
        if found is None:
            return None, deliveries
        return _with_pending(object_data(found), _pending(deliveries)), deliveries

    def _partition(self, event_id: str) -> list[dict[str, Any]]:
        params: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": to_attrs({":pk": event_id}),
            "ConsistentRead": True,
        }
        return list(paged(self._client.query, params))

    def _pending_of(self, event_id: str) -> int:
        """How many of the event's deliveries have not succeeded yet (a counting Query)."""
        params: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
            "FilterExpression": "#status <> :succeeded",
            "ExpressionAttributeNames": {"#status": "status"},
            "ExpressionAttributeValues": to_attrs(
                {
                    ":pk": event_id,
                    ":prefix": f"{DELIVERY}#",
                    ":succeeded": DeliveryStatus.SUCCEEDED.value,
                }
            ),
            "Select": "COUNT",
            "ConsistentRead": True,
        }
        count = 0
        while True:
            response = self._client.query(**params)
            count += int(response.get("Count", 0))
            if "LastEvaluatedKey" not in response:
                return count
            params["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def list(
        self,
        merchant_id: str,
        query: EventQuery,
        *,
        limit: int,
        starting_after: str | None = None,
        ending_before: str | None = None,
    ) -> tuple[list[Event], bool]:
        """A page of events newest first, with Stripe's cursors and the query's filters.

        `related_object` reads the related-object index first: one key, however many events
        the merchant has. When it holds nothing (an object that belongs to a PaymentIntent, such
        as a charge, is indexed under it; a table created before the index has none) the
        merchant's events are read with a filter instead."""
        found = None
        if query.related_object is not None:
            found = self._related(
                merchant_id,
                query,
                limit=limit,
                starting_after=starting_after,
                ending_before=ending_before,
            )
        if found is None:
            found = self._by_merchant(
                merchant_id,
                query,
                limit=limit,
                starting_after=starting_after,
                ending_before=ending_before,
            )
        page, has_more = found
        pending = each_concurrently(lambda data: self._pending_of(data["id"]), page)
        return [_with_pending(data, n) for data, n in zip(page, pending, strict=True)], has_more

    def _related(
        self,
        merchant_id: str,
        query: EventQuery,
        *,
        limit: int,
        starting_after: str | None,
        ending_before: str | None,
    ) -> tuple[builtins.list[dict[str, Any]], bool] | None:
        params: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": RELATED_INDEX,
            "KeyConditionExpression": "gsi2pk = :pk",
            "ExpressionAttributeValues": to_attrs({":pk": f"{merchant_id}#{query.related_object}"}),
            "ScanIndexForward": False,
        }
        events: builtins.list[dict[str, Any]] = []
        try:
            while True:
                response = self._client.query(**params)
                events.extend(object_data(from_attrs(item)) for item in response.get("Items", []))
                if "LastEvaluatedKey" not in response:
                    break
                params["ExclusiveStartKey"] = response["LastEvaluatedKey"]
        except ClientError as error:
            if error_code(error) == "ValidationException":  # a table without the index
                return None
            raise
        if not events:
            return None
        # One object's events are few: the query's other conditions and the cursors apply here.
        kept = [e for e in events if _matches(e, query)]
        if starting_after:
            kept = [e for e in kept if e["id"] < starting_after]
        if ending_before:
            kept = [e for e in kept if e["id"] > ending_before][-(limit + 1) :]
        return kept[:limit], len(kept) > limit

    def _by_merchant(
        self,
        merchant_id: str,
        query: EventQuery,
        *,
        limit: int,
        starting_after: str | None = None,
        ending_before: str | None = None,
    ) -> tuple[builtins.list[dict[str, Any]], bool]:
        lower = _id_bound(query.created_gte, -1)
        upper = _id_bound(query.created_lte, +2)
        newest_first = ending_before is None
        if starting_after:
            upper = min(filter(None, (upper, starting_after)))
        if ending_before:
            lower = max(filter(None, (lower, ending_before + "\x00")))
        condition = "gsi1pk = :pk"
        values: dict[str, Any] = {":pk": f"{merchant_id}#{KIND}"}
        if lower and upper:
            condition += " AND gsi1sk BETWEEN :lower AND :upper"
            values.update({":lower": lower, ":upper": upper})
        elif lower:
            condition += " AND gsi1sk >= :lower"
            values[":lower"] = lower
        elif upper:
            condition += " AND gsi1sk < :upper"
            values[":upper"] = upper
        filters: list[str] = []
        names: dict[str, str] = {}
        if query.types:
            names["#type"] = "type"
            clauses = []
            for i, event_type in enumerate(query.types):
                if event_type.endswith(".*"):
                    clauses.append(f"begins_with(#type, :t{i})")
                    values[f":t{i}"] = event_type[:-1]
                else:
                    clauses.append(f"#type = :t{i}")
                    values[f":t{i}"] = event_type
            filters.append("(" + " OR ".join(clauses) + ")")
        if query.created_gte is not None or query.created_lte is not None:
            names.update({"#data": "data", "#created": "created"})
            if query.created_gte is not None:
                filters.append("#data.#created >= :gte")
                values[":gte"] = query.created_gte
            if query.created_lte is not None:
                filters.append("#data.#created <= :lte")
                values[":lte"] = query.created_lte
        if query.related_object is not None:
            # The snapshot is packed (dal.objects.PACKED): the event's item names its object
            # at the top level, and its PaymentIntent in the related index's key.
            names.update({"#object": "object_id", "#owner": "gsi2pk"})
            filters.append("(#object = :related OR #owner = :owner)")
            values[":related"] = query.related_object
            values[":owner"] = f"{merchant_id}#{query.related_object}"
        params: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": INDEX,
            "KeyConditionExpression": condition,
            "ScanIndexForward": not newest_first,
            "ExpressionAttributeValues": to_attrs(values),
        }
        if filters:
            params["FilterExpression"] = " AND ".join(filters)
            params["ExpressionAttributeNames"] = names
        events: builtins.list[dict[str, Any]] = []
        while len(events) <= limit:
            params["Limit"] = max(limit + 1, 25) if filters else limit + 1 - len(events)
            response = self._client.query(**params)
            for item in response.get("Items", []):
                data = object_data(from_attrs(item))
                if data["id"] not in (starting_after, ending_before):
                    events.append(data)
            if "LastEvaluatedKey" not in response:
                break
            params["ExclusiveStartKey"] = response["LastEvaluatedKey"]
        has_more = len(events) > limit
        page = events[:limit]
        if not newest_first:
            page.reverse()
        return page, has_more


def _pending(deliveries: list[dict[str, Any]]) -> int:
    return sum(1 for d in deliveries if d.get("status") != DeliveryStatus.SUCCEEDED.value)


def _with_pending(data: dict[str, Any], pending: int) -> Event:
    return Event.model_validate({**data, "pending_webhooks": pending})


def _matches(event: dict[str, Any], query: EventQuery) -> bool:
    kind, created = str(event["type"]), int(event["created"])
    if query.types and not any(
        kind.startswith(t[:-1]) if t.endswith(".*") else kind == t for t in query.types
    ):
        return False
    if query.created_gte is not None and created < query.created_gte:
        return False
    return query.created_lte is None or created <= query.created_lte


def _id_bound(created: int | None, slack_seconds: int) -> str | None:
    """An event-id key bound for a `created` bound, widened by `slack_seconds`."""
    if created is None:
        return None
    return "evt_" + time_prefix(max(0, created + slack_seconds) * 1000)
