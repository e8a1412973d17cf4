"""Disputes: a cardholder's challenge of a charge, as providers report it and Stripe shows it.

A provider's dispute webhook (Stripe `charge.dispute.*`, Razorpay `payment.dispute.*`, Adyen
`NOTIFICATION_OF_CHARGEBACK`, `CHARGEBACK`, `CHARGEBACK_REVERSED`...) is normalized to a
`DisputeReport`; `reported` decides from the dispute as it is now whether the report moves it,
and only ever forward (`RANK`), so reports can arrive late, twice and out of order. The money
follows the status (`funds_for`): a chargeback holds the disputed amount and the dispute fee
from the merchant's available balance; winning gives both back, losing pays them out through
the provider. Inquiries (Stripe's `warning_*` statuses) move no money.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

from chalicelib.domain.test_cards import describe
from chalicelib.errors import UnexpectedState


class DisputeStatus(StrEnum):
    """Stripe's dispute statuses (`prevented` is Stripe's own fraud tooling, never reported)."""

    WARNING_NEEDS_RESPONSE = "warning_needs_response"
    """An inquiry (retrieval request): the issuer asks for information, no money moved."""
    WARNING_UNDER_REVIEW = "warning_under_review"
    """The merchant answered the inquiry."""
    WARNING_CLOSED = "warning_closed"
    """The inquiry ended without becoming a chargeback."""
    NEEDS_RESPONSE = "needs_response"
    """A chargeback: the funds are withdrawn; evidence may be submitted until `due_by`."""
    UNDER_REVIEW = "under_review"
    """Evidence was submitted; the issuer decides."""
    WON = "won"
    """The issuer sided with the merchant: the funds are reinstated."""
    LOST = "lost"
    """The cardholder keeps the money (the merchant accepted, or the issuer decided)."""


S = DisputeStatus

RANK: dict[DisputeStatus, int] = {
    S.WARNING_NEEDS_RESPONSE: 0,
    S.WARNING_UNDER_REVIEW: 1,
    S.WARNING_CLOSED: 2,
    S.NEEDS_RESPONSE: 3,
    S.UNDER_REVIEW: 4,
    S.WON: 5,
    S.LOST: 6,
}
"""The order statuses move in. An inquiry can become a chargeback; a won dispute can still be
lost (Adyen's SECOND_CHARGEBACK, a lost pre-arbitration); nothing comes after lost. The one move
back is a provider asking for evidence again (`DisputeReport.reopens`)."""

CLOSED = frozenset({S.WARNING_CLOSED, S.WON, S.LOST})
"""Statuses announced by charge.dispute.closed."""
RESPONDABLE = frozenset({S.NEEDS_RESPONSE, S.WARNING_NEEDS_RESPONSE})
"""Statuses in which the merchant may still change and submit evidence."""


class DisputeReason(StrEnum):
    """Stripe's dispute reasons."""

    BANK_CANNOT_PROCESS = "bank_cannot_process"
    CHECK_RETURNED = "check_returned"
    CREDIT_NOT_PROCESSED = "credit_not_processed"
    CUSTOMER_INITIATED = "customer_initiated"
    DEBIT_NOT_AUTHORIZED = "debit_not_authorized"
    DUPLICATE = "duplicate"
    FRAUDULENT = "fraudulent"
    GENERAL = "general"
    INCORRECT_ACCOUNT_DETAILS = "incorrect_account_details"
    INSUFFICIENT_FUNDS = "insufficient_funds"
    NONCOMPLIANT = "noncompliant"
    PRODUCT_NOT_RECEIVED = "product_not_received"
    PRODUCT_UNACCEPTABLE = "product_unacceptable"
    SUBSCRIPTION_CANCELED = "subscription_canceled"
    UNRECOGNIZED = "unrecognized"


R = DisputeReason

NETWORK_REASONS: dict[str, DisputeReason] = {
    # Visa's dispute conditions.
    "10.1": R.FRAUDULENT,
    "10.2": R.FRAUDULENT,
    "10.3": R.FRAUDULENT,
    "10.4": R.FRAUDULENT,
    "10.5": R.FRAUDULENT,
    "12.6.1": R.DUPLICATE,
    "13.1": R.PRODUCT_NOT_RECEIVED,
    "13.2": R.SUBSCRIPTION_CANCELED,
    "13.3": R.PRODUCT_UNACCEPTABLE,
    "13.6": R.CREDIT_NOT_PROCESSED,
    # Mastercard's chargeback reason codes.
    "4834": R.DUPLICATE,
    "4837": R.FRAUDULENT,
    "4840": R.FRAUDULENT,
    "4841": R.SUBSCRIPTION_CANCELED,
    "4853": R.PRODUCT_UNACCEPTABLE,
    "4855": R.PRODUCT_NOT_RECEIVED,
    "4860": R.CREDIT_NOT_PROCESSED,
    "4863": R.UNRECOGNIZED,
    "4870": R.FRAUDULENT,
    "4871": R.FRAUDULENT,
}
"""Card networks' reason codes (what Adyen and Razorpay report) as Stripe's reasons."""


def reason_for(network_code: str | None) -> DisputeReason:
    """Stripe's reason for a network reason code (`general` for codes without a match)."""
    return NETWORK_REASONS.get((network_code or "").strip(), R.GENERAL)


EVIDENCE_FIELDS: tuple[str, ...] = (
    "access_activity_log",
    "billing_address",
    "cancellation_policy",
    "cancellation_policy_disclosure",
    "cancellation_rebuttal",
    "customer_communication",
    "customer_email_address",
    "customer_name",
    "customer_purchase_ip",
    "customer_signature",
    "duplicate_charge_documentation",
    "duplicate_charge_explanation",
    "duplicate_charge_id",
    "product_description",
    "receipt",
    "refund_policy",
    "refund_policy_disclosure",
    "refund_refusal_explanation",
    "service_date",
    "service_documentation",
    "shipping_address",
    "shipping_carrier",
    "shipping_date",
    "shipping_documentation",
    "shipping_tracking_number",
    "uncategorized_file",
    "uncategorized_text",
)
"""Stripe's evidence fields (text, or a file id for the documentation ones)."""

EVIDENCE_MAX_CHARS = 150_000
"""Stripe's limit on the combined length of a dispute's text evidence."""

EVIDENCE_DAYS = 7
"""How long the sandbox's bank gives for evidence (Stripe's deadlines are 7 to 21 days)."""

DISPUTE_FEE = 1500
"""The fee a chargeback costs the merchant, in minor units of the dispute's currency (Stripe's
is 15.00 USD); given back when the dispute is won."""


class Funds(StrEnum):
    """Where a dispute's money is."""

    UNTOUCHED = "untouched"
    """Nothing withdrawn (an inquiry, or nothing reported yet)."""
    HELD = "held"
    """Withdrawn from the merchant's available balance into disputes_held."""
    REINSTATED = "reinstated"
    """Given back to the merchant (won)."""
    PAID_OUT = "paid_out"
    """Paid out through the provider (lost)."""


class FundsMove(StrEnum):
    """One ledger movement of a dispute's amount and fee."""

    WITHDRAW = "withdraw"
    """available -> disputes_held: charge.dispute.funds_withdrawn."""
    REINSTATE = "reinstate"
    """disputes_held -> available: charge.dispute.funds_reinstated."""
    PAY_OUT = "pay_out"
    """disputes_held -> the provider's clearing account (the cardholder keeps the money)."""


def funds_for(status: DisputeStatus) -> Funds:
    """Where the money of a dispute in `status` belongs."""
    if status in (S.NEEDS_RESPONSE, S.UNDER_REVIEW):
        return Funds.HELD
    if status == S.WON:
        return Funds.REINSTATED
    if status == S.LOST:
        return Funds.PAID_OUT
    return Funds.UNTOUCHED


def moves_between(before: Funds, after: Funds) -> list[FundsMove]:
    """The ledger movements that take a dispute's money from `before` to `after`: a dispute
    first reported won is withdrawn and reinstated, as its provider did."""
    if before == after or after == Funds.UNTOUCHED:
        return []
    moves = [] if before == Funds.HELD else [FundsMove.WITHDRAW]
    if after == Funds.REINSTATED:
        moves.append(FundsMove.REINSTATE)
    elif after == Funds.PAID_OUT:
        moves.append(FundsMove.PAY_OUT)
    return moves


@dataclass(frozen=True)
class DisputeReport:
    """What a provider (or the simulator) says about one dispute, in PayFlow's terms."""

    reference: str
    """The provider's own id for the dispute (du_, disp_, Adyen's dispute pspReference):
    every report of one dispute carries it, and reconciliation matches on it."""
    charge_id: str
    """The PayFlow charge disputed."""
    status: DisputeStatus
    reason: DisputeReason = R.GENERAL
    amount: int | None = None
    """The disputed amount in minor units (None: the charge's captured amount)."""
    currency: str | None = None
    due_by: int | None = None
    """When evidence is due (epoch seconds), if the provider said."""
    network_reason_code: str | None = None
    payment_reference: str | None = None
    """The provider's reference of the disputed payment."""
    reopens: bool = False
    """The provider asks for the evidence again (Razorpay's action_required: what was sent is
    insufficient): a dispute under review needs a response once more."""


class Dispute(BaseModel):
    """A dispute as stored: Stripe's fields plus where its money is."""

    id: str
    merchant_id: str
    charge: str
    payment_intent: str | None = None
    amount: int
    currency: str
    created: int
    status: DisputeStatus
    reason: DisputeReason = R.GENERAL
    metadata: dict[str, str] = Field(default_factory=dict)
    evidence: dict[str, str] = Field(default_factory=dict)
    submission_count: int = 0
    due_by: int | None = None
    network_reason_code: str | None = None
    card: str = ""
    """The test card of the disputed charge (its brand shows in payment_method_details)."""
    balance_transactions: list[dict[str, Any]] = Field(default_factory=list)
    """The merchant's balance transactions of this dispute (withdrawal, reinstatement)."""
    # Bookkeeping.
    provider: str
    """Who reported it: stripe, razorpay, adyen, or simulator."""
    provider_reference: str
    """The provider's own dispute id (see DisputeReport.reference)."""
    payment_reference: str | None = None
    connector: str = ""
    """The connector that captured the charge: whose clearing account pays out a loss."""
    fee: int = DISPUTE_FEE
    funds: Funds = Funds.UNTOUCHED
    entries: int = 0
    """Ledger entries posted so far (numbers the next one's id)."""
    version: int = 1

    @property
    def inquiry(self) -> bool:
        return self.status in (S.WARNING_NEEDS_RESPONSE, S.WARNING_UNDER_REVIEW, S.WARNING_CLOSED)

    def to_api(self) -> dict[str, Any]:
        """Stripe's dispute object. The provider's references are bookkeeping, not Stripe
        fields: reconciliation reads them from the stored dispute (DisputeService.by_reference)."""
        evidence: dict[str, Any] = {name: self.evidence.get(name) for name in EVIDENCE_FIELDS}
        evidence["enhanced_evidence"] = {}
        body: dict[str, Any] = {
            "id": self.id,
            "object": "dispute",
            "amount": self.amount,
            "balance_transactions": list(self.balance_transactions),
            "charge": self.charge,
            "created": self.created,
            "currency": self.currency,
            "enhanced_eligibility_types": [],
            "evidence": evidence,
            "evidence_details": {
                "due_by": self.due_by,
                "enhanced_eligibility": {},
                "has_evidence": bool(self.evidence),
                "past_due": False,
                "submission_count": self.submission_count,
            },
            # An inquiry takes no money: the merchant may still refund instead of answering.
            "is_charge_refundable": self.inquiry,
            "livemode": False,
            "metadata": dict(self.metadata),
            "payment_intent": self.payment_intent,
            "reason": self.reason.value,
            "status": self.status.value,
        }
        card = describe(self.card) if self.card else None
        if card is not None:
            body["payment_method_details"] = {
                "type": "card",
                "card": {
                    "brand": card.brand,
                    "case_type": "inquiry" if self.inquiry else "chargeback",
                    "network": card.brand,
                    "network_reason_code": self.network_reason_code,
                },
            }
        return body


def reported(before: Dispute | None, report: DisputeReport) -> DisputeStatus | None:
    """The status `report` moves the dispute to, or None when it changes nothing: a report
    only moves a dispute forward (RANK), so a late or repeated one is a no-op."""
    if before is None:
        return report.status
    if report.reopens and before.status in (S.UNDER_REVIEW, S.WARNING_UNDER_REVIEW):
        # The one move back: evidence asked for again. Funds stay where they are.
        return S.WARNING_NEEDS_RESPONSE if before.inquiry else S.NEEDS_RESPONSE
    if RANK[report.status] <= RANK[before.status]:
        return None
    return report.status


def with_evidence(
    dispute: Dispute, evidence: dict[str, str] | None, submit: bool, metadata: dict[str, str]
) -> Dispute:
    """The merchant's change: evidence merged in (an empty value clears a field), metadata,
    and with `submit` the evidence sent, which puts the dispute under review."""
    if evidence and dispute.status not in RESPONDABLE:
        raise UnexpectedState(
            f"This dispute has a status of {dispute.status.value}; evidence can be changed only "
            "while it needs a response.",
            code="dispute_already_submitted"
            if dispute.status not in CLOSED
            else "dispute_already_closed",
        )
    if submit and dispute.status not in RESPONDABLE:
        raise UnexpectedState(
            f"This dispute has a status of {dispute.status.value}; it can be submitted only "
            "while it needs a response.",
            code="dispute_already_submitted"
            if dispute.status not in CLOSED
            else "dispute_already_closed",
        )
    merged = dict(dispute.evidence)
    for name, value in (evidence or {}).items():
        if value:
            merged[name] = value
        else:
            merged.pop(name, None)
    update: dict[str, Any] = {
        "evidence": merged,
        "metadata": metadata,
        "version": dispute.version + 1,
    }
    if submit:
        update["status"] = S.WARNING_UNDER_REVIEW if dispute.inquiry else S.UNDER_REVIEW
        update["submission_count"] = dispute.submission_count + 1
    return dispute.model_copy(update=update)


def closed_by_merchant(dispute: Dispute) -> DisputeStatus:
    """The status closing a dispute gives it: the merchant accepts the loss (an inquiry
    closes without one). Stripe refuses to close a dispute already closed."""
    if dispute.status in CLOSED:
        raise UnexpectedState(
            f"This dispute is already closed (status {dispute.status.value}).",
            code="dispute_already_closed",
        )
    return S.WARNING_CLOSED if dispute.inquiry else S.LOST


def event_types(before: Dispute | None, after: Dispute, moves: list[FundsMove]) -> list[str]:
    """The charge.dispute.* events a change announces, in the order Stripe sends them."""
    types = ["charge.dispute.created"] if before is None else []
    for move in moves:
        if move == FundsMove.WITHDRAW:
            types.append("charge.dispute.funds_withdrawn")
        elif move == FundsMove.REINSTATE:
            types.append("charge.dispute.funds_reinstated")
    if after.status in CLOSED and (before is None or before.status != after.status):
        types.append("charge.dispute.closed")
    elif before is not None and not types:
        types.append("charge.dispute.updated")
    return types


EVENT_TYPES = (
    "charge.dispute.created",
    "charge.dispute.updated",
    "charge.dispute.closed",
    "charge.dispute.funds_withdrawn",
    "charge.dispute.funds_reinstated",
)
"""What dispute changes announce."""
