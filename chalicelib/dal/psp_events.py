"""Provider events (PSP webhooks) as PayFlow received them, in the payments table.

- `psp_event#<connector>#<event id>` / `psp_event`: one provider event, stored once under the
  provider's own id by a conditional put; `applied` is set once its change has been made.
- `psp_ref#<connector>#<event code>#<reference>` / `psp_ref`: the latest event of that code for
  a reference (Adyen's merchantReference or pspReference): what the Adyen connector reads back,
  since Adyen has no call to read a payment.

Events are kept as their JSON text: a provider's payload is stored as it came, whatever its keys.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.dal.dynamo import error_code, from_attrs, to_attrs


class PspEventStore:
    """Provider events, each stored once, and the latest event per provider reference."""

    def __init__(
        self, client: Any, table_name: str, clock: Callable[[], float] = time.time
    ) -> None:
        self._client = client
        self._table = table_name
        self._clock = clock

    def record(self, connector: str, event_id: str, event: dict[str, Any]) -> bool:
        """Store `event` under its provider id unless it is stored already. True when this
        call stored it or when an earlier copy was stored but never applied (its change must
        still be made); False for a duplicate of an applied event."""
        try:
            self._client.put_item(
                TableName=self._table,
                Item=to_attrs(
                    {
                        "pk": f"psp_event#{connector}#{event_id}",
                        "sk": "psp_event",
                        "connector": connector,
                        "event_id": event_id,
                        "body": json.dumps(event, sort_keys=True),
                        "received": int(self._clock()),
                        "applied": False,
                    }
                ),
                ConditionExpression="attribute_not_exists(pk)",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as error:
            if error_code(error) != "ConditionalCheckFailedException":
                raise
            return not from_attrs(error.response.get("Item", {})).get("applied", False)
        return True

    def mark_applied(self, connector: str, event_id: str, outcome: str) -> None:
        """The event's change is made (`outcome` says what it did): later copies are skipped."""
        self._client.update_item(
            TableName=self._table,
            Key=to_attrs({"pk": f"psp_event#{connector}#{event_id}", "sk": "psp_event"}),
            UpdateExpression="SET applied = :true, outcome = :outcome",
            ExpressionAttributeValues=to_attrs({":true": True, ":outcome": outcome}),
        )

    def event(self, connector: str, event_id: str) -> dict[str, Any] | None:
        """The stored event with its `applied` and `outcome`, or None."""
        response = self._client.get_item(
            TableName=self._table,
            Key=to_attrs({"pk": f"psp_event#{connector}#{event_id}", "sk": "psp_event"}),
            ConsistentRead=True,
        )
        item = response.get("Item")
        if not item:
            return None
        values = from_attrs(item)
        return {
            "event": json.loads(values["body"]),
            "applied": values.get("applied", False),
            "outcome": values.get("outcome"),
        }

    def index(
        self, connector: str, code: str, references: Iterable[str], event: dict[str, Any]
    ) -> None:
        """Remember `event` as the latest of `code` for each reference."""
        body = json.dumps(event, sort_keys=True)
        for reference in references:
            if reference:
                self._client.put_item(
                    TableName=self._table,
                    Item=to_attrs(
                        {
                            "pk": f"psp_ref#{connector}#{code}#{reference}",
                            "sk": "psp_ref",
                            "body": body,
                        }
                    ),
                )

    def find(self, connector: str, code: str, reference: str) -> dict[str, Any] | None:
        """The latest event of `code` indexed under `reference`, or None."""
        response = self._client.get_item(
            TableName=self._table,
            Key=to_attrs({"pk": f"psp_ref#{connector}#{code}#{reference}", "sk": "psp_ref"}),
            ConsistentRead=True,
        )
        item = response.get("Item")
        return json.loads(from_attrs(item)["body"]) if item else None
