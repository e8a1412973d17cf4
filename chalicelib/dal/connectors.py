"""Connector state in the payments table, shared by every Lambda instance.

- `circuit#<connector>` / `circuit`: circuit state, `version`, `opened_at`, and per-bucket
  counters `c_<bucket start>` (calls) and `f_<bucket start>` (failures); beside it
  `circuit#<connector>` / `move#<version>`: each move of the circuit (from, to, when, why).
- `connector#<connector>` / `settings`: run-time settings (enabled, simulator fault rates).
- `routing#<merchant>` / `routing`: a merchant's own routing configuration.
- `<pi id>` / `attempt#<nnnn>#<ms>#<connector>`: one PSP call the state machine made for a
  PaymentIntent's attempt, and `<pi id>` / `routing#<nnnn>`: the routing decision of attempt
  nnnn with the call the confirm handler made itself (`calls`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.dal.dynamo import (
    ConditionFailed,
    WriteBatch,
    batch_get,
    commit,
    error_code,
    from_attrs,
    paged,
    to_attrs,
)
from chalicelib.domain.circuit import Circuit, CircuitState, bucket

HISTORY_DAYS = 30
"""How long a circuit's moves are kept (by TTL on AWS; the sandbox never expires items)."""


def _circuit(connector: str, item: dict[str, Any] | None) -> Circuit:
    if not item:
        return Circuit(connector=connector)
    calls = {int(k[2:]): int(v) for k, v in item.items() if k.startswith("c_")}
    failures = {int(k[2:]): int(v) for k, v in item.items() if k.startswith("f_")}
    opened = item.get("opened_at_ms")
    return Circuit(
        connector=connector,
        state=CircuitState(item.get("state", CircuitState.CLOSED.value)),
        version=int(item.get("version", 0)),
        opened_at=int(opened) / 1000 if opened is not None else None,
        calls=calls,
        failures=failures,
    )


