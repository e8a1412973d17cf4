"""The matching rules: a provider's settlement line against what PayFlow booked, PayFlow's
bookings against the lines that should have settled them, the provider's payouts against the
bank. Plain functions over plain values: the service reads, these decide, the service writes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from chalicelib.reconciliation.reports import (
    BankLine,
    DisputeMovement,
    Payout,
    RowType,
    SettlementRow,
    day_start,
)

DAY = 86_400


class ExceptionKind(StrEnum):
    """Why a line, a booking or a payout did not match."""

    MISSING_IN_PAYFLOW = "missing_in_payflow"
    """The provider settled something PayFlow has no record of."""
    MISSING_AT_PROVIDER = "missing_at_provider"
    """PayFlow booked something the provider has not settled within the SLA (T+N days)."""
    AMOUNT_OVER = "amount_over"
    """The provider settled more than PayFlow booked."""
    AMOUNT_UNDER = "amount_under"
    """The provider settled less than PayFlow booked."""
    CURRENCY_MISMATCH = "currency_mismatch"
    """The provider settled in another currency than PayFlow booked."""
    DUPLICATE_SETTLEMENT = "duplicate_settlement"
    """The provider settled the same charge or refund a second time."""
    MISSED_CAPTURE = "missed_capture"
    """The provider captured a payment PayFlow still holds as only authorized."""
    PAYOUT_MISSING_IN_BANK = "payout_missing_in_bank"
    """A payout of the provider's report never reached the bank statement."""
    PAYOUT_AMOUNT_MISMATCH = "payout_amount_mismatch"
    """The bank received another amount than the provider's payout."""


class Repair(StrEnum):
    """What reconciliation does by itself, only where the answer is certain."""

    REFUND_AT_PROVIDER = "refund_at_provider"
    """A charge PayFlow never recorded, for a PaymentIntent PayFlow settled otherwise: the
    customer paid twice, so the provider refunds it."""
    RECORD_CAPTURE = "record_capture"
    """The provider captured: PayFlow records the capture it missed."""


class ExceptionStatus(StrEnum):
    """Where an exception stands."""

    OPEN = "open"
    """Waiting for a person (POST /v1/reconciliation/exceptions/{id}/resolve)."""
    REPAIRED = "repaired"
    """Reconciliation repaired it by itself (`repair` says how)."""
    RESOLVED = "resolved"
    """A person resolved it, or a late settlement closed it."""


class Resolution(StrEnum):
    """How a person settles an open exception; each posts one balanced ledger entry."""

    ACCEPT_PROVIDER = "accept_provider"
    """The provider is right: the difference moves into (or out of) the merchant's balance."""
    WRITE_OFF = "write_off"
    """The platform absorbs the difference (account `reconciliation_write_off`)."""
    SETTLED_LATE = "settled_late"
    """Closed by reconciliation itself: the missing settlement arrived after the SLA."""


REFUNDABLE_STATUSES = frozenset(
    {"succeeded", "requires_capture", "requires_payment_method", "canceled", "requires_action"}
)
"""PaymentIntent statuses in which a charge PayFlow never recorded is certainly an extra one.
A PaymentIntent still `processing` may yet record it: that case waits for a person."""


@dataclass(frozen=True)
class Booked:
    """What PayFlow booked for a charge, a refund or one movement of a dispute."""

    kind: str
    """`charge`, `refund`, or a dispute's movement (DisputeMovement: `dispute` for its
    withdrawal, `dispute_reversal` for its reinstatement)."""
    id: str
    """The charge or refund id; for a dispute movement `<provider's dispute id>:<movement>`
    (dispute_subject), what its settlement line names."""
    payment_intent: str
    amount: int
    """Captured amount of a charge, amount of a refund or of a dispute (positive)."""
    currency: str
    connector: str
    created: int
    captured: bool = True
    status: str = "succeeded"
    fee: int = 0
    """A dispute movement's fee as its line carries it (taken: positive, given back:
    negative); charges' and refunds' fees are the provider's to say, not compared."""
    object_id: str = ""
    """The PayFlow object a dispute movement belongs to (its dispute); else `id`."""

    @property
    def signed(self) -> int:
        """The amount as a settlement line would carry it."""
        if self.kind in ("refund", DisputeMovement.WITHDRAWAL):
            return -self.amount
        return self.amount

    @property
    def net(self) -> int:
        """What the booking moved in the merchant's balance, as a line's net would say."""
        return self.signed - self.fee


def dispute_subject(reference: str, movement: DisputeMovement, occurrence: int = 1) -> str:
    """How a dispute's movement is named in settled markers and exceptions: by the provider's
    dispute id, which both the line and PayFlow's dispute carry, and which time the dispute's
    money moves that way (a second chargeback is its second withdrawal)."""
    base = f"{reference}:{movement.value}"
    return base if occurrence == 1 else f"{base}:{occurrence}"


@dataclass(frozen=True)
class Finding:
    """One exception found (or a line that matched, with kind None)."""

    kind: ExceptionKind | None
    provider: str
    subject: str
    """The line, booking or payout it is about (row id, charge/refund id, payout id)."""
    currency: str
    provider_amount: int
    """What the provider settled (for a payout: what the bank received)."""
    payflow_amount: int
    """What PayFlow booked (for a payout: what the provider's payout promised)."""
    row_id: str | None = None
    object_id: str | None = None
    payment_intent: str | None = None
    psp_reference: str | None = None
    repair: Repair | None = None

    @property
    def matched(self) -> bool:
        return self.kind is None

    @property
    def delta(self) -> int:
        """What the provider holds minus what PayFlow booked (signed, minor units)."""
        return self.provider_amount - self.payflow_amount

    @property
    def exception_id(self) -> str:
        """The same finding found twice (a rerun) is the same exception."""
        digest = hashlib.sha256(f"{self.kind}|{self.provider}|{self.subject}".encode()).hexdigest()
        return f"rcx_{digest[:24]}"


