"""Webhook endpoints and deliveries in the payments table, and the webhook queues (SQS).

Endpoints are merchant-owned objects like PaymentIntents (`pk` = `we_...`, `sk` =
`webhook_endpoint`, listed through `gsi1`), written through `ObjectStore` with version conditions.

A delivery (one event for one endpoint) lives next to its event:
- `pk` = the event id, `sk` = `webhook_delivery#<endpoint id>`: one Query lists an event's
  deliveries;
- `gsi1pk` = `<endpoint id>#webhook_delivery`, `gsi1sk` = the delivery id (which starts with the
  event's time-ordered id): one index Query lists an endpoint's deliveries newest first;
- `gsi3pk` = `<endpoint id>#webhook_delivery#<status>`, `gsi3sk` = the delivery id, only while
  the delivery is pending or failed (OPEN_INDEX, a sparse index): one index Query lists an
  endpoint's pending or failed deliveries, however many have succeeded;
- top-level `id`, `merchant_id`, `event_id`, `event_type`, `endpoint_id`, `status`, `created`,
  `attempt_count`, `next_attempt_at`, `attempts` (the delivery log), `token`.
A delivery is created with `attribute_not_exists(pk)`; its event's `pending_webhooks` is not
stored but counted from these items when the event is read (dal/events.py): the same Query
reads an event and its deliveries, and nothing rewrites the event's large item.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.dal.dynamo import (
    ConditionFailed,
    WriteBatch,
    commit,
    error_code,
    from_attrs,
    paged,
    to_attrs,
)
from chalicelib.dal.objects import INDEX, ObjectStore, Page
from chalicelib.domain.events import Event
from chalicelib.domain.webhooks import Attempt, Delivery, DeliveryStatus, WebhookEndpoint
from chalicelib.errors import StaleWrite

logger = logging.getLogger(__name__)

ENDPOINT = "webhook_endpoint"
DELIVERY = "webhook_delivery"
EVENT = "event"
OPEN_INDEX = "gsi3"
"""Deliveries not succeeded, by endpoint and status. Succeeded is what nearly every delivery
becomes, so a `status=succeeded` listing filters `gsi1` and most of what it reads matches; a
pending or failed delivery is rare among an endpoint's history, and filtering for one would read
the whole history (70,000 deliveries an endpoint in a 10,000-payment chaos run: a 30 s request).
Every write that sets a delivery's status sets or removes these keys with it. The price is one
index write when a delivery is created and one when it succeeds; a retry while pending rewrites
the entry (the index projects the whole item, as every index of the table does). `gsi3` is
overloaded, as `gsi2` is: PaymentIntents by payment method type are `<merchant>#...` partitions,
and neither a merchant id nor an endpoint id holds `#`."""
OPEN_KEYS = ("gsi3pk", "gsi3sk")
"""The attributes that put a delivery in OPEN_INDEX."""
FILTERED_READ_MAX = 1000
"""The most deliveries one Query of a status-filtered (`succeeded`) listing reads."""


class WebhookStore:
    """Endpoints and deliveries; every write that can race is conditional."""

    def __init__(self, client: Any, table_name: str, objects: ObjectStore) -> None:
        self._client = client
        self._table = table_name
        self._objects = objects

    # -- endpoints -----------------------------------------------------------------------------

    def endpoint(self, merchant_id: str, endpoint_id: str) -> WebhookEndpoint | None:
        """The merchant's endpoint, or None (unknown, deleted or someone else's)."""
        data = self._objects.get(ENDPOINT, merchant_id, endpoint_id)
        return WebhookEndpoint.model_validate(data) if data else None

    def endpoints_page(
        self,
        merchant_id: str,
        *,
        limit: int,
        starting_after: str | None = None,
        ending_before: str | None = None,
    ) -> tuple[list[WebhookEndpoint], bool]:
        """A page of the merchant's endpoints, newest first."""
        page: Page = self._objects.list(
            ENDPOINT,
            merchant_id,
            limit=limit,
            starting_after=starting_after,
            ending_before=ending_before,
        )
        return [WebhookEndpoint.model_validate(i) for i in page.items], page.has_more

    def all_endpoints(self, merchant_id: str) -> list[WebhookEndpoint]:
        """Every endpoint of the merchant (there are at most a few)."""
        endpoints, _ = self.endpoints_page(merchant_id, limit=100)
        return endpoints

    def create_endpoint(self, endpoint: WebhookEndpoint) -> None:
        batch = WriteBatch()
        self._objects.put_new(batch, ENDPOINT, endpoint, status=endpoint.status.value)
        commit(self._client, batch)

    def save_endpoint(
        self, endpoint: WebhookEndpoint, expected_version: int, events: tuple[Event, ...] = ()
    ) -> None:
        """Replace the endpoint if nobody wrote it since `expected_version`, together with the
        events announcing the change; StaleWrite otherwise."""
        batch = WriteBatch()
        self._objects.put_version(
            batch, ENDPOINT, endpoint, expected_version, status=endpoint.status.value
        )
        for event in events:
            self._objects.put_new(batch, EVENT, event, type=event.type)
        try:
            commit(self._client, batch)
        except ConditionFailed as failure:
            raise StaleWrite(
                "The webhook endpoint was changed by a concurrent request. Retry the request.",
                headers={"Stripe-Should-Retry": "true"},
            ) from failure

    def delete_endpoint(self, endpoint: WebhookEndpoint) -> None:
        try:
            self._client.delete_item(
                TableName=self._table,
                Key=to_attrs({"pk": endpoint.id, "sk": ENDPOINT}),
                ConditionExpression="version = :v",
                ExpressionAttributeValues=to_attrs({":v": endpoint.version}),
            )
        except self._client.exceptions.ConditionalCheckFailedException as failure:
            raise StaleWrite(
                "The webhook endpoint was changed by a concurrent request. Retry the request.",
                headers={"Stripe-Should-Retry": "true"},
            ) from failure

    # -- deliveries ----------------------------------------------------------------------------

    def create_delivery(self, delivery: Delivery) -> bool:
        """Store a new delivery; False when it exists already (a stream batch seen twice)."""
        try:
            self._client.put_item(
                TableName=self._table,
                Item=self._delivery_item(delivery),
                ConditionExpression="attribute_not_exists(pk)",
            )
        except ClientError as error:
            if error_code(error) == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def delivery(self, event_id: str, endpoint_id: str) -> Delivery | None:
        response = self._client.get_item(
            TableName=self._table,
            Key=self._delivery_key(event_id, endpoint_id),
            ConsistentRead=True,
        )
        item = response.get("Item")
        return _delivery(item) if item else None

    def deliveries_of_event(self, event_id: str) -> list[Delivery]:
        """Every delivery of one event (one per subscribed endpoint)."""
        params: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
            "ExpressionAttributeValues": to_attrs({":pk": event_id, ":prefix": f"{DELIVERY}#"}),
            "ConsistentRead": True,
        }
        return [Delivery.model_validate(item) for item in paged(self._client.query, params)]

    def deliveries_of_endpoint(
        self,
        endpoint_id: str,
        *,
        limit: int,
        starting_after: str | None = None,
        ending_before: str | None = None,
        status: DeliveryStatus | None = None,
        since_id: str | None = None,
    ) -> tuple[list[Delivery], bool]:
        """A page of an endpoint's deliveries, newest first; `since_id` is a lower bound on the
        delivery id (a delivery id prefix made from a time)."""
        filtered = status == DeliveryStatus.SUCCEEDED
        if status is None or filtered:
            index, values = INDEX, {":pk": f"{endpoint_id}#{DELIVERY}"}
        else:
            index, values = OPEN_INDEX, {":pk": _open_partition(endpoint_id, status)}
        condition, sort = f"{index}pk = :pk", f"{index}sk"
        newest_first = ending_before is None
        lower = since_id
        upper = starting_after
        if ending_before:
            lower = max(filter(None, (since_id, ending_before + "\x00")))
        if lower and upper:
            condition += f" AND {sort} BETWEEN :lower AND :upper"
            values.update({":lower": lower, ":upper": upper})
        elif lower:
            condition += f" AND {sort} >= :lower"
            values[":lower"] = lower
        elif upper:
            condition += f" AND {sort} < :upper"
            values[":upper"] = upper
        params: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": index,
            "KeyConditionExpression": condition,
            "ScanIndexForward": not newest_first,
        }
        if filtered:
            params["FilterExpression"] = "#status = :status"
            params["ExpressionAttributeNames"] = {"#status": "status"}
            values[":status"] = DeliveryStatus.SUCCEEDED.value
        params["ExpressionAttributeValues"] = to_attrs(values)
        found: list[Delivery] = []
        # A status filter is applied after each read: where deliveries that have not succeeded
        # cluster (an outage), a page would take a Query per page-worth of them. The read grows
        # instead, doubling up to FILTERED_READ_MAX: a few Queries for a long run of them, no
        # more read than needed when most match.
        read = max(limit + 1, 25)
        while len(found) <= limit:
            params["Limit"] = read if filtered else limit + 1 - len(found)
            read = min(read * 2, FILTERED_READ_MAX)
            response = self._client.query(**params)
            for item in response.get("Items", []):
                delivery = _delivery(item)
                # BETWEEN is inclusive; the cursor itself is not part of the page.
                if delivery.id != starting_after:
                    found.append(delivery)
            if "LastEvaluatedKey" not in response:
                break
            params["ExclusiveStartKey"] = response["LastEvaluatedKey"]
        has_more = len(found) > limit
        found = found[:limit]
        if not newest_first:
            found.reverse()
        return found, has_more

    def stored_deliveries(
        self, endpoint_id: str, *, after: str | None = None, page_size: int | None = None
    ) -> Iterator[dict[str, Any]]:
        """The endpoint's stored deliveries as plain values, oldest first, from after the
        delivery `after` (an id), read `page_size` a Query. For walks over stored items (index
        backfills), not requests."""
        condition = "gsi1pk = :pk"
        values: dict[str, Any] = {":pk": f"{endpoint_id}#{DELIVERY}"}
        if after is not None:
            condition += " AND gsi1sk > :after"
            values[":after"] = after
        params: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": INDEX,
            "KeyConditionExpression": condition,
            "ExpressionAttributeValues": to_attrs(values),
        }
        if page_size is not None:
            params["Limit"] = page_size
        yield from paged(self._client.query, params)

    @staticmethod
    def open_index_change(values: Mapping[str, Any]) -> tuple[dict[str, str], list[str]]:
        """What a stored delivery (`values`, plain) lacks of the OPEN_INDEX keys its status
        calls for: (keys to set, keys to remove), both empty when current. ValueError when the
        item is not a readable delivery."""
        delivery = Delivery.model_validate(values)
        wanted = _open_keys(delivery, delivery.status)
        changed = {name: key for name, key in wanted.items() if values.get(name) != key}
        removed = [name for name in OPEN_KEYS if name in values and name not in wanted]
        return changed, removed

    def set_open_keys(
        self, values: Mapping[str, Any], changed: Mapping[str, str], removed: list[str]
    ) -> bool:
        """Write only a stored delivery's OPEN_INDEX keys, on condition that its status is
        still the one `values` holds; False when a write came first (any write of a status
        stores that status's keys itself)."""
        sets = [f"{name} = :{name}" for name in changed]
        attribute_values: dict[str, Any] = {f":{name}": key for name, key in changed.items()}
        attribute_values[":status"] = values["status"]
        try:
            self._client.update_item(
                TableName=self._table,
                Key=to_attrs({"pk": values["pk"], "sk": values["sk"]}),
                UpdateExpression=_expression(sets, removed),
                ConditionExpression="attribute_exists(pk) AND #status = :status",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues=to_attrs(attribute_values),
            )
        except self._client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def retoken(
        self,
        delivery: Delivery,
        token: str,
        *,
        next_attempt_at: int | None,
        reset_status: bool,
    ) -> bool:
        """Hand the delivery's schedule to a new message named `token` (only if nobody else did
        since `delivery` was read); `reset_status` puts a failed delivery back to pending."""
        sets = ["#token = :new", "dispatched = :false"]
        removes: list[str] = []
        values: dict[str, Any] = {":old": delivery.token, ":new": token, ":false": False}
        names = {"#token": "token"}
        if reset_status:
            sets.append("#status = :pending")
            names["#status"] = "status"
            values[":pending"] = DeliveryStatus.PENDING.value
            _list_as(delivery, DeliveryStatus.PENDING, sets, removes, values)
        if next_attempt_at is not None:
            sets.append("next_attempt_at = :next")
            values[":next"] = next_attempt_at
        try:
            self._client.update_item(
                TableName=self._table,
                Key=self._delivery_key(delivery.event_id, delivery.endpoint_id),
                UpdateExpression=_expression(sets, removes),
                ConditionExpression="#token = :old",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=to_attrs(values),
            )
        except self._client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def mark_dispatched(self, delivery: Delivery) -> bool:
        """Note that the message with the delivery's current token was sent (False: the token
        has changed since)."""
        try:
            self._client.update_item(
                TableName=self._table,
                Key=self._delivery_key(delivery.event_id, delivery.endpoint_id),
                UpdateExpression="SET dispatched = :true",
                ConditionExpression="#token = :token",
                ExpressionAttributeNames={"#token": "token"},
                ExpressionAttributeValues=to_attrs({":true": True, ":token": delivery.token}),
            )
        except self._client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def record_attempt(
        self,
        delivery: Delivery,
        attempt: Attempt,
        *,
        status: DeliveryStatus | None,
        next_attempt_at: int | None = None,
    ) -> bool:
        """Append `attempt` to the delivery log and move the delivery to `status` (None: keep
        it). A succeeded delivery never moves back, nor a failed one back to pending. False
        when only the log entry was written."""
        if status is not None:
            try:
                self._client.update_item(
                    **self._append(delivery, attempt, status, next_attempt_at)["Update"]
                )
                return True
            except ClientError as error:
                if error_code(error) != "ConditionalCheckFailedException":
                    raise
        action = self._append(delivery, attempt, None, None)
        self._client.update_item(**action["Update"])
        return False

    def fail(self, delivery: Delivery, *, only_token: str | None = None) -> bool:
        """Mark a delivery failed without an attempt (its endpoint is gone or disabled)."""
        condition = "#status <> :succeeded"
        values: dict[str, Any] = {
            ":failed": DeliveryStatus.FAILED.value,
            ":succeeded": DeliveryStatus.SUCCEEDED.value,
        }
        names = {"#status": "status"}
        if only_token is not None:
            condition += " AND #token = :token"
            values[":token"] = only_token
            names["#token"] = "token"
        sets, removes = ["#status = :failed"], ["next_attempt_at"]
        _list_as(delivery, DeliveryStatus.FAILED, sets, removes, values)
        try:
            self._client.update_item(
                TableName=self._table,
                Key=self._delivery_key(delivery.event_id, delivery.endpoint_id),
                UpdateExpression=_expression(sets, removes),
                ConditionExpression=condition,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=to_attrs(values),
            )
        except self._client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    # -- helpers -------------------------------------------------------------------------------

    def _append(
        self,
        delivery: Delivery,
        attempt: Attempt,
        status: DeliveryStatus | None,
        next_attempt_at: int | None,
    ) -> dict[str, Any]:
        sets = [
            "attempts = list_append(if_not_exists(attempts, :empty), :attempt)",
            "attempt_count = if_not_exists(attempt_count, :zero) + :one",
        ]
        removes: list[str] = []
        names: dict[str, str] = {}
        values: dict[str, Any] = {
            ":attempt": [attempt.model_dump(mode="json")],
            ":empty": [],
            ":zero": 0,
            ":one": 1,
        }
        params: dict[str, Any] = {
            "TableName": self._table,
            "Key": self._delivery_key(delivery.event_id, delivery.endpoint_id),
        }
        if status is not None:
            sets.append("#status = :status")
            names["#status"] = "status"
            values[":status"] = status.value
            if status == DeliveryStatus.PENDING:
                # Only a pending delivery stays pending: an older copy of the message, handled
                # late (a duplicate whose POST was slow), must not reopen a delivery that a newer
                # receive has meanwhile failed into the dead-letter queue, or that succeeded.
                params["ConditionExpression"] = "#status = :status"
            else:
                values[":succeeded"] = DeliveryStatus.SUCCEEDED.value
                params["ConditionExpression"] = "#status <> :succeeded"
            if next_attempt_at is None:
                removes.append("next_attempt_at")
            else:
                sets.append("next_attempt_at = :next")
                values[":next"] = next_attempt_at
            # Also for a pending delivery still pending: one stored before OPEN_INDEX existed
            # joins it at its next attempt.
            _list_as(delivery, status, sets, removes, values)
        params["UpdateExpression"] = _expression(sets, removes)
        params["ExpressionAttributeValues"] = to_attrs(values)
        if names:
            params["ExpressionAttributeNames"] = names
        return {"Update": params}

    @staticmethod
    def _delivery_key(event_id: str, endpoint_id: str) -> dict[str, Any]:
        return to_attrs({"pk": event_id, "sk": f"{DELIVERY}#{endpoint_id}"})

    def _delivery_item(self, delivery: Delivery) -> dict[str, Any]:
        values = delivery.model_dump(mode="json", exclude={"dispatched"})
        return to_attrs(
            {
                **values,
                "pk": delivery.event_id,
                "sk": f"{DELIVERY}#{delivery.endpoint_id}",
                "kind": DELIVERY,
                "gsi1pk": f"{delivery.endpoint_id}#{DELIVERY}",
                "gsi1sk": delivery.id,
                **_open_keys(delivery, delivery.status),
            }
        )


