"""The Charge: one authorization attempt that reached a PSP, and what became of its money.

A PaymentIntent makes a Charge whenever a PSP answers an attempt (authorized or declined);
capture, cancel and refunds move it. These functions derive each next version from the
PaymentIntent's own change, so a Charge can never disagree with its PaymentIntent.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

from chalicelib.domain.contact import BillingDetails, Shipping, shipping_api
from chalicelib.domain.payment_intents import PaymentIntent, PaymentIntentStatus
from chalicelib.domain.payment_methods import charge_details
from chalicelib.domain.test_cards import describe

EVENT_TYPES = (
    "charge.succeeded",
    "charge.failed",
    "charge.captured",
    "charge.refunded",
    "charge.updated",
)
"""What Charge changes announce."""


class ChargeStatus(StrEnum):
    """Stripe's three Charge statuses."""

    SUCCEEDED = "succeeded"
    """The PSP authorized it (captured or not)."""
    PENDING = "pending"
    """The PSP has not decided yet (no PayFlow connector leaves a charge here)."""
    FAILED = "failed"
    """The PSP declined it."""


class Charge(BaseModel):
    """A Charge as stored."""

    id: str
    merchant_id: str
    payment_intent: str
    amount: int
    currency: str
    created: int
    status: ChargeStatus
    card: str
    """The test card charged: what payment_method_details describes."""
    payment_method: str | None = None
    customer: str | None = None
    captured: bool = False
    amount_captured: int = 0
    amount_refunded: int = 0
    balance_transaction: str | None = None
    failure_code: str | None = None
    failure_message: str | None = None
    decline_code: str | None = None
    description: str | None = None
    metadata: dict[str, str] = Field(default_factory=dict)
    receipt_email: str | None = None
    statement_descriptor: str | None = None
    statement_descriptor_suffix: str | None = None
    shipping: Shipping | None = None
    transfer_group: str | None = None
    billing_details: BillingDetails = BillingDetails()
    connector: str = ""
    disputed: bool = False
    """A dispute was opened on it (Stripe keeps the flag once set)."""
    version: int = 1

    @property
    def refunded(self) -> bool:
        """Fully refunded: nothing captured remains (an uncaptured charge released counts)."""
        return self.status == ChargeStatus.SUCCEEDED and self.amount_refunded >= self.amount

    def to_api(self) -> dict[str, Any]:
        card = describe(self.card)
        return {
            "id": self.id,
            "object": "charge",
            "amount": self.amount,
            "amount_captured": self.amount_captured,
            "amount_refunded": self.amount_refunded,
            "application": None,
            "application_fee": None,
            "application_fee_amount": None,
            "balance_transaction": self.balance_transaction,
            "billing_details": self.billing_details.to_api(),
            "calculated_statement_descriptor": self.statement_descriptor or "PAYFLOW",
            "captured": self.captured,
            "created": self.created,
            "currency": self.currency,
            "customer": self.customer,
            "description": self.description,
            "disputed": self.disputed,
            "failure_balance_transaction": None,
            "failure_code": self.failure_code,
            "failure_message": self.failure_message,
            "fraud_details": {},
            "livemode": False,
            "metadata": dict(self.metadata),
            "on_behalf_of": None,
            "outcome": self._outcome(),
            "paid": self.status == ChargeStatus.SUCCEEDED,
            "payment_intent": self.payment_intent,
            "payment_method": self.payment_method,
            "payment_method_details": charge_details(card) if card else None,
            "receipt_email": self.receipt_email,
            "receipt_number": None,
            "receipt_url": None,
            "refunded": self.refunded,
            "review": None,
            "shipping": shipping_api(self.shipping),
            "source_transfer": None,
            "statement_descriptor": self.statement_descriptor,
            "statement_descriptor_suffix": self.statement_descriptor_suffix,
            "status": self.status.value,
            "transfer_data": None,
            "transfer_group": self.transfer_group,
        }

    def _outcome(self) -> dict[str, Any]:
        common = {
            "advice_code": None,
            "network_advice_code": None,
            "network_decline_code": None,
            "risk_level": "normal",
            "risk_score": 20,
        }
        if self.status != ChargeStatus.FAILED:
            return {
                **common,
                "network_status": "approved_by_network",
                "reason": None,
                "seller_message": "Payment complete.",
                "type": "authorized",
            }
        if self.decline_code == "fraudulent":
            return {
                **common,
                "network_status": "not_sent_to_network",
                "reason": "highest_risk_level",
                "risk_level": "highest",
                "risk_score": 95,
                "seller_message": "Stripe blocked this payment as too risky.",
                "type": "blocked",
            }
        return {
            **common,
            "network_status": "declined_by_network",
            "reason": self.decline_code or self.failure_code,
            "seller_message": "The bank did not return any further details with this decline.",
            "type": "issuer_declined",
        }