def match_dispute(row: SettlementRow, booked: Booked | None, *, duplicate: bool) -> Finding:
    """Decide one dispute line against PayFlow's movement of that dispute the same way
    (`booked`: None when PayFlow has no such dispute, or has not moved its money that way).
    Compared by net (amount and fee together: what the merchant's balance moved) and by
    amount and fee apart. A dispute PayFlow never heard of is for a person: nothing is
    certain enough to repair."""
    movement = row.movement
    assert movement is not None, "match_dispute takes dispute lines"
    subject = dispute_subject(row.dispute_id or row.row_id, movement, row.occurrence)

    def finding(kind: ExceptionKind | None, payflow: int) -> Finding:
        return Finding(
            kind,
            row.provider,
            row.row_id,
            row.currency,
            row.net,
            payflow,
            row_id=row.row_id,
            object_id=booked.object_id if booked else subject,
            payment_intent=row.payment_intent or (booked.payment_intent if booked else None),
            psp_reference=row.psp_reference,
        )

    if duplicate:
        return finding(ExceptionKind.DUPLICATE_SETTLEMENT, 0)
    if booked is None:
        return finding(ExceptionKind.MISSING_IN_PAYFLOW, 0)
    if booked.currency != row.currency:
        return finding(ExceptionKind.CURRENCY_MISMATCH, booked.net)
    if row.amount != booked.signed or row.fee != booked.fee:
        over = abs(row.net) > abs(booked.net)
        return finding(
            ExceptionKind.AMOUNT_OVER if over else ExceptionKind.AMOUNT_UNDER, booked.net
        )
    return finding(None, booked.net)


def match_row(
    row: SettlementRow,
    booked: Booked | None,
    intent_status: str | None,
    *,
    duplicate: bool,
) -> Finding:
    """Decide one settlement line. `booked` is PayFlow's charge, refund or dispute movement
    the line names (None when PayFlow has none), `intent_status` the status of the
    PaymentIntent it references (None when there is none), `duplicate` whether another line
    already settled the same object."""
    if row.type == RowType.DISPUTE:
        return match_dispute(row, booked, duplicate=duplicate)
    subject = row.refund_id if row.type == RowType.REFUND else row.charge_id
    common = {
        "row_id": row.row_id,
        "payment_intent": row.payment_intent,
        "psp_reference": row.psp_reference,
        "object_id": booked.id if booked else subject,
    }

    def finding(
        kind: ExceptionKind | None, payflow: int, repair: Repair | None = None, on: str = ""
    ) -> Finding:
        return Finding(
            kind,
            row.provider,
            on or row.row_id,
            row.currency,
            row.amount,
            payflow,
            repair=repair,
            **common,  # type: ignore[arg-type]
        )

    if duplicate:
        return finding(ExceptionKind.DUPLICATE_SETTLEMENT, 0)
    if booked is None or (booked.kind == "refund" and booked.status == "failed"):
        repair = None
        if row.type == RowType.CHARGE and intent_status in REFUNDABLE_STATUSES and booked is None:
            repair = Repair.REFUND_AT_PROVIDER
        return finding(ExceptionKind.MISSING_IN_PAYFLOW, 0, repair)
    if booked.currency != row.currency:
        return finding(ExceptionKind.CURRENCY_MISMATCH, booked.signed)
    if booked.kind == "charge" and not booked.captured:
        repair = Repair.RECORD_CAPTURE if intent_status == "requires_capture" else None
        return finding(ExceptionKind.MISSED_CAPTURE, 0, repair)
    if row.amount != booked.signed:
        over = abs(row.amount) > abs(booked.signed)
        kind = ExceptionKind.AMOUNT_OVER if over else ExceptionKind.AMOUNT_UNDER
        return finding(kind, booked.signed)
    return finding(None, booked.signed)


def missing_at_provider(
    bookings: Iterable[Booked],
    settled: set[str],
    *,
    day: str,
    now: int,
    sla_days: int,
) -> tuple[list[Finding], int]:
    """PayFlow's bookings of `day` that no provider line settled: exceptions once `sla_days`
    have passed since the day began, else still awaited. Returns (exceptions, awaited count)."""
    overdue = now >= day_start(day) + sla_days * DAY
    found, awaited = [], 0
    for booked in bookings:
        if booked.id in settled:
            continue
        if not overdue:
            awaited += 1
            continue
        found.append(
            Finding(
                ExceptionKind.MISSING_AT_PROVIDER,
                booked.connector,
                booked.id,
                booked.currency,
                0,
                booked.net,
                object_id=booked.object_id or booked.id,
                payment_intent=booked.payment_intent,
            )
        )
    return found, awaited


def match_payouts(payouts: Iterable[Payout], bank: Iterable[BankLine]) -> list[Finding]:
    """Three-way: each provider payout against the bank's credit with its reference."""
    credits: dict[str, BankLine] = {line.reference: line for line in bank}
    found = []
    for payout in payouts:
        line = credits.get(payout.id)
        kind: ExceptionKind | None = None
        received = line.amount if line else 0
        if line is None:
            kind = ExceptionKind.PAYOUT_MISSING_IN_BANK
        elif line.amount != payout.amount or line.currency != payout.currency:
            kind = ExceptionKind.PAYOUT_AMOUNT_MISMATCH
        # What arrived against what the payout promised: the difference the PSP still owes.
        found.append(
            Finding(kind, payout.provider, payout.id, payout.currency, received, payout.amount)
        )
    return found