def _open_partition(endpoint_id: str, status: DeliveryStatus) -> str:
    return f"{endpoint_id}#{DELIVERY}#{status.value}"


def _open_keys(delivery: Delivery, status: DeliveryStatus) -> dict[str, str]:
    """A delivery's OPEN_INDEX keys when it has `status` (none once succeeded)."""
    if status == DeliveryStatus.SUCCEEDED:
        return {}
    partition, sort = OPEN_KEYS
    return {partition: _open_partition(delivery.endpoint_id, status), sort: delivery.id}


def _list_as(
    delivery: Delivery,
    status: DeliveryStatus,
    sets: list[str],
    removes: list[str],
    values: dict[str, Any],
) -> None:
    """Add to an update that gives `delivery` `status` the writes of its OPEN_INDEX keys."""
    keys = _open_keys(delivery, status)
    if not keys:
        removes.extend(OPEN_KEYS)
    for name, value in keys.items():
        sets.append(f"{name} = :{name}")
        values[f":{name}"] = value


def _expression(sets: list[str], removes: list[str]) -> str:
    clauses = []
    if sets:
        clauses.append("SET " + ", ".join(sets))
    if removes:
        clauses.append("REMOVE " + ", ".join(removes))
    return " ".join(clauses)


def _delivery(item: Mapping[str, Any]) -> Delivery:
    return Delivery.model_validate(from_attrs(item))