class ConnectorStateStore:
    """Circuits, run-time connector settings, merchant routing, and attempt records."""

    def __init__(
        self, client: Any, table_name: str, clock: Callable[[], float] = time.time
    ) -> None:
        self._client = client
        self._table = table_name
        self._clock = clock

    # -- circuits ------------------------------------------------------------------------------

    def circuits(self, connectors: Iterable[str]) -> dict[str, Circuit]:
        ids = sorted(set(connectors))
        found = self._batch_get([{"pk": f"circuit#{c}", "sk": "circuit"} for c in ids])
        return {c: _circuit(c, found.get((f"circuit#{c}", "circuit"))) for c in ids}

    def record_call(self, connector: str, failed: bool, window_seconds: int) -> Circuit:
        """Count one call (and whether it failed) in the current bucket; the circuit after."""
        now = self._clock()
        current = bucket(now)
        response = self._client.update_item(
            TableName=self._table,
            Key=to_attrs({"pk": f"circuit#{connector}", "sk": "circuit"}),
            UpdateExpression="ADD #c :one, #f :failed",
            ExpressionAttributeNames={"#c": f"c_{current}", "#f": f"f_{current}"},
            ExpressionAttributeValues=to_attrs({":one": 1, ":failed": 1 if failed else 0}),
            ReturnValues="ALL_NEW",
        )
        circuit = _circuit(connector, from_attrs(response["Attributes"]))
        stale = [b for b in circuit.calls if b + window_seconds * 2 < now]
        if stale:
            self._forget(connector, stale)
        return circuit

    def _forget(self, connector: str, buckets: list[int]) -> None:
        # Keeps the item small: buckets well outside the window no longer count.
        names = {}
        for i, start in enumerate(buckets):
            names[f"#c{i}"] = f"c_{start}"
            names[f"#f{i}"] = f"f_{start}"
        self._client.update_item(
            TableName=self._table,
            Key=to_attrs({"pk": f"circuit#{connector}", "sk": "circuit"}),
            UpdateExpression="REMOVE " + ", ".join(names),
            ExpressionAttributeNames=names,
        )

    def move_circuit(
        self,
        circuit: Circuit,
        to: CircuitState,
        *,
        reason: str,
        reset_counts: bool = False,
        window: tuple[int, int] | None = None,
    ) -> bool:
        """Move `circuit` to `to` unless someone moved it first (then False). The move and its
        history entry (`reason`; `window` = the calls and failures that decided it) commit in
        one transaction, so the history holds each move that happened exactly once."""
        names = {"#s": "state"}
        remove = ""
        if reset_counts:
            for i, start in enumerate(sorted(set(circuit.calls) | set(circuit.failures))):
                names[f"#c{i}"] = f"c_{start}"
                names[f"#f{i}"] = f"f_{start}"
            removed = [n for n in names if n != "#s"]
            remove = (" REMOVE " + ", ".join(removed)) if removed else ""
        now_ms = int(self._clock() * 1000)
        version = circuit.version + 1
        move: dict[str, Any] = {
            "connector": circuit.connector,
            "from": circuit.state.value,
            "to": to.value,
            "at_ms": now_ms,
            "reason": reason,
            "version": version,
        }
        if window is not None:
            move["calls"], move["failures"] = window
        batch = WriteBatch()
        batch.add(
            "circuit",
            {
                "Update": {
                    "TableName": self._table,
                    "Key": to_attrs({"pk": f"circuit#{circuit.connector}", "sk": "circuit"}),
                    "UpdateExpression": (
                        "SET #s = :to, version = :next, opened_at_ms = :opened" + remove
                    ),
                    "ConditionExpression": "attribute_not_exists(version) OR version = :expected",
                    "ExpressionAttributeNames": names,
                    "ExpressionAttributeValues": to_attrs(
                        {
                            ":to": to.value,
                            ":next": version,
                            ":expected": circuit.version,
                            ":opened": now_ms,
                        }
                    ),
                }
            },
        )
        batch.add(
            "circuit_move",
            {
                "Put": {
                    "TableName": self._table,
                    "Item": to_attrs(
                        {
                            "pk": f"circuit#{circuit.connector}",
                            "sk": f"move#{version:010d}",
                            "data": move,
                            # DynamoDB's TTL ends the history after HISTORY_DAYS on AWS.
                            "expires_at": now_ms // 1000 + HISTORY_DAYS * 86_400,
                        }
                    ),
                }
            },
        )
        try:
            commit(self._client, batch)
        except ConditionFailed:
            return False
        return True

    def circuit_history(self, connector: str, limit: int) -> list[dict[str, Any]]:
        """The circuit's latest `limit` moves, newest first: one Query of its partition."""
        response = self._client.query(
            TableName=self._table,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :move)",
            ExpressionAttributeValues=to_attrs({":pk": f"circuit#{connector}", ":move": "move#"}),
            ScanIndexForward=False,
            Limit=limit,
        )
        return [from_attrs(item)["data"] for item in response.get("Items", [])]

    # -- settings and routing ------------------------------------------------------------------

    def snapshot(
        self, merchant_id: str, connectors: Iterable[str]
    ) -> tuple[dict[str, Any] | None, dict[str, dict[str, Any]], dict[str, Circuit]]:
        """What a payment's routing reads, in one BatchGetItem: the merchant's own routing (None
        when it uses the defaults), and the run-time settings and circuit of each of
        `connectors`. Connectors the merchant's routing names beyond those take a second one."""
        ids = set(connectors)
        keys = [{"pk": f"routing#{merchant_id}", "sk": "routing"}]
        items = self._batch_get(keys + self._connector_keys(ids))
        own = items.get((f"routing#{merchant_id}", "routing"))
        routing = own["data"] if own else None
        extra = {c["id"] for c in (routing or {}).get("connectors", [])} - ids
        if extra:
            items.update(self._batch_get(self._connector_keys(extra)))
            ids |= extra
        settings = {
            c: items[(f"connector#{c}", "settings")]["data"]
            for c in ids
            if (f"connector#{c}", "settings") in items
        }
        circuits = {c: _circuit(c, items.get((f"circuit#{c}", "circuit"))) for c in sorted(ids)}
        return routing, settings, circuits

    @staticmethod
    def _connector_keys(ids: Iterable[str]) -> list[dict[str, str]]:
        keys = []
        for c in sorted(ids):
            keys.append({"pk": f"connector#{c}", "sk": "settings"})
            keys.append({"pk": f"circuit#{c}", "sk": "circuit"})
        return keys

    def _batch_get(self, keys: list[dict[str, str]]) -> dict[tuple[str, str], dict[str, Any]]:
        return batch_get(self._client, self._table, keys)

    def settings(self, connectors: Iterable[str]) -> dict[str, dict[str, Any]]:
        ids = sorted(set(connectors))
        found = self._batch_get([{"pk": f"connector#{c}", "sk": "settings"} for c in ids])
        return {pk.removeprefix("connector#"): item["data"] for (pk, _), item in found.items()}

    def save_settings(self, connector: str, settings: dict[str, Any]) -> None:
        self._client.put_item(
            TableName=self._table,
            Item=to_attrs({"pk": f"connector#{connector}", "sk": "settings", "data": settings}),
        )

    def take_scripted_failure(self, connector: str) -> bool:
        """Use up one of a simulator's scripted failures; False when none is left."""
        try:
            self._client.update_item(
                TableName=self._table,
                Key=to_attrs({"pk": f"connector#{connector}", "sk": "settings"}),
                UpdateExpression="SET #d.fail_next_calls = #d.fail_next_calls - :one",
                ConditionExpression="#d.fail_next_calls > :zero",
                ExpressionAttributeNames={"#d": "data"},
                ExpressionAttributeValues=to_attrs({":one": 1, ":zero": 0}),
            )
        except ClientError as error:
            if error_code(error) == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def merchant_routing(self, merchant_id: str) -> dict[str, Any] | None:
        response = self._client.get_item(
            TableName=self._table,
            Key=to_attrs({"pk": f"routing#{merchant_id}", "sk": "routing"}),
        )
        item = response.get("Item")
        return from_attrs(item)["data"] if item else None

    def save_merchant_routing(self, merchant_id: str, routing: dict[str, Any] | None) -> None:
        key = to_attrs({"pk": f"routing#{merchant_id}", "sk": "routing"})
        if routing is None:
            self._client.delete_item(TableName=self._table, Key=key)
            return
        self._client.put_item(TableName=self._table, Item={**key, **to_attrs({"data": routing})})

    # -- attempts ------------------------------------------------------------------------------

    def record_attempt(self, payment_intent_id: str, attempt: int, record: dict[str, Any]) -> None:
        millis = int(self._clock() * 1000)
        self._client.put_item(
            TableName=self._table,
            Item=to_attrs(
                {
                    "pk": payment_intent_id,
                    "sk": f"attempt#{attempt:04d}#{millis:013d}#{record['connector']}",
                    "data": record,
                }
            ),
        )

    def add_decision(
        self,
        batch: WriteBatch,
        payment_intent_id: str,
        attempt: int,
        decision: dict[str, Any],
        calls: list[dict[str, Any]],
    ) -> None:
        """The attempt's routing decision and the calls the confirm handler made itself, in the
        transaction that commits what they led to (the state machine's calls are items of
        their own, `record_attempt`)."""
        batch.add(
            f"routing:{payment_intent_id}",
            {
                "Put": {
                    "TableName": self._table,
                    "Item": to_attrs(
                        {
                            "pk": payment_intent_id,
                            "sk": f"routing#{attempt:04d}",
                            "data": {**decision, "attempt": attempt, "calls": calls},
                        }
                    ),
                }
            },
        )

    def attempts(self, payment_intent_id: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """(PSP calls, routing decisions) of a PaymentIntent, oldest first: within an attempt,
        the confirm handler's own call comes before the state machine's."""
        calls: list[tuple[int, int, dict[str, Any]]] = []
        decisions: list[dict[str, Any]] = []
        params: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk AND sk BETWEEN :low AND :high",
            "ExpressionAttributeValues": to_attrs(
                {":pk": payment_intent_id, ":low": "attempt#", ":high": "routing#~"}
            ),
            "ConsistentRead": True,
        }
        for item in paged(self._client.query, params):
            data = item["data"]
            if item["sk"].startswith("attempt#"):
                calls.append((int(data["attempt"]), 1, data))
            elif item["sk"].startswith("routing#"):
                inline = data.pop("calls", [])
                calls.extend((int(call["attempt"]), 0, call) for call in inline)
                decisions.append(data)
        ordered = sorted(enumerate(calls), key=lambda c: (c[1][0], c[1][1], c[0]))
        return [call for _, (_, _, call) in ordered], decisions
