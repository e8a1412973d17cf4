"""The matching rules: a provider's settlement line against what PayFlow booked, PayFlow's
bookings against the lines that should have settled them, the provider's payouts against the
bank. Plain functions over plain values: the service reads, these decide, the service writes.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from chalicelib.reconciliation.reports import (
    BankLine,
    DisputeMovement,
    Payout,
    RowType,
    SettlementRow,
    day_of,
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
    """The bank received another amount (or currency) than the provider's payout."""
    PAYOUT_MATCH_AMBIGUOUS = "payout_match_ambiguous"
    """More than one bank credit could be the payout: a person picks, PayFlow never guesses."""
    BANK_CREDIT_UNMATCHED = "bank_credit_unmatched"
    """A credit from a provider (its payout reference or its name) that no payout matched."""


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


def dispute_subjects(row: SettlementRow, booked: Collection[str]) -> list[str]:
    """The subjects a dispute line may settle, in order: each time PayFlow moved the line's
    dispute's money the line's way (`booked`: the subjects PayFlow booked), at least the
    first (a dispute PayFlow never moved that way is still named by its first)."""
    movement = row.movement
    assert movement is not None, "dispute_subjects takes dispute lines"
    reference = row.dispute_id or row.row_id
    if row.occurrence is not None:
        return [dispute_subject(reference, movement, row.occurrence)]
    subjects = [dispute_subject(reference, movement)]
    while (following := dispute_subject(reference, movement, len(subjects) + 1)) in booked:
        subjects.append(following)
    return subjects


def dispute_occurrence(
    row: SettlementRow, booked: Collection[str], settled: Mapping[str, str]
) -> SettlementRow:
    """The dispute line with the occurrence it settles, when its report does not say which
    (Stripe's and Razorpay's lines name the dispute, not which withdrawal it is). The one it
    settled before (a rerun: the same line is the same movement, never a duplicate), else the
    first PayFlow booked that no other line settled (`settled`: subject -> the line that
    settled it); when every one is settled by another line, the last: a duplicate. Lines of
    one dispute are taken oldest first (`in_occurrence_order`), so a second withdrawal is the
    later line."""
    if row.occurrence is not None:
        return row
    subjects = dispute_subjects(row, booked)
    mine = [n for n, s in enumerate(subjects, 1) if settled.get(s) == row.row_id]
    free = [n for n, s in enumerate(subjects, 1) if s not in settled]
    return row.model_copy(update={"occurrence": (mine or free or [len(subjects)])[0]})


def in_occurrence_order(rows: Iterable[SettlementRow]) -> list[SettlementRow]:
    """Lines in the order occurrences are given to them: by the time the provider created
    them, then by id, so that every run (and every retry) gives them the same ones."""
    return sorted(rows, key=lambda r: (r.created, r.row_id))


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
    subject = dispute_subject(row.dispute_id or row.row_id, movement, row.occurrence or 1)

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


BANK_WINDOW_DAYS = 3
"""A payout may reach the bank from its payout date to this many days later (T+0..T+3)."""
PAYOUT_FORMS = {
    "simulator": re.compile(r"^po_[A-Za-z0-9_]+$"),
    "stripe": re.compile(r"^po_[A-Za-z0-9]+$"),
    "razorpay": re.compile(r"^setl_[A-Za-z0-9]+$"),
    "adyen": re.compile(r"^(TX[0-9A-Za-z]+XT|[A-Za-z0-9]+_batch_[0-9]+)$"),
}
"""What each provider kind's payout ids look like (Stripe's `po_...`, Razorpay's settlement
`setl_...`, Adyen's transfer reference `TX...XT` opening its payout description, or PayFlow's
name `<merchant account>_batch_<n>` of a batch that paid nothing out): a bank credit carrying
one names a payout, so it is matched by that reference or not at all."""
PROVIDER_NAMES = {"stripe": "stripe", "razorpay": "razorpay", "adyen": "adyen"}
"""Provider kind -> the word its name carries as the payer of a credit (camt.053 Dbtr/Nm)."""


def window_of(day: str, window_days: int = BANK_WINDOW_DAYS) -> list[str]:
    """The days a payout of `day` may be booked by the bank on."""
    start = day_start(day)
    return [day_of(start + n * DAY) for n in range(window_days + 1)]


def window_passed(day: str, now: int, window_days: int = BANK_WINDOW_DAYS) -> bool:
    """Whether the last day a payout of `day` could arrive on is over."""
    return now >= day_start(day) + (window_days + 1) * DAY


@dataclass(frozen=True)
class BankView:
    """What the bank side of a run knows, for `match_bank`."""

    lines: list[BankLine]
    """The entries that may carry the run's payouts (the simulator's bank, the uploads):
    credits, and debits, which only a negative payout naming itself in them can match."""
    claimed: dict[str, str]
    """Credit entry id -> the payout that an earlier run matched with it."""
    kinds: dict[str, str]
    """Connector id -> its kind (`simulator`, `stripe`, ...), for the payout id forms."""
    covered_days: frozenset[str]
    """The days the merchant's uploaded statements cover."""
    own_bank: frozenset[str] = frozenset()
    """Connectors whose bank is the sandbox's own (the simulators): it books each payout the
    day it is made, so the window does not apply."""


@dataclass
class BankMatch:
    """What `match_bank` decided."""

    findings: list[Finding] = field(default_factory=list)
    """Matched payouts (kind None) and exceptions."""
    claims: dict[str, str] = field(default_factory=dict)
    """Credit entry id -> payout id, for the credits this run matched."""
    awaiting: int = 0
    """Payouts not in the bank yet whose window is still open (or not yet covered)."""


