"""Webhook endpoints and deliveries: statuses, subscriptions, URL rules, the retry schedule.

Nothing here performs I/O. A *delivery* is one event sent to one endpoint; its id is derived from
both (`delivery_id`), so every component that meets the same pair names the same delivery, and
receivers see that id as `webhook-id` on every attempt and can drop duplicates by it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, Field

from chalicelib.domain.addresses import is_global_address
from chalicelib.domain.analytics import EVENT_TYPES as ANALYTICS_EVENTS
from chalicelib.domain.charges import EVENT_TYPES as CHARGE_EVENTS
from chalicelib.domain.customers import EVENT_TYPES as CUSTOMER_EVENTS
from chalicelib.domain.disputes import EVENT_TYPES as DISPUTE_EVENTS
from chalicelib.domain.payment_intents import EVENT_TYPES as PAYMENT_INTENT_STATUS_EVENTS
from chalicelib.domain.payment_methods import EVENT_TYPES as PAYMENT_METHOD_EVENTS
from chalicelib.domain.setup_intents import EVENT_TYPES as SETUP_INTENT_EVENTS
from chalicelib.errors import ParameterInvalid
from chalicelib.reconciliation import EVENT_TYPES as RECONCILIATION_EVENTS

WILDCARD = "*"
ENDPOINT_DISABLED_EVENT = "webhook_endpoint.disabled"
"""Announces that PayFlow disabled an endpoint (410 Gone, or failing for too long)."""

EVENT_TYPES: frozenset[str] = frozenset(
    {
        "payment_intent.created",
        "payment_intent.payment_failed",
        *PAYMENT_INTENT_STATUS_EVENTS.values(),
        "refund.created",
        "refund.updated",
        "refund.failed",
        "charge.refund.updated",
        *CHARGE_EVENTS,
        *DISPUTE_EVENTS,
        *CUSTOMER_EVENTS,
        *PAYMENT_METHOD_EVENTS,
        *SETUP_INTENT_EVENTS,
        ENDPOINT_DISABLED_EVENT,
        *ANALYTICS_EVENTS,
        *RECONCILIATION_EVENTS,
    }
)
"""Every event type an endpoint may subscribe to."""

MAX_ENDPOINTS_PER_MERCHANT = 16
"""Stripe's limit on webhook endpoints per account."""
RESPONSE_EXCERPT_BYTES = 1024
"""How much of a receiver's answer (or of an error) the delivery log keeps."""
MAX_SECRET_GRACE_SECONDS = 7 * 86_400
"""The longest an old secret may stay valid after a roll."""
MAX_VISIBILITY_SECONDS = 43_200
"""SQS's ceiling for a visibility timeout, hence for one step of the retry schedule."""

_DELIVERY_PREFIX = "wd_"
_EVENT_PREFIX = "evt_"
_ENDPOINT_PREFIX = "we_"
_ID_BODY = 24


class EndpointStatus(StrEnum):
    """Whether an endpoint receives events."""

    ENABLED = "enabled"
    """New events are delivered to it."""
    DISABLED = "disabled"
    """Nothing is delivered: by the merchant, after a 410 Gone, or after failing for too long."""


class DeliveryStatus(StrEnum):
    """Where one event stands with one endpoint."""

    PENDING = "pending"
    """Queued, or waiting for its next scheduled attempt."""
    SUCCEEDED = "succeeded"
    """An attempt got a 2xx answer."""
    FAILED = "failed"
    """Every scheduled attempt failed (the message is in the dead-letter queue), or the endpoint
    was disabled or deleted before it succeeded. A manual retry or a resend may still succeed."""


class Trigger(StrEnum):
    """Why an attempt was made."""

    SCHEDULED = "scheduled"
    """The automatic schedule (first attempt and retries), also after a resend or DLQ redrive."""
    MANUAL = "manual"
    """A one-off retry asked for through the API; it does not change the schedule."""


