"""The analytics table: counters per time bucket, fold markers, alert settings and alerts.

Item layout (`pk`/`sk`, no index, no stream):
- buckets: `pk` = `<merchant>#<granularity>`, `sk` = `<start, 10 digits>#<connector>#<method>`,
  the counters as flat number attributes (DynamoDB ADDs them in place);
- fold markers: `pk` = `folded#<source id>`, `sk` = the fact's key: written in the same
  transaction as the counters it added (with the other facts of its bucket in the batch), so a
  fact replayed from the stream adds nothing;
- alert settings: `pk` = `<merchant>#alert_settings`, `sk` = `settings`;
- each connector's current alert: `pk` = `<merchant>#alert`, `sk` = `<connector>`;
- the alert history: `pk` = `<merchant>#alerts`, `sk` = alert id (time-ordered, newest last).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from chalicelib.dal.dynamo import (
    MAX_TRANSACTION_ITEMS,
    ConditionFailed,
    WriteBatch,
    commit,
    from_attrs,
    to_attrs,
)
from chalicelib.dal.objects import ObjectStore
from chalicelib.domain.analytics import Alert, AlertSettings, Granularity
from chalicelib.domain.events import Event

BUCKET_GRANULARITIES = (Granularity.MINUTE, Granularity.HOUR, Granularity.DAY)
_EVENT = "event"


class AlreadyFolded(Exception):
    """A fact was counted before (a replayed stream record)."""


@dataclass(frozen=True)
class Fold:
    """Counters to add once: `source` and `key` name the fact (a PaymentIntent and its call,
    a refund), `dimension` is (connector, method), `at` its time."""

    merchant_id: str
    source: str
    key: str
    at: float
    dimension: tuple[str, str]
    counters: Mapping[str, int]


def _chunks(facts: list[Fold], size: int) -> Iterator[list[Fold]]:
    for i in range(0, len(facts), size):
        yield facts[i : i + size]


class AnalyticsStore:
    """Counters and alerts; events announcing alerts go to the payments table's outbox."""

    def __init__(
        self, client: Any, table_name: str, payments_table: str, objects: ObjectStore
    ) -> None:
        self._client = client
        self._table = table_name
        self._payments = payments_table
        self._objects = objects

    # -- counters ------------------------------------------------------------------------------

    def fold(self, facts: Sequence[Fold]) -> int:
        """Add each fact's counters to the minute, hour and day buckets of its dimension, once
        per (source, key); how many were new. The facts of one bucket share one transaction
        (their markers and three summed updates), so a batch of n calls costs 2n + 6 write
        units, not 8n; a group holding a fact folded before (a replayed stream record) is
        folded again one fact at a time, which skips it."""
        groups: dict[tuple[str, tuple[str, str], int], list[Fold]] = {}
        for fact in facts:
            minute = Granularity.MINUTE.start(fact.at)
            groups.setdefault((fact.merchant_id, fact.dimension, minute), []).append(fact)
        folded = 0
        for group in groups.values():
            for chunk in _chunks(group, MAX_TRANSACTION_ITEMS - len(BUCKET_GRANULARITIES)):
                try:
                    self._fold_together(chunk)
                    folded += len(chunk)
                except AlreadyFolded:
                    folded += sum(self._fold_alone(fact) for fact in chunk)
        return folded

    def _fold_alone(self, fact: Fold) -> int:
        try:
            self._fold_together([fact])
        except AlreadyFolded:
            return 0
        return 1

    def _fold_together(self, facts: Sequence[Fold]) -> None:
        batch = WriteBatch()
        for fact in facts:
            batch.add(
                "marker",
                {
                    "Put": {
                        "TableName": self._table,
                        "Item": to_attrs({"pk": f"folded#{fact.source}", "sk": fact.key}),
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                },
            )
        first = facts[0]
        connector, method = first.dimension
        counters: Counter[str] = Counter()
        for fact in facts:
            counters.update(fact.counters)
        names = {f"#c{i}": name for i, name in enumerate(counters)}
        values: dict[str, Any] = {f":c{i}": n for i, n in enumerate(counters.values())}
        values.update({":connector": connector, ":method": method})
        adds = ", ".join(f"#c{i} :c{i}" for i in range(len(counters)))
        for granularity in BUCKET_GRANULARITIES:
            start = granularity.start(first.at)
            batch.add(
                f"bucket:{granularity.value}",
                {
                    "Update": {
                        "TableName": self._table,
                        "Key": to_attrs(
                            {
                                "pk": f"{first.merchant_id}#{granularity.value}",
                                "sk": f"{start:010d}#{connector}#{method}",
                            }
                        ),
                        "UpdateExpression": (
                            f"SET #connector = :connector, #method = :method, #start = :start "
                            f"ADD {adds}"
                        ),
                        "ExpressionAttributeNames": {
                            **names,
                            "#connector": "connector",
                            "#method": "method",
                            "#start": "start",
                        },
                        "ExpressionAttributeValues": to_attrs({**values, ":start": start}),
                    }
                },
            )
        try:
            commit(self._client, batch)
        except ConditionFailed as failure:
            if failure.label == "marker":
                raise AlreadyFolded(", ".join(f"{f.source} {f.key}" for f in facts)) from failure
            raise

    def buckets(
        self, merchant_id: str, granularity: Granularity, start: int, end: int
    ) -> list[dict[str, Any]]:
        """Every bucket of `granularity` starting in [start, end], oldest first."""
        params: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk AND sk BETWEEN :low AND :high",
            "ExpressionAttributeValues": to_attrs(
                {
                    ":pk": f"{merchant_id}#{granularity.value}",
                    ":low": f"{max(0, start):010d}",
                    ":high": f"{max(0, end):010d}~",
                }
            ),
        }
        items: list[dict[str, Any]] = []
        while True:
            response = self._client.query(**params)
            items.extend(map(from_attrs, response.get("Items", [])))
            if "LastEvaluatedKey" not in response:
                return items
            params["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def payment_facts(self, payment_intent_ids: list[str]) -> dict[str, dict[str, Any]]:
        """The stored PaymentIntents (their data) of `payment_intent_ids`, by id."""
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(payment_intent_ids), 100):
            keys = [
                to_attrs({"pk": pi_id, "sk": "payment_intent"})
                for pi_id in payment_intent_ids[start : start + 100]
            ]
            request: dict[str, Any] = {self._payments: {"Keys": keys}}
            while request:
                response = self._client.batch_get_item(RequestItems=request)
                for item in response.get("Responses", {}).get(self._payments, []):
                    values = from_attrs(item)
                    found[values["pk"]] = values["data"]
                request = response.get("UnprocessedKeys") or {}
        return found

    # -- alert settings and alerts -------------------------------------------------------------

    def alert_settings(self, merchant_id: str) -> AlertSettings:
        response = self._client.get_item(
            TableName=self._table,
            Key=to_attrs({"pk": f"{merchant_id}#alert_settings", "sk": "settings"}),
        )
        item = response.get("Item")
        return AlertSettings.model_validate(from_attrs(item)["data"]) if item else AlertSettings()

    def save_alert_settings(self, merchant_id: str, settings: AlertSettings) -> None:
        self._client.put_item(
            TableName=self._table,
            Item=to_attrs(
                {
                    "pk": f"{merchant_id}#alert_settings",
                    "sk": "settings",
                    "data": settings.model_dump(),
                }
            ),
        )

    def current_alert(self, merchant_id: str, connector: str) -> Alert | None:
        """The connector's latest alert (firing or resolved), consistently read."""
        response = self._client.get_item(
            TableName=self._table,
            Key=to_attrs({"pk": f"{merchant_id}#alert", "sk": connector}),
            ConsistentRead=True,
        )
        item = response.get("Item")
        return Alert.model_validate(from_attrs(item)["data"]) if item else None

    def save_alert(self, alert: Alert, previous: Alert | None, event: Event) -> None:
        """Write `alert` as the connector's current one and into the history, with the event
        announcing it, in one transaction: on condition that the current one is still
        `previous` (ConditionFailed otherwise: another instance moved it first)."""
        batch = WriteBatch()
        current: dict[str, Any] = {
            "TableName": self._table,
            "Item": to_attrs(
                {
                    "pk": f"{alert.merchant_id}#alert",
                    "sk": alert.connector,
                    "version": alert.version,
                    "data": alert.model_dump(mode="json"),
                }
            ),
        }
        if previous is None:
            current["ConditionExpression"] = "attribute_not_exists(pk)"
        else:
            current["ConditionExpression"] = "version = :expected"
            current["ExpressionAttributeValues"] = to_attrs({":expected": previous.version})
        batch.add("current", {"Put": current})
        batch.add(
            "history",
            {
                "Put": {
                    "TableName": self._table,
                    "Item": to_attrs(
                        {
                            "pk": f"{alert.merchant_id}#alerts",
                            "sk": alert.id,
                            "data": alert.model_dump(mode="json"),
                        }
                    ),
                }
            },
        )
        self._objects.put_new(batch, _EVENT, event, type=event.type)
        commit(self._client, batch)

    def alerts(self, merchant_id: str, limit: int) -> list[Alert]:
        """The merchant's alerts newest first (a resolved one shows its latest state)."""
        response = self._client.query(
            TableName=self._table,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues=to_attrs({":pk": f"{merchant_id}#alerts"}),
            ScanIndexForward=False,
            Limit=limit,
        )
        return [Alert.model_validate(from_attrs(item)["data"]) for item in response["Items"]]
