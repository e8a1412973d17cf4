"""Refunds: their statuses, and the rules that decide whether one may be made."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

from chalicelib.domain.payment_intents import PaymentIntent, PaymentIntentStatus
from chalicelib.errors import ParameterInvalid, UnexpectedState


class RefundStatus(StrEnum):
    """Stripe's refund statuses."""

    PENDING = "pending"
    """Created; the saga holds the amount and asks the PSP."""
    REQUIRES_ACTION = "requires_action"
    """The PSP needs something from the customer (not produced by PayFlow's connectors)."""
    SUCCEEDED = "succeeded"
    """The PSP paid it out; the ledger settled the hold."""
    FAILED = "failed"
    """The PSP refused it; the hold went back to the merchant (`failure_reason` says why)."""
    CANCELED = "canceled"
    """Canceled while it required action."""


class RefundReason(StrEnum):
    DUPLICATE = "duplicate"
    FRAUDULENT = "fraudulent"
    REQUESTED_BY_CUSTOMER = "requested_by_customer"


class Refund(BaseModel):
    """A refund as stored: Stripe's fields plus the saga's bookkeeping."""

    id: str
    merchant_id: str
    amount: int
    currency: str
    payment_intent: str
    charge: str | None
    status: RefundStatus = RefundStatus.PENDING
    reason: RefundReason | None = None
    metadata: dict[str, str] = Field(default_factory=dict)
    created: int
    failure_reason: str | None = None
    balance_transaction: str | None = None
    failure_balance_transaction: str | None = None
    instructions_email: str | None = None
    # Bookkeeping.
    version: int = 1
    connector: str
    psp_reference: str
    held: bool = False
    """The saga's hold is in the ledger."""

    def to_api(self) -> dict[str, Any]:
        """Stripe's refund object. `failure_reason` and `failure_balance_transaction` appear
        only on a failed refund, `instructions_email` only when given: Stripe's schema has them
        non-nullable, so it omits them."""
        body: dict[str, Any] = {
            "id": self.id,
            "object": "refund",
            "amount": self.amount,
            "balance_transaction": self.balance_transaction,
            "charge": self.charge,
            "created": self.created,
            "currency": self.currency,
            "metadata": dict(self.metadata),
            "payment_intent": self.payment_intent,
            "reason": self.reason.value if self.reason else None,
            "receipt_number": None,
            "source_transfer_reversal": None,
            "status": self.status.value,
            "transfer_reversal": None,
        }
        if self.failure_reason is not None:
            body["failure_reason"] = self.failure_reason
        if self.failure_balance_transaction is not None:
            body["failure_balance_transaction"] = self.failure_balance_transaction
        if self.instructions_email is not None:
            body["instructions_email"] = self.instructions_email
        return body


def refundable(pi: PaymentIntent, amount: int | None) -> int:
    """The amount a new refund of `pi` may take (all that is left when `amount` is None)."""
    if pi.status != PaymentIntentStatus.SUCCEEDED:
        hint = (
            " Cancel it instead to release the authorization."
            if (pi.status == PaymentIntentStatus.REQUIRES_CAPTURE)
            else ""
        )
        raise UnexpectedState(
            f"This PaymentIntent has a status of {pi.status.value}; only a succeeded "
            f"PaymentIntent can be refunded.{hint}",
            param="payment_intent",
        )
    left = pi.amount_received - pi.amount_refunded
    if left <= 0:
        raise ParameterInvalid(
            f"PaymentIntent {pi.id} has already been refunded.",
            param="payment_intent",
            code="charge_already_refunded",
        )
    wanted = left if amount is None else amount
    if wanted > left:
        raise ParameterInvalid(
            f"Refund amount ({wanted}) is greater than unrefunded amount on the payment ({left}).",
            param="amount",
            code="amount_too_large",
        )
    return wanted
