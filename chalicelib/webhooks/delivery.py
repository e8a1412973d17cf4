"""The delivery handler: one queued message -> one signed POST, its log entry, and what next.

The retry schedule lives in the message's visibility: after a failed attempt N the handler sets
the visibility timeout to the schedule's next delay and reports the message as failed, so SQS
hands it back when the next attempt is due, with ApproximateReceiveCount = N + 1. After the last
scheduled attempt the delivery is marked failed and the message is made visible at once: its
next receive exceeds the queue's maxReceiveCount (equal to the number of attempts) and the
queue's redrive policy moves it to the dead-letter queue.

Every message is safe to handle twice: a scheduled message of a succeeded delivery, or one whose
token is no longer the delivery's, is dropped; an attempt is appended to the log with a
condition that never moves a succeeded delivery back, nor a failed one back to pending (an older
copy of the message, handled late, cannot reopen what a newer receive sent to the DLQ).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from chalicelib.concurrency import Once, each_concurrently
from chalicelib.dal.events import EventStore
from chalicelib.dal.webhooks import WebhookQueue, WebhookStore
from chalicelib.domain.events import Event
from chalicelib.domain.ids import new_id
from chalicelib.domain.webhooks import (
    ENDPOINT_DISABLED_EVENT,
    Attempt,
    Delivery,
    DeliveryStatus,
    EndpointStatus,
    RetrySchedule,
    Trigger,
    WebhookEndpoint,
    parse_delivery_id,
    should_disable,
)
from chalicelib.errors import StaleWrite
from chalicelib.faults import Faults
from chalicelib.observability import Metric, id_time_ms, observability
from chalicelib.webhooks.sender import Sender, SendResult
from chalicelib.webhooks.signing import signature_headers

logger = logging.getLogger("payflow.webhooks.delivery")

GONE = 410


@dataclass(frozen=True)
class QueuedMessage:
    """The parts of an SQS record the delivery handler uses."""

    message_id: str
    receipt_handle: str
    receive_count: int
    delivery_id: str
    trigger: Trigger
    token: str | None

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> QueuedMessage:
        """From one record of a Lambda SQS event."""
        body = json.loads(record["body"])
        return cls(
            message_id=record["messageId"],
            receipt_handle=record["receiptHandle"],
            receive_count=int((record.get("attributes") or {}).get("ApproximateReceiveCount", 1)),
            delivery_id=str(body["delivery"]),
            trigger=Trigger(body.get("trigger", Trigger.SCHEDULED.value)),
            token=body.get("token"),
        )


class EndpointHealth:
    """Tracks how long an endpoint has been failing and disables it, announcing it with an
    event written in the same transaction."""

    def __init__(
        self,
        store: WebhookStore,
        *,
        disable_after_seconds: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._disable_after = disable_after_seconds
        self._clock = clock

    def succeeded(self, endpoint: WebhookEndpoint) -> None:
        if endpoint.failing_since is None:
            return
        self._update(endpoint, lambda e: e.model_copy(update={"failing_since": None}))

    def failed(self, endpoint: WebhookEndpoint) -> bool:
        """Note a failed attempt; True when the endpoint is (now) disabled for failing too long."""
        now = self._clock()
        if should_disable(endpoint, now, self._disable_after):
            days = self._disable_after / 86_400
            return self.disable(
                endpoint,
                f"failing since {endpoint.failing_since} (for more than "
                f"{self._disable_after} s = {days:g} days)",
            )
        if endpoint.failing_since is None:
            self._update(endpoint, lambda e: e.model_copy(update={"failing_since": int(now)}))
        return endpoint.status == EndpointStatus.DISABLED

    def disable(self, endpoint: WebhookEndpoint, reason: str) -> bool:
        """Disable the endpoint once, with a `webhook_endpoint.disabled` event."""
        for _ in range(3):
            if endpoint.status == EndpointStatus.DISABLED:
                return True
            disabled = endpoint.model_copy(
                update={
                    "status": EndpointStatus.DISABLED,
                    "disabled_reason": reason,
                    "version": endpoint.version + 1,
                }
            )
            event = Event(
                id=new_id("evt"),
                merchant_id=endpoint.merchant_id,
                type=ENDPOINT_DISABLED_EVENT,
                created=int(self._clock()),
                data_object=disabled.to_api(),
                previous_attributes={"status": EndpointStatus.ENABLED.value},
            )
            try:
                self._store.save_endpoint(disabled, endpoint.version, events=(event,))
            except StaleWrite:
                current = self._store.endpoint(endpoint.merchant_id, endpoint.id)
                if current is None:
                    return True
                endpoint = current
                continue
            logger.warning("webhook endpoint %s disabled: %s", endpoint.id, reason)
            return True
        return False

    def _update(
        self,
        endpoint: WebhookEndpoint,
        change: Callable[[WebhookEndpoint], WebhookEndpoint],
    ) -> None:
        # Bookkeeping only: losing a race to a concurrent update is harmless.
        updated = change(endpoint).model_copy(update={"version": endpoint.version + 1})
        try:
            self._store.save_endpoint(updated, endpoint.version)
        except StaleWrite:
            logger.info("endpoint %s changed concurrently; health note skipped", endpoint.id)


class BatchReads:
    """What one batch of messages reads, each item once for the whole batch: the endpoints the
    messages go to, and the partition of each event they deliver (the event and its
    deliveries).

    A batch's messages are handled at the same moment, side by side, so one read serves them
    all as well as one read each would: a change made meanwhile (an endpoint's URL, a rolled
    secret, an endpoint disabled, a delivery given a new token) reaches the next batch either
    way. Ten messages to one endpoint cost one GetItem instead of ten, and an event's
    deliveries to its endpoints, queued together, one Query."""

    def __init__(self, store: WebhookStore, events: EventStore) -> None:
        self._store = store
        self._events = events
        self._reads: dict[tuple[str, ...], Once[Any]] = {}
        self._lock = threading.Lock()

    def endpoint(self, merchant_id: str, endpoint_id: str) -> WebhookEndpoint | None:
        """The merchant's endpoint, or None (unknown, deleted or someone else's)."""
        return self._once(
            ("endpoint", merchant_id, endpoint_id),
            lambda: self._store.endpoint(merchant_id, endpoint_id),
        )

    def event_and_delivery(
        self, event_id: str, endpoint_id: str
    ) -> tuple[Event | None, Delivery | None]:
        """The event and its delivery to the endpoint, read together (they share a partition:
        `EventStore.with_deliveries`)."""
        event, deliveries = self._once(
            ("event", event_id), lambda: self._events.with_deliveries(event_id)
        )
        for item in deliveries:
            if item.get("endpoint_id") == endpoint_id:
                return event, Delivery.model_validate(item)
        return event, None

    def _once(self, key: tuple[str, ...], read: Callable[[], Any]) -> Any:
        with self._lock:
            once = self._reads.get(key)
            if once is None:
                once = self._reads[key] = Once(read)
        return once()


class Deliverer:
    """Handles batches of webhook queue messages, each in its own thread."""

    def __init__(
        self,
        store: WebhookStore,
        events: EventStore,
        queue: WebhookQueue,
        sender: Sender,
        schedule: RetrySchedule,
        health: EndpointHealth,
        *,
        clock: Callable[[], float] = time.time,
        max_workers: int = 10,
        faults: Faults | None = None,
    ) -> None:
        self._store = store
        self._events = events
        self._queue = queue
        self._sender = sender
        self._schedule = schedule
        self._health = health
        self._clock = clock
        self._max_workers = max_workers
        self._faults = faults or Faults()

    def handle(self, records: Iterable[Mapping[str, Any]]) -> list[str]:
        """Deliver every message of a Lambda SQS event; returns the message ids to keep in the
        queue (their next attempt is scheduled, or they are bound for the dead-letter queue)."""
        messages = [QueuedMessage.from_record(record) for record in records]
        reads = BatchReads(self._store, self._events)
        outcomes = each_concurrently(
            lambda message: self.deliver(message, reads), messages, self._max_workers
        )
        return [m.message_id for m, keep in zip(messages, outcomes, strict=True) if keep]

    def deliver(self, message: QueuedMessage, reads: BatchReads | None = None) -> bool:
        """One attempt for one message; True when the message must stay in the queue.
        `reads` holds what its batch has read (None: read afresh)."""
        with observability().correlate(
            delivery_id=message.delivery_id,
            message_id=message.message_id,
            receive_count=message.receive_count,
        ):
            return self._deliver(message, reads or BatchReads(self._store, self._events))

    def _deliver(self, message: QueuedMessage, reads: BatchReads) -> bool:
        ids = parse_delivery_id(message.delivery_id)
        event, delivery = reads.event_and_delivery(*ids) if ids else (None, None)
        if delivery is None:
            logger.warning("message %s names no delivery: dropped", message.message_id)
            return False
        scheduled = message.trigger == Trigger.SCHEDULED
        if scheduled and (
            delivery.status == DeliveryStatus.SUCCEEDED or message.token != delivery.token
        ):
            logger.info("delivery %s: duplicate or superseded message dropped", delivery.id)
            return False
        endpoint = reads.endpoint(delivery.merchant_id, delivery.endpoint_id)
        if event is not None and event.merchant_id != delivery.merchant_id:
            event = None
        if endpoint is None or event is None or endpoint.status == EndpointStatus.DISABLED:
            if scheduled:
                self._store.fail(delivery, only_token=delivery.token)
            return False
        result = self._post(delivery, endpoint, event)
        # Crash here: the receiver has the webhook, the log does not know yet.
        self._faults.check("deliver_after_post")
        self._measure(event, result)
        attempt = Attempt(
            attempt=delivery.attempt_count + 1,
            created=int(self._clock()),
            trigger=message.trigger,
            status_code=result.status_code,
            latency_ms=result.latency_ms,
            response=result.response,
            error=result.error,
            url=endpoint.url,
        )
        if result.ok:
            self._store.record_attempt(delivery, attempt, status=DeliveryStatus.SUCCEEDED)
            self._health.succeeded(endpoint)
            return False
        if result.status_code == GONE:
            self._store.record_attempt(delivery, attempt, status=DeliveryStatus.FAILED)
            self._health.disable(endpoint, "the endpoint answered 410 Gone")
            return False
        disabled = self._health.failed(endpoint)
        if not scheduled:
            self._store.record_attempt(delivery, attempt, status=None)
            return False
        next_delay = None if disabled else self._schedule.delay_after(message.receive_count)
        if next_delay is None:
            self._store.record_attempt(delivery, attempt, status=DeliveryStatus.FAILED)
            if disabled:
                return False
            # Visible now: its next receive exceeds maxReceiveCount, and SQS moves it to the DLQ.
            self._queue.retry_after(message.receipt_handle, 0)
            self._dead_lettered(delivery)
            return True
        self._store.record_attempt(
            delivery,
            attempt,
            status=DeliveryStatus.PENDING,
            next_attempt_at=int(self._clock()) + next_delay,
        )
        self._queue.retry_after(message.receipt_handle, next_delay)
        return True

    def _measure(self, event: Event, result: SendResult) -> None:
        values = {Metric.WEBHOOK_ATTEMPTS: 1.0, Metric.WEBHOOK_LATENCY: float(result.latency_ms)}
        if result.ok:
            written = id_time_ms(event.id)
            if written is not None:
                values[Metric.OUTBOX_LAG] = max(0.0, self._clock() * 1000 - written)
        else:
            values[Metric.WEBHOOK_FAILURES] = 1.0
            logger.info(
                "webhook attempt failed",
                extra={"status_code": result.status_code, "error": result.error},
            )
        observability().emit(values)

    def _dead_lettered(self, delivery: Delivery) -> None:
        logger.warning("delivery %s failed its last attempt: to the dead-letter queue", delivery.id)
        observability().count(Metric.WEBHOOKS_DEAD_LETTERED)
        # Its message moves on its next receive: count it in now.
        report_dlq_depth(self._queue, pending=1)

    def _post(self, delivery: Delivery, endpoint: WebhookEndpoint, event: Event) -> SendResult:
        body = json.dumps(event.to_api(), separators=(",", ":")).encode()
        now = self._clock()
        headers = signature_headers(endpoint.signing_secrets(now), delivery.id, int(now), body)
        return self._sender.post(endpoint.url, body, headers)


def report_dlq_depth(queue: WebhookQueue, *, pending: int = 0) -> int | None:
    """Emit the dead-letter queue's depth (the DlqDepth gauge) and return it; None when it
    cannot be read (no dead-letter queue configured, or SQS failing)."""
    if not queue.dead_letter_url:
        return None
    try:
        depth = queue.depth(dead_letter=True) + pending
    except Exception:
        logger.warning("could not read the dead-letter queue's depth", exc_info=True)
        return None
    observability().emit({Metric.DLQ_DEPTH: depth})
    return depth