def balance_transaction_of(charge_id: str) -> str:
    """The id of the balance transaction a capture of `charge_id` posts (see domain.ledger)."""
    return f"txn_charge_{charge_id}"


def made_by(
    pi: PaymentIntent, charge_id: str, created: int, billing: BillingDetails | None
) -> Charge:
    """The Charge a PSP's answer to `pi`'s current attempt makes (`pi` after the answer)."""
    error = pi.last_payment_error
    failed = pi.status == PaymentIntentStatus.REQUIRES_PAYMENT_METHOD and error is not None
    captured = pi.status == PaymentIntentStatus.SUCCEEDED
    return Charge(
        id=charge_id,
        merchant_id=pi.merchant_id,
        payment_intent=pi.id,
        amount=pi.amount,
        currency=pi.currency,
        created=created,
        status=ChargeStatus.FAILED if failed else ChargeStatus.SUCCEEDED,
        card=pi.psp_payment_method or pi.payment_method or "",
        payment_method=pi.payment_method,
        customer=pi.customer,
        captured=captured,
        amount_captured=pi.amount_received if captured else 0,
        balance_transaction=balance_transaction_of(charge_id) if captured else None,
        failure_code=error.code if failed and error else None,
        failure_message=error.message if failed and error else None,
        decline_code=error.decline_code if failed and error else None,
        description=pi.description,
        metadata=dict(pi.metadata),
        receipt_email=pi.receipt_email,
        statement_descriptor=pi.statement_descriptor,
        statement_descriptor_suffix=pi.statement_descriptor_suffix,
        shipping=pi.shipping,
        transfer_group=pi.transfer_group,
        billing_details=billing or BillingDetails(),
        connector=pi.connector or "",
    )


def may_move(before: PaymentIntent, after: PaymentIntent) -> bool:
    """Whether a PaymentIntent change can move its charge (so that others read nothing)."""
    return before.status == PaymentIntentStatus.REQUIRES_CAPTURE and after.status in (
        PaymentIntentStatus.SUCCEEDED,
        PaymentIntentStatus.CANCELED,
    )


def moved_by(charge: Charge, before: PaymentIntent, after: PaymentIntent) -> Charge | None:
    """The Charge's next version for a change of its PaymentIntent, or None if untouched."""
    if before.status == after.status or charge.status != ChargeStatus.SUCCEEDED:
        return None
    if after.status == PaymentIntentStatus.SUCCEEDED and not charge.captured:
        # A partial capture releases the rest, which Stripe shows as refunded.
        return charge.model_copy(
            update={
                "captured": True,
                "amount_captured": after.amount_received,
                "amount_refunded": charge.amount - after.amount_received,
                "balance_transaction": balance_transaction_of(charge.id),
                "statement_descriptor_suffix": after.statement_descriptor_suffix,
                "metadata": dict(after.metadata),
                "version": charge.version + 1,
            }
        )
    if after.status == PaymentIntentStatus.CANCELED and not charge.captured:
        return charge.model_copy(
            update={"amount_refunded": charge.amount, "version": charge.version + 1}
        )
    return None


def refund_changed(charge: Charge, delta: int) -> Charge:
    """`delta` more (or, for a failed refund, less) of the charge refunded."""
    return charge.model_copy(
        update={"amount_refunded": charge.amount_refunded + delta, "version": charge.version + 1}
    )


def event_for(before: Charge | None, after: Charge) -> str | None:
    """The charge.* event a change announces."""
    if before is None:
        return "charge.failed" if after.status == ChargeStatus.FAILED else "charge.succeeded"
    if after.captured and not before.captured:
        return "charge.captured"
    if after.amount_refunded > before.amount_refunded:
        return "charge.refunded"
    return None