class WebhookEndpoint(BaseModel):
    """A merchant's webhook endpoint as stored (secrets included: never return this as is)."""

    id: str
    merchant_id: str
    url: str
    enabled_events: list[str]
    status: EndpointStatus = EndpointStatus.ENABLED
    description: str | None = None
    metadata: dict[str, str] = Field(default_factory=dict)
    api_version: str | None = None
    created: int
    secret: str
    previous_secret: str | None = None
    previous_secret_expires_at: int | None = None
    failing_since: int | None = None
    """When the current run of failed attempts began (None while healthy)."""
    disabled_reason: str | None = None
    """Why it was disabled; shown by `health_api`, not in Stripe's object, which has no such
    field (docs/conformance.md)."""
    version: int = 0

    def to_api(self, *, with_secret: bool = False) -> dict[str, Any]:
        """Stripe's webhook_endpoint object; the secret only when just created or rolled."""
        body: dict[str, Any] = {
            "id": self.id,
            "object": "webhook_endpoint",
            "api_version": self.api_version,
            "application": None,
            "created": self.created,
            "description": self.description,
            "enabled_events": list(self.enabled_events),
            "livemode": False,
            "metadata": dict(self.metadata),
            "status": self.status.value,
            "url": self.url,
        }
        if with_secret:
            body["secret"] = self.secret
        return body

    def health_api(self) -> dict[str, Any]:
        """PayFlow's own `webhook_endpoint_health` object: whether and why the endpoint was
        disabled, and since when its deliveries fail (Stripe's object has no place for it)."""
        return {
            "object": "webhook_endpoint_health",
            "webhook_endpoint": self.id,
            "status": self.status.value,
            "disabled_reason": self.disabled_reason,
            "failing_since": self.failing_since,
        }

    def signing_secrets(self, now: float) -> list[str]:
        """The secrets to sign with: the current one, and the previous one during its grace."""
        secrets = [self.secret]
        expires = self.previous_secret_expires_at
        if self.previous_secret and expires is not None and now < expires:
            secrets.append(self.previous_secret)
        return secrets

    def subscribes_to(self, event_type: str) -> bool:
        """True when enabled and `event_type` is among its enabled_events (or it takes all)."""
        return self.status == EndpointStatus.ENABLED and (
            WILDCARD in self.enabled_events or event_type in self.enabled_events
        )


class Attempt(BaseModel):
    """One HTTP attempt of a delivery, as the delivery log keeps it."""

    attempt: int
    created: int
    trigger: Trigger
    status_code: int | None = None
    latency_ms: int
    response: str | None = None
    """The first KB of the receiver's answer."""
    error: str | None = None
    """Why no HTTP answer came (timeout, refused connection...), first KB."""
    url: str

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class Delivery(BaseModel):
    """One event for one endpoint, with its attempts."""

    id: str
    merchant_id: str
    event_id: str
    event_type: str
    endpoint_id: str
    status: DeliveryStatus = DeliveryStatus.PENDING
    created: int
    attempt_count: int = 0
    next_attempt_at: int | None = None
    attempts: list[Attempt] = Field(default_factory=list)
    token: str
    """Names the queue message currently in charge of the schedule; older ones are dropped."""
    dispatched: bool | None = None
    """False from a new token (a repeated stream batch's) until its message is known sent;
    None for a delivery whose token never changed."""

    def to_api(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "webhook_delivery",
            "event": self.event_id,
            "event_type": self.event_type,
            "webhook_endpoint": self.endpoint_id,
            "status": self.status.value,
            "created": self.created,
            "attempt_count": self.attempt_count,
            "next_attempt_at": self.next_attempt_at,
            "attempts": [a.model_dump(mode="json") for a in self.attempts],
            "livemode": False,
        }


def delivery_id(event_id: str, endpoint_id: str) -> str:
    """The delivery of `event_id` to `endpoint_id`: the same pair always gives the same id.

    The id starts with the event's time-ordered body, so a merchant's deliveries sort by the
    time of their events.
    """
    return (
        _DELIVERY_PREFIX
        + event_id.removeprefix(_EVENT_PREFIX)
        + endpoint_id.removeprefix(_ENDPOINT_PREFIX)
    )


def parse_delivery_id(value: str) -> tuple[str, str] | None:
    """(event id, endpoint id) of a delivery id, or None when `value` is not one."""
    body = value.removeprefix(_DELIVERY_PREFIX)
    if not value.startswith(_DELIVERY_PREFIX) or len(body) != 2 * _ID_BODY or not body.isalnum():
        return None
    return _EVENT_PREFIX + body[:_ID_BODY], _ENDPOINT_PREFIX + body[_ID_BODY:]


