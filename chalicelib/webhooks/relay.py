"""The outbox relay: new events on the payments table's stream -> one queued delivery per
subscribed endpoint.

Duplicate-batch safety (a stream batch may be handed over twice, or retried after a crash):

1. The delivery id is derived from (event, endpoint), and the delivery is created with
   `attribute_not_exists(pk)`. A second run finds it.
2. The delivery carries a random `token`; the queued message carries the same token. A second
   run that finds the delivery still waiting for its first attempt cannot tell whether the
   first run's message was sent (it may have died between the write and the send), so it gives
   the delivery a new token (conditionally) and sends a new message: the delivery handler drops
   any message whose token is not the delivery's current one, so an older copy is discarded.
   Marking each sent message instead would cost every delivery a write to spare the rare
   repeated batch a message. A new token is marked, though (`dispatched`, false from the
   retoken until its message is sent): the old message may still be attempted after the
   retoken, and were the new message never sent (the run died between the two), a third run
   would take that attempt for the new message's and queue nothing, leaving the delivery
   pending with no message (found while looking into deliveries a 10,000-payment chaos run
   left pending). A run that dies between the new token and its send leaves no message either;
   the batch it failed is handed over again, as a stream retries a failed invocation (never
   moving past it), and the next run sends one.
3. Whatever still slips through (the first copy already being sent when the second arrives)
   carries the same `webhook-id` (the delivery id), so receivers can drop it.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from chalicelib.concurrency import each_concurrently
from chalicelib.dal.dynamo import from_image
from chalicelib.dal.objects import object_data
from chalicelib.dal.webhooks import EVENT, WebhookQueue, WebhookStore
from chalicelib.domain.events import Event
from chalicelib.domain.webhooks import (
    Delivery,
    DeliveryStatus,
    RetrySchedule,
    Trigger,
    WebhookEndpoint,
    delivery_id,
)
from chalicelib.faults import Faults
from chalicelib.observability import PAYMENT_EVENT_METRICS, observability

logger = logging.getLogger("payflow.webhooks.relay")


def new_token() -> str:
    return secrets.token_hex(8)


class Dispatcher:
    """Creates deliveries and puts the messages that drive them on the webhook queue."""

    def __init__(
        self,
        store: WebhookStore,
        queue: WebhookQueue,
        schedule: RetrySchedule,
        faults: Faults,
        *,
        clock: Callable[[], float] = time.time,
        token: Callable[[], str] = new_token,
    ) -> None:
        self._store = store
        self._queue = queue
        self._schedule = schedule
        self._faults = faults
        self._clock = clock
        self._token = token

    def open(self, event: Event, endpoint: WebhookEndpoint) -> Delivery | None:
        """Create and queue the delivery of `event` to `endpoint`, once however often called.

        Returns the delivery when this call queued a message, None when an earlier call had.
        """
        now = int(self._clock())
        delivery = Delivery(
            id=delivery_id(event.id, endpoint.id),
            merchant_id=event.merchant_id,
            event_id=event.id,
            event_type=event.type,
            endpoint_id=endpoint.id,
            created=now,
            next_attempt_at=now + self._schedule.first_delay,
            token=self._token(),
        )
        if self._store.create_delivery(delivery):
            # Crash here: the delivery is written, its message not sent yet.
            self._faults.check("relay_before_enqueue")
        else:
            existing = self._store.delivery(event.id, endpoint.id)
            if existing is None:
                return None
            if existing.status != DeliveryStatus.PENDING:
                return None
            if existing.attempt_count > 0 and existing.dispatched is not False:
                # Its message was delivered already: it is in the log, not lost.
                return None
            # Never attempted, or attempted by a message an earlier repeat's new token made
            # stale while that token's own message may never have been sent.
            delivery = existing.model_copy(update={"token": self._token(), "dispatched": False})
            if not self._store.retoken(
                existing, delivery.token, next_attempt_at=None, reset_status=False
            ):
                return None
            # Crash here: the new token is written, its message not sent yet.
            self._faults.check("relay_before_enqueue")
            self._enqueue(delivery)
            self._store.mark_dispatched(delivery)
            return delivery
        self._enqueue(delivery)
        return delivery

    def requeue(self, delivery: Delivery) -> Delivery | None:
        """Start the delivery's schedule over with a new message (resend); the old message, if
        any is left, is dropped by its stale token."""
        token = self._token()
        next_at = int(self._clock()) + self._schedule.first_delay
        if not self._store.retoken(delivery, token, next_attempt_at=next_at, reset_status=True):
            return None
        updated = delivery.model_copy(
            update={"token": token, "status": DeliveryStatus.PENDING, "next_attempt_at": next_at}
        )
        self._enqueue(updated)
        return updated

    def retry_now(self, delivery: Delivery) -> None:
        """Queue one manual attempt, outside the schedule."""
        self._queue.send({"delivery": delivery.id, "trigger": Trigger.MANUAL.value})

    def _enqueue(self, delivery: Delivery) -> None:
        self._queue.send(
            {"delivery": delivery.id, "token": delivery.token, "trigger": Trigger.SCHEDULED.value},
            delay_seconds=self._schedule.first_delay,
        )
        self._faults.check("relay_after_enqueue")


class Relay:
    """Handles batches of stream records from the payments table."""

    def __init__(
        self, store: WebhookStore, dispatcher: Dispatcher, faults: Faults | None = None
    ) -> None:
        self._store = store
        self._dispatcher = dispatcher
        self._faults = faults or Faults()

    def handle(self, records: Iterable[Mapping[str, Any]]) -> int:
        """Queue a delivery for every (new event, subscribed endpoint) in `records` (Lambda
        DynamoDB stream records); returns how many were queued. Raises on failure, so that the
        whole batch is delivered again: every step is safe to repeat."""
        endpoints: dict[str, list[WebhookEndpoint]] = {}
        events = new_events(records)
        for event in events:
            if event.merchant_id not in endpoints:
                endpoints[event.merchant_id] = self._store.all_endpoints(event.merchant_id)
        pairs = [
            (event, endpoint)
            for event in events
            for endpoint in endpoints[event.merchant_id]
            if endpoint.subscribes_to(event.type)
        ]
        # Each pair's delivery is independent of the others (receivers get no ordering
        # promise, as from Stripe): open them side by side.
        opened = each_concurrently(self._open, pairs)
        self._faults.check("relay_after_batch")
        count_payment_events(events)
        return sum(1 for delivery in opened if delivery is not None)

    def _open(self, pair: tuple[Event, WebhookEndpoint]) -> Delivery | None:
        event, endpoint = pair
        with observability().correlate(event_id=event.id, event_type=event.type):
            return self._dispatcher.open(event, endpoint)


def count_payment_events(events: Iterable[Event]) -> None:
    """Payments created, succeeded and failed, counted from the outbox: every state change
    writes its event, and the relay reads each one (at least once: a batch that is handed over
    again after a failure counts again, as any metric a retried Lambda emits)."""
    counts: dict[Any, float] = {}
    for event in events:
        metric = PAYMENT_EVENT_METRICS.get(event.type)
        if metric is not None:
            counts[metric] = counts.get(metric, 0) + 1
    if counts:
        observability().emit(counts)


def new_events(records: Iterable[Mapping[str, Any]]) -> list[Event]:
    """The events inserted by `records`, in stream order (updates and other items are not)."""
    events = []
    for record in records:
        if record.get("eventName") != "INSERT":
            continue
        image = (record.get("dynamodb") or {}).get("NewImage") or {}
        if image.get("kind", {}).get("S") != EVENT:
            continue
        events.append(Event.model_validate(object_data(from_image(image))))
    return events