class WebhookQueue:
    """The webhook queue and its dead-letter queue."""

    def __init__(self, client: Any, queue_url: str, dead_letter_url: str | None = None) -> None:
        self._client = client
        self.queue_url = queue_url
        self.dead_letter_url = dead_letter_url

    def send(self, message: Mapping[str, Any], delay_seconds: int = 0) -> str:
        """Queue `message` (JSON), visible after `delay_seconds` (at most 900)."""
        response = self._client.send_message(
            QueueUrl=self.queue_url,
            MessageBody=json.dumps(message, separators=(",", ":")),
            DelaySeconds=min(delay_seconds, 900),
        )
        return str(response["MessageId"])

    def retry_after(self, receipt_handle: str, seconds: int) -> bool:
        """Make a received message visible again after `seconds` (its next attempt)."""
        try:
            self._client.change_message_visibility(
                QueueUrl=self.queue_url, ReceiptHandle=receipt_handle, VisibilityTimeout=seconds
            )
        except self._client.exceptions.ReceiptHandleIsInvalid:
            # Received again meanwhile (a duplicate batch, or its visibility ran out): the
            # newer receive owns the message now, and its handler schedules what comes next.
            logger.info("a webhook message was received again; its newer receive schedules it")
            return False
        except Exception:
            logger.warning(
                "could not set the visibility of a webhook message; it returns after the "
                "queue's visibility timeout",
                exc_info=True,
            )
            return False
        return True

    def redrive(self, limit: int = 1000) -> int:
        """Move up to `limit` messages from the dead-letter queue back to the webhook queue
        (receive, send, delete: what StartMessageMoveTask does, which moto lacks). Returns how
        many moved. A crash in between can leave a copy in both queues, which the delivery
        handler tolerates (it drops messages of succeeded or superseded deliveries)."""
        if not self.dead_letter_url:
            raise ValueError("no dead-letter queue configured (PAYFLOW_WEBHOOK_DLQ_URL)")
        moved = 0
        while moved < limit:
            messages = self._client.receive_message(
                QueueUrl=self.dead_letter_url,
                MaxNumberOfMessages=min(10, limit - moved),
                WaitTimeSeconds=0,
                VisibilityTimeout=60,
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            if not messages:
                break
            for message in messages:
                request: dict[str, Any] = {
                    "QueueUrl": self.queue_url,
                    "MessageBody": message["Body"],
                }
                if message.get("MessageAttributes"):
                    request["MessageAttributes"] = message["MessageAttributes"]
                self._client.send_message(**request)
                self._client.delete_message(
                    QueueUrl=self.dead_letter_url, ReceiptHandle=message["ReceiptHandle"]
                )
                moved += 1
        return moved

    def depth(self, dead_letter: bool = False) -> int:
        """Messages in a queue: visible, in flight and delayed (approximate, as SQS says)."""
        url = self.dead_letter_url if dead_letter else self.queue_url
        names = [
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed",
        ]
        attributes = self._client.get_queue_attributes(QueueUrl=url, AttributeNames=names)
        return sum(int(attributes["Attributes"].get(name, 0)) for name in names)