def names_payout(line: BankLine, kinds: Iterable[str]) -> set[str]:
    """The payout ids (of any of `kinds`' forms) a bank line's references carry."""
    from chalicelib.reconciliation.bank import payout_tokens

    forms = [PAYOUT_FORMS[k] for k in set(kinds) if k in PAYOUT_FORMS]
    return {t for t in payout_tokens(line) if any(f.match(t) for f in forms)}


def match_bank(payouts: Iterable[Payout], bank: BankView, *, now: int) -> BankMatch:
    """Three-way: each payout against the bank's credits. By reference first (a credit whose
    references carry the payout id), else by amount, currency and a booking date within the
    payout's window when exactly one credit naming no payout fits it (and fits no other
    payout). Two candidates are an exception, never a guess. A payout found nowhere is
    missing once its window has passed and the uploads cover it, else awaited. A negative
    payout (the provider took money back: refunds and disputes over charges) is a debit, and
    is matched by reference only; a payout of nothing moves no money and is not looked for."""
    payouts = [p for p in payouts if p.amount != 0]
    kinds = set(bank.kinds.values())
    named = {line.entry_id: names_payout(line, kinds) for line in bank.lines}
    credits = [line for line in bank.lines if line.credit]

    def available(line: BankLine, payout: Payout) -> bool:
        holder = bank.claimed.get(line.entry_id)
        return holder is None or holder == payout.id

    by_reference = {
        p.id: [
            c
            for c in bank.lines
            if p.id in named[c.entry_id] and available(c, p) and c.credit == (p.amount > 0)
        ]
        for p in payouts
    }
    by_amount: dict[str, list[BankLine]] = {}
    for payout in payouts:
        if by_reference[payout.id] or payout.amount < 0:
            continue
        days = set(window_of(payout.settled_on))
        by_amount[payout.id] = [
            c
            for c in credits
            if not named[c.entry_id]
            and available(c, payout)
            and c.currency == payout.currency
            and c.amount == payout.amount
            and c.booking_date in days
            and _may_be_from(c, bank.kinds.get(payout.provider, ""))
        ]
    wanted = Counter(c.entry_id for found in by_amount.values() for c in found)
    result = BankMatch()
    for payout in payouts:
        candidates = by_reference[payout.id] or by_amount.get(payout.id, [])
        shared = any(wanted[c.entry_id] > 1 for c in by_amount.get(payout.id, []))
        if len(candidates) > 1 or shared:
            result.findings.append(_payout_finding(payout, None, ambiguous=True))
            continue
        if candidates:
            (line,) = candidates
            result.claims[line.entry_id] = payout.id
            result.findings.append(_payout_finding(payout, line))
            continue
        own = payout.provider in bank.own_bank
        window = window_of(payout.settled_on)
        if own or (window_passed(payout.settled_on, now) and bank.covered_days.issuperset(window)):
            result.findings.append(_payout_finding(payout, None))
        else:
            result.awaiting += 1
    return result


def _may_be_from(line: BankLine, kind: str) -> bool:
    """A credit whose payer names another provider is not this provider's payout."""
    payer = (line.counterparty or "").lower()
    others = [word for k, word in PROVIDER_NAMES.items() if k != kind]
    return not any(word in payer for word in others)


def _payout_finding(payout: Payout, line: BankLine | None, *, ambiguous: bool = False) -> Finding:
    kind: ExceptionKind | None = None
    received = line.amount if line else 0
    if ambiguous:
        kind = ExceptionKind.PAYOUT_MATCH_AMBIGUOUS
    elif line is None:
        kind = ExceptionKind.PAYOUT_MISSING_IN_BANK
    elif line.amount != payout.amount or line.currency != payout.currency:
        kind = ExceptionKind.PAYOUT_AMOUNT_MISMATCH
    # What arrived against what the payout promised: the difference the PSP still owes.
    return Finding(
        kind,
        payout.provider,
        payout.id,
        payout.currency,
        received,
        payout.amount,
        row_id=line.entry_id if line else None,
        object_id=payout.id,
    )


def unmatched_credits(
    bank: BankView, claims: dict[str, str], *, day: str, now: int, providers: Iterable[str]
) -> list[Finding]:
    """Credits booked on `day` that come from one of `providers` (their reference has its
    payout id form, or their payer its name) and that no payout matched, in this run or an
    earlier one. Judged by the run of the credit's booking day once that day's window has
    passed, when the runs of the payouts that could have arrived then have had their
    statements; a later match closes the exception."""
    if not window_passed(day, now):
        return []
    found = []
    for line in bank.lines:
        if (
            not line.credit
            or line.booking_date != day
            or line.entry_id in claims
            or line.entry_id in bank.claimed
        ):
            continue
        provider = _payer(line, bank, providers)
        if provider is None:
            continue
        found.append(
            Finding(
                ExceptionKind.BANK_CREDIT_UNMATCHED,
                provider,
                line.entry_id,
                line.currency,
                line.amount,
                0,
                row_id=line.entry_id,
                object_id=line.entry_id,
                psp_reference=line.end_to_end_id or line.reference or None,
            )
        )
    return found


def _payer(line: BankLine, bank: BankView, providers: Iterable[str]) -> str | None:
    """Which of `providers` (not a simulator: its bank is its own) a credit comes from."""
    payer = (line.counterparty or "").lower()
    for provider in sorted(providers):
        kind = bank.kinds.get(provider, "")
        if provider in bank.own_bank or kind not in PROVIDER_NAMES:
            continue
        if names_payout(line, [kind]) or PROVIDER_NAMES[kind] in payer:
            return provider
    return None