def check_enabled_events(values: Iterable[str]) -> list[str]:
    """The subscription list, or ParameterInvalid naming the first unknown type."""
    events = list(dict.fromkeys(values))
    if not events:
        raise ParameterInvalid(
            "enabled_events must list at least one event type (or '*').", param="enabled_events"
        )
    for value in events:
        if value != WILDCARD and value not in EVENT_TYPES:
            raise ParameterInvalid(
                f"Invalid event type: {value}. Use '*' or one of: {', '.join(sorted(EVENT_TYPES))}",
                param="enabled_events",
            )
    return events


Resolver = Callable[[str], Sequence[str]]
"""host name -> the IP addresses it resolves to."""


def check_url(url: str, *, allow_private: bool, resolve: Resolver) -> str:
    """`url` if PayFlow may POST to it, else ParameterInvalid.

    http and https only, a host, no credentials. Unless `allow_private` (the sandbox), targets on
    loopback, private, link-local, reserved or multicast addresses are refused, whether written as
    an address or reached through a name, so a merchant cannot make PayFlow call its own network.
    """
    try:
        parts = urlsplit(url)
    except ValueError:  # an unbalanced IPv6 bracket: `http://[x`
        parts = urlsplit("")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ParameterInvalid(
            f"Invalid URL: {url!r}. Use an absolute http:// or https:// URL.", param="url"
        )
    if parts.username or parts.password:
        raise ParameterInvalid("Invalid URL: credentials in the URL are not allowed.", param="url")
    try:
        _ = parts.port
    except ValueError:
        raise ParameterInvalid(f"Invalid URL: {url!r} has an invalid port.", param="url") from None
    if allow_private:
        return url
    host = parts.hostname
    try:
        addresses: Sequence[str] = [str(ipaddress.ip_address(host))]
    except ValueError:
        try:
            addresses = resolve(host)
        except (OSError, UnicodeError):
            addresses = []
        if not addresses:
            raise ParameterInvalid(
                f"Invalid URL: the host {host!r} does not resolve.", param="url"
            ) from None
    for address in addresses:
        if not is_public_address(address):
            raise ParameterInvalid(
                f"Invalid URL: {host!r} is a private, loopback or link-local address; webhook "
                "endpoints must be reachable on the public internet.",
                param="url",
            )
    return url


def is_public_address(address: str) -> bool:
    """True only for globally routable addresses (see chalicelib.domain.addresses)."""
    return is_global_address(address)


@dataclass(frozen=True)
class RetrySchedule:
    """Seconds to wait before each attempt: the first entry before attempt 1 (usually 0).

    Its length is the number of scheduled attempts, which must equal the webhook queue's
    maxReceiveCount so that the queue moves a message to the dead-letter queue right after its
    last attempt failed.
    """

    delays: tuple[int, ...]

    @classmethod
    def parse(cls, text: str) -> RetrySchedule:
        """From a comma-separated list of seconds such as ``0,5,300``."""
        try:
            delays = tuple(int(part) for part in text.split(",") if part.strip())
        except ValueError:
            raise ValueError(f"retry schedule {text!r}: use comma-separated seconds") from None
        if not delays:
            raise ValueError("the retry schedule needs at least one attempt")
        if any(d < 0 or d > MAX_VISIBILITY_SECONDS for d in delays):
            raise ValueError(
                f"retry schedule {text!r}: every delay must be 0..{MAX_VISIBILITY_SECONDS} s"
            )
        return cls(delays)

    @property
    def attempts(self) -> int:
        return len(self.delays)

    @property
    def first_delay(self) -> int:
        return self.delays[0]

    def delay_after(self, attempt: int) -> int | None:
        """Seconds until the attempt after scheduled attempt `attempt` (1-based); None after
        the last one."""
        return self.delays[attempt] if attempt < len(self.delays) else None


def excerpt(text: str | bytes | None) -> str | None:
    """The first KB of a response or an error, as text."""
    if text is None:
        return None
    raw = text.encode() if isinstance(text, str) else text
    return raw[:RESPONSE_EXCERPT_BYTES].decode("utf-8", errors="replace")


def should_disable(endpoint: WebhookEndpoint, now: float, disable_after_seconds: int) -> bool:
    """True when the endpoint has been failing for at least `disable_after_seconds`."""
    return (
        endpoint.status == EndpointStatus.ENABLED
        and endpoint.failing_since is not None
        and now - endpoint.failing_since >= disable_after_seconds
    )
