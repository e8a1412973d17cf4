"""Provider events (PSP webhooks): what one says, and what it may change.

Providers report asynchronous outcomes late, more than once and out of order. Each event is
normalized to a `PspEvent`; `transition` decides from the PaymentIntent as it is now whether the
event moves it, and only ever forward: an authorization is applied to a PaymentIntent still
waiting for its attempt, a capture to one still holding its authorization, and nothing to one
that has moved past (a late `authorized` after `captured` changes nothing).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from chalicelib.connectors.base import AuthorizationResult, AuthorizationStatus, Decline
from chalicelib.domain.disputes import DisputeReport
from chalicelib.domain.payment_intents import (
    PaymentIntent,
    PaymentIntentStatus,
    psp_idempotency_key,
)
from chalicelib.errors import InvalidRequestError

S = PaymentIntentStatus


class PspOutcome(StrEnum):
    """What a provider event reports about a payment."""

    AUTHORIZED = "authorized"
    """The payment is authorized (captured too, for automatic capture)."""
    CAPTURED = "captured"
    """Funds were captured."""
    FAILED = "failed"
    """The payment failed (declined, or the customer did not authenticate)."""
    DISPUTE = "dispute"
    """A dispute was opened or moved (`PspEvent.dispute` says how)."""
    REFUND_FAILED = "refund_failed"
    """A refund failed at the provider, possibly after it was reported paid out."""
    OTHER = "other"
    """Anything else: stored, not applied."""


class InvalidWebhook(InvalidRequestError):
    """A provider webhook whose signature does not verify or whose body is unreadable (400)."""

    default_code = "psp_webhook_invalid"


@dataclass(frozen=True)
class PspEvent:
    """One provider event, in PayFlow's terms."""

    id: str
    """The provider's own event id: a duplicate delivery carries the same one."""
    type: str
    """The provider's event name (payment.captured, AUTHORISATION, payment_intent.succeeded)."""
    outcome: PspOutcome
    payment_intent_id: str | None
    """The PayFlow PaymentIntent it concerns, read from what PayFlow sent the provider."""
    attempt_key: str | None = None
    """The idempotency key of the attempt it answers (for authorizations and failures)."""
    psp_reference: str | None = None
    """The provider's payment reference."""
    charge_id: str | None = None
    amount: int | None = None
    decline: Decline | None = None
    dispute: DisputeReport | None = None
    """What a DISPUTE event reports."""
    refund_id: str | None = None
    """The PayFlow refund a REFUND_FAILED event is about (the key PayFlow gave the provider)."""
    failure_reason: str | None = None
    """Why the refund failed, as Stripe's failure_reason."""
    references: tuple[str, ...] = ()
    """References under which the connector reads the event back (Adyen)."""
    body: dict[str, Any] = field(default_factory=dict)
    """The event as the provider sent it."""


@dataclass(frozen=True)
class Move:
    """The change an event makes: an attempt's answer, or a capture of `captured`."""

    result: AuthorizationResult | None = None
    captured: int | None = None


WAITING_FOR_ATTEMPT = frozenset({S.PROCESSING, S.REQUIRES_ACTION})


def payment_intent_of(key: str | None) -> str | None:
    """The PaymentIntent id a PayFlow idempotency key or reference starts with."""
    head = (key or "").split(":", 1)[0]
    return head if head.startswith("pi_") else None


def connector_of(key: str | None) -> str | None:
    """The connector id a PayFlow attempt key (`<pi>:<attempt>:<connector>`) names."""
    parts = (key or "").split(":")
    return parts[2] if len(parts) == 3 and parts[0].startswith("pi_") and parts[2] else None


def transition(pi: PaymentIntent, event: PspEvent, connector: str) -> Move | None:
    """The forward move `event` makes on `pi`, or None when it changes nothing.

    A failure is applied only while the customer is away (requires_action): during
    processing the orchestration owns the attempt and will hear the decline itself, and
    failing the PaymentIntent under it could let it charge another connector unseen.
    """
    current_attempt = psp_idempotency_key(pi.id, pi.attempt_count, connector)
    answers_current = event.attempt_key == current_attempt or (
        pi.status == S.REQUIRES_ACTION
        and pi.connector == connector
        and event.psp_reference is not None
        and event.psp_reference == pi.psp_reference
    )
    if event.outcome in (PspOutcome.AUTHORIZED, PspOutcome.CAPTURED):
        if pi.status in WAITING_FOR_ATTEMPT and answers_current and event.psp_reference:
            return Move(
                result=AuthorizationResult(
                    AuthorizationStatus.AUTHORIZED,
                    event.psp_reference,
                    event.charge_id or "",
                )
            )
        if (
            event.outcome == PspOutcome.CAPTURED
            and pi.status == S.REQUIRES_CAPTURE
            and pi.connector == connector
            and event.psp_reference == pi.psp_reference
        ):
            amount = event.amount or pi.amount_capturable
            return Move(captured=min(amount, pi.amount_capturable))
        return None
    if event.outcome == PspOutcome.FAILED and pi.status == S.REQUIRES_ACTION and answers_current:
        decline = event.decline or Decline("card_declined", "Your payment was declined.")
        return Move(
            result=AuthorizationResult(
                AuthorizationStatus.DECLINED,
                event.psp_reference or "",
                event.charge_id or "",
                decline=decline,
            )
        )
    return None
