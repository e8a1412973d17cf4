"""The simulator's own webhooks: what a real PSP sends when an asynchronous payment ends.

A UPI request or a wallet approval is decided by the customer, away from PayFlow. The simulator
then does what Razorpay or Adyen do: it signs an event and POSTs it to PayFlow's
`/v1/psp_webhooks/simulator`, again until PayFlow answers 2xx. Events wait in the simulator's
own table (an outbox: one record per event, and a pending set naming the undelivered ones), so
an event is never lost between the customer's decision and its delivery. Asked to by its
settings, and drawn from its seed, the simulator delivers a batch out of order and some events
twice, as providers do; PayFlow must apply each exactly once.

Signature: `PayFlow-Simulator-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`,
Stripe's scheme under a header of the simulator's own.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from chalicelib.connectors.base import Decline
from chalicelib.dal.simulator import SimulatorLedger
from chalicelib.domain.psp_events import InvalidWebhook, PspEvent, PspOutcome

if TYPE_CHECKING:
    from chalicelib.webhooks.sender import Sender

SIGNATURE_HEADER = "PayFlow-Simulator-Signature"
TOLERANCE_SECONDS = 300
"""How old a signature may be (Stripe's default tolerance): a replayed old body is refused."""
PENDING = "webhooks"
OUTCOMES = {
    "payment.authorized": PspOutcome.AUTHORIZED,
    "payment.captured": PspOutcome.CAPTURED,
    "payment.failed": PspOutcome.FAILED,
}
"""The simulator's event types and what each reports."""

Post = Callable[[str, bytes, dict[str, str]], int]
"""Sends one webhook: (url, body, headers) -> the HTTP status PayFlow answered."""


def post_with(sender: Sender) -> Post:
    """A `Post` over PayFlow's webhook HTTP client (no third-party library, so the Lambda
    package needs nothing more): the status answered, or OSError when nothing answered."""

    def post(url: str, body: bytes, headers: dict[str, str]) -> int:
        result = sender.post(url, body, headers)
        if result.status_code is None:
            raise OSError(result.error or f"no answer from {url}")
        return result.status_code

    return post


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """The signature header's value for `body` sent at `timestamp`."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={digest.hexdigest()}"


def webhook_events(
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    now: Callable[[], float] = time.time,
) -> list[PspEvent]:
    """A simulator webhook, verified (headers are lower-cased); raises InvalidWebhook when the
    signature does not match or is older than the tolerance."""
    parts = dict(
        part.split("=", 1)
        for part in headers.get(SIGNATURE_HEADER.lower(), "").split(",")
        if "=" in part
    )
    timestamp, given = parts.get("t", ""), parts.get("v1", "")
    if not timestamp.isdigit() or not given:
        raise InvalidWebhook(f"The {SIGNATURE_HEADER} header is missing or malformed.")
    expected = sign(secret, body, int(timestamp)).split("v1=", 1)[1]
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise InvalidWebhook(f"The {SIGNATURE_HEADER} does not match the body.")
    if abs(now() - int(timestamp)) > TOLERANCE_SECONDS:
        raise InvalidWebhook(f"The {SIGNATURE_HEADER} timestamp is outside the tolerance.")
    try:
        event = json.loads(body)
        data = event["data"]["object"]
        name, event_id = str(event["type"]), str(event["id"])
    except (ValueError, KeyError, TypeError) as error:
        raise InvalidWebhook("The simulator webhook body is not an event.") from error
    decline = data.get("decline")
    return [
        PspEvent(
            id=event_id,
            type=name,
            outcome=OUTCOMES.get(name, PspOutcome.OTHER),
            payment_intent_id=data.get("payment_intent"),
            attempt_key=data.get("attempt_key"),
            psp_reference=data.get("psp_reference"),
            charge_id=data.get("charge_id"),
            amount=data.get("amount") if isinstance(data.get("amount"), int) else None,
            decline=Decline(**decline) if isinstance(decline, dict) else None,
            body=event,
        )
    ]


class SimulatorOutbox:
    """The simulator's undelivered webhooks, and their delivery."""

    def __init__(
        self,
        ledger: SimulatorLedger,
        *,
        clock: Callable[[], float] = time.time,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._ledger = ledger
        self._clock = clock
        """Business time: the events' `created`."""
        self._wall_clock = wall_clock
        """Real time: signatures and retry backoff govern what happens now."""

    def emit(self, connector: str, event_type: str, event_id: str, data: dict[str, Any]) -> None:
        """Queue one event (an event id queued twice is one event)."""
        event = {
            "id": event_id,
            "object": "event",
            "type": event_type,
            "created": int(self._clock()),
            "data": {"object": data},
        }
        stored = self._ledger.record_once(
            "webhook",
            event_id,
            {"connector": connector, "body": json.dumps(event), "attempts": 0, "next_at": 0},
        )
        if not stored.get("delivered"):
            self._ledger.add_pending(PENDING, event_id)

    def deliver(
        self,
        post: Post,
        url: str,
        secret: str,
        settings: Callable[[str], Any],
    ) -> int:
        """POST every due pending event to `url`; returns how many PayFlow took (2xx).

        `settings(connector)` gives the emitting simulator's settings: with
        `webhook_reorder` a batch goes out shuffled, and `webhook_duplicate_rate` of its events
        twice, both drawn from the seed and the batch. A refused or failed post stays pending
        and is sent again after a backoff that doubles up to a minute."""
        ids = sorted(self._ledger.pending(PENDING))
        now = self._wall_clock()
        due = []
        for event_id in ids:
            record = self._ledger.find("webhook", event_id)
            if record is None or record.get("delivered"):
                self._ledger.remove_pending(PENDING, event_id)
            elif float(record.get("next_at", 0)) <= now:
                due.append((event_id, record))
        if not due:
            return 0
        first = settings(str(due[0][1]["connector"]))
        rng = random.Random(f"{first.seed}:webhooks:{','.join(i for i, _ in due)}")
        if first.webhook_reorder:
            rng.shuffle(due)
        delivered = 0
        for event_id, record in due:
            body = str(record["body"]).encode()
            copies = (
                2 if rng.random() < settings(str(record["connector"])).webhook_duplicate_rate else 1
            )
            statuses = [self._post(post, url, secret, body) for _ in range(copies)]
            if any(200 <= status < 300 for status in statuses):
                self._ledger.update("webhook", event_id, {"delivered": True})
                self._ledger.remove_pending(PENDING, event_id)
                delivered += 1
                continue
            attempts = int(record.get("attempts", 0)) + 1
            self._ledger.update(
                "webhook",
                event_id,
                {"attempts": attempts, "next_at": int(now + min(2**attempts, 60))},
            )
        return delivered

    def _post(self, post: Post, url: str, secret: str, body: bytes) -> int:
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(secret, body, int(self._wall_clock())),
        }
        try:
            return post(url, body, headers)
        except OSError:
            return 0  # PayFlow did not answer: the event stays pending
