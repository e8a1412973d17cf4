"""The double-entry ledger: every money movement is one balanced journal entry.

Accounts are per merchant and currency. Amounts are signed integers of minor units: a debit is
positive, a credit negative, and the postings of every entry sum to zero per currency.

- `psp_clearing:<connector>` (asset, what a PSP owes us): debited on capture, credited when a
  refund leaves through the PSP.
- `merchant_pending` (liability, captured but not yet available): credited on capture, debited
  on release.
- `merchant_available` (liability, the merchant's to pay out): credited on release, debited by
  a refund hold.
- `refunds_in_flight` (liability, held for refunds at the PSP): credited by a hold, debited when
  the refund settles or its hold is reversed.
- `disputes_held` (liability, a chargeback's amount and fee taken from the merchant): credited
  when the funds are withdrawn, debited when they are reinstated (won) or paid out through the
  PSP's clearing account (lost).
- `reconciliation_suspense` (found at a PSP, not yet owed to anyone): credited when
  reconciliation finds a charge PayFlow never recorded, debited when it is refunded there.
- `reconciliation_write_off` (expense): what the platform absorbs of a difference a person
  wrote off.

Provider fees are reconciled from the PSP's settlement report: each one is debited from the
merchant's available balance and credited to the PSP's clearing account (the PSP kept it), so a
merchant's balance is net of fees, as Stripe's is.

A payment of 100.00 captured at 60.00, then 20.00 refunded:

| entry | psp_clearing:sim | merchant_pending | merchant_available | refunds_in_flight |
| --- | --- | --- | --- | --- |
| capture | +6000 | -6000 | | |
| release (funds available) | | +6000 | -6000 | |
| refund hold | | | +2000 | -2000 |
| refund settle | -2000 | | | +2000 |
| balance | +4000 | 0 | -4000 | 0 |

Stripe's balance shows liabilities from the merchant's side: available = -(merchant_available)
= 40.00, pending = -(merchant_pending) = 0. Entry ids are derived from what caused them, so a
retried handler cannot post twice.
"""

from __future__ import annotations

from collections import defaultdict
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field, model_validator

PENDING = "merchant_pending"
AVAILABLE = "merchant_available"
REFUNDS_IN_FLIGHT = "refunds_in_flight"
DISPUTES_HELD = "disputes_held"
SUSPENSE = "reconciliation_suspense"
WRITE_OFF = "reconciliation_write_off"


def psp_clearing(connector: str) -> str:
    return f"psp_clearing:{connector}"


class EntryKind(StrEnum):
    """What caused a journal entry (and the balance transaction a merchant sees)."""

    CHARGE = "charge"
    """Captured funds arrive, pending."""
    RELEASE = "release"
    """Pending funds become available."""
    REFUND_HOLD = "refund"
    """A refund starts: its amount is held from the available balance."""
    REFUND_SETTLE = "refund_settle"
    """The PSP paid the refund out: the held amount leaves through the PSP."""
    REFUND_FAILURE = "refund_failure"
    """The PSP refused the refund, or reported a paid-out refund failed later: the amount goes
    back to the available balance (reversal)."""
    DISPUTE_WITHDRAWAL = "dispute"
    """A chargeback takes its amount and fee from the available balance."""
    DISPUTE_REINSTATEMENT = "dispute_reversal"
    """A won dispute gives the amount and fee back."""
    DISPUTE_PAYOUT = "dispute_payout"
    """A lost dispute's held funds leave through the PSP."""
    FEE = "stripe_fee"
    """The PSP's fee on a charge, from its settlement report (Stripe's type for its fees)."""
    ADJUSTMENT = "adjustment"
    """A reconciliation difference a person resolved (Stripe's type for adjustments)."""
    RECONCILIATION = "reconciliation"
    """A repair reconciliation made by itself (a charge found at a PSP, refunded there)."""


class Posting(BaseModel):
    account: str
    amount: int
    """Signed minor units: debit positive, credit negative."""


class JournalEntry(BaseModel):
    """One balanced movement of one currency for one merchant."""

    id: str
    merchant_id: str
    currency: str
    kind: EntryKind
    source: str
    """The object that caused it (charge, refund)."""
    created: int
    available_on: int
    postings: list[Posting] = Field(min_length=2)
    created_ms: int | None = None
    """When it was stored, in milliseconds: orders the merchant's balance transactions."""
    fee: int = 0
    """The part of the merchant's change that is a fee, with Stripe's sign (a dispute fee
    charged is positive, one given back negative)."""

    @model_validator(mode="after")
    def _balanced(self) -> JournalEntry:
        if sum(p.amount for p in self.postings) != 0:
            raise ValueError(f"journal entry {self.id} does not balance")
        return self

    @property
    def merchant_effect(self) -> int:
        """How the merchant's balance (available + pending) changes, from their side."""
        return -sum(p.amount for p in self.postings if p.account in (PENDING, AVAILABLE))

    def balance_changes(self) -> dict[str, int]:
        changes: dict[str, int] = defaultdict(int)
        for posting in self.postings:
            changes[posting.account] += posting.amount
        return dict(changes)


def capture(
    *,
    merchant_id: str,
    currency: str,
    connector: str,
    charge: str,
    amount: int,
    created: int,
    available_on: int,
) -> JournalEntry:
    """Captured funds: the PSP owes them to us, we owe them to the merchant: pending until
    `available_on`, or available at once when that is now (no release entry to follow)."""
    owed = AVAILABLE if available_on <= created else PENDING
    return JournalEntry(
        id=f"je_charge_{charge}",
        merchant_id=merchant_id,
        currency=currency,
        kind=EntryKind.CHARGE,
        source=charge,
        created=created,
        available_on=available_on,
        postings=[
            Posting(account=psp_clearing(connector), amount=amount),
            Posting(account=owed, amount=-amount),
        ],
    )


def release(entry: JournalEntry, created: int) -> JournalEntry:
    """A charge's pending funds become available."""
    amount = -entry.merchant_effect
    return JournalEntry(
        id=f"je_release_{entry.id}",
        merchant_id=entry.merchant_id,
        currency=entry.currency,
        kind=EntryKind.RELEASE,
        source=entry.source,
        created=created,
        available_on=created,
        postings=[
            Posting(account=PENDING, amount=-amount),
            Posting(account=AVAILABLE, amount=amount),
        ],
    )


def refund_hold(
    *, merchant_id: str, currency: str, refund: str, amount: int, created: int
) -> JournalEntry:
    return JournalEntry(
        id=f"je_refund_hold_{refund}",
        merchant_id=merchant_id,
        currency=currency,
        kind=EntryKind.REFUND_HOLD,
        source=refund,
        created=created,
        available_on=created,
        postings=[
            Posting(account=AVAILABLE, amount=amount),
            Posting(account=REFUNDS_IN_FLIGHT, amount=-amount),
        ],
    )


def _clear_hold(hold: JournalEntry, kind: EntryKind, to_account: str, created: int) -> JournalEntry:
    """Empty a refund's hold from refunds in flight into `to_account`."""
    amount = -hold.balance_changes()[REFUNDS_IN_FLIGHT]
    return JournalEntry(
        id=f"je_{kind.value}_{hold.source}",
        merchant_id=hold.merchant_id,
        currency=hold.currency,
        kind=kind,
        source=hold.source,
        created=created,
        available_on=created,
        postings=[
            Posting(account=REFUNDS_IN_FLIGHT, amount=amount),
            Posting(account=to_account, amount=-amount),
        ],
    )


def refund_settle(hold: JournalEntry, connector: str, created: int) -> JournalEntry:
    """The PSP paid the refund out: the hold leaves through the PSP's clearing account."""
    return _clear_hold(hold, EntryKind.REFUND_SETTLE, psp_clearing(connector), created)


def refund_reversal(hold: JournalEntry, created: int) -> JournalEntry:
    """The compensation of a refund the PSP refused: the hold returns to the merchant."""
    return _clear_hold(hold, EntryKind.REFUND_FAILURE, AVAILABLE, created)


def refund_failed_after_settle(settle: JournalEntry, connector: str, created: int) -> JournalEntry:
    """A refund the PSP paid out and later reported failed: the PSP has the money back, and
    it returns to the merchant's available balance."""
    amount = settle.balance_changes()[REFUNDS_IN_FLIGHT]
    return JournalEntry(
        id=f"je_{EntryKind.REFUND_FAILURE.value}_{settle.source}",
        merchant_id=settle.merchant_id,
        currency=settle.currency,
        kind=EntryKind.REFUND_FAILURE,
        source=settle.source,
        created=created,
        available_on=created,
        postings=[
            Posting(account=psp_clearing(connector), amount=amount),
            Posting(account=AVAILABLE, amount=-amount),
        ],
    )


def dispute_move(
    *,
    kind: EntryKind,
    dispute: str,
    sequence: int,
    merchant_id: str,
    currency: str,
    connector: str,
    amount: int,
    fee: int,
    created: int,
) -> JournalEntry:
    """One movement of a dispute's amount and fee (`sequence` numbers the dispute's entries, so
    a retried handler posts each once)."""
    total = amount + fee
    counterpart, merchant_fee = {
        EntryKind.DISPUTE_WITHDRAWAL: (AVAILABLE, fee),
        EntryKind.DISPUTE_REINSTATEMENT: (AVAILABLE, -fee),
        EntryKind.DISPUTE_PAYOUT: (psp_clearing(connector), 0),
    }[kind]
    # A withdrawal debits the merchant and credits disputes_held; the other two empty it.
    held = -total if kind == EntryKind.DISPUTE_WITHDRAWAL else total
    return JournalEntry(
        id=f"je_{kind.value}_{dispute}_{sequence}",
        merchant_id=merchant_id,
        currency=currency,
        kind=kind,
        source=dispute,
        created=created,
        available_on=created,
        postings=[
            Posting(account=DISPUTES_HELD, amount=held),
            Posting(account=counterpart, amount=-held),
        ],
        fee=merchant_fee,
    )


def _entry(
    entry_id: str,
    *,
    merchant_id: str,
    currency: str,
    kind: EntryKind,
    source: str,
    created: int,
    postings: dict[str, int],
) -> JournalEntry:
    return JournalEntry(
        id=entry_id,
        merchant_id=merchant_id,
        currency=currency,
        kind=kind,
        source=source,
        created=created,
        available_on=created,
        postings=[Posting(account=a, amount=v) for a, v in postings.items()],
    )


def provider_fee(
    *, merchant_id: str, currency: str, connector: str, charge: str, fee: int, created: int
) -> JournalEntry:
    """The fee the PSP kept on `charge`: out of the merchant's available balance."""
    return _entry(
        f"je_fee_{charge}",
        merchant_id=merchant_id,
        currency=currency,
        kind=EntryKind.FEE,
        source=charge,
        created=created,
        postings={AVAILABLE: fee, psp_clearing(connector): -fee},
    )


def found_at_provider(
    *, merchant_id: str, currency: str, connector: str, line: str, amount: int, created: int
) -> tuple[JournalEntry, JournalEntry]:
    """A charge the PSP holds and PayFlow never recorded, refunded there: the PSP owed it (into
    suspense), then paid it back (out of suspense). The merchant's balance does not move."""
    common = {
        "merchant_id": merchant_id,
        "currency": currency,
        "kind": EntryKind.RECONCILIATION,
        "source": line,
        "created": created,
    }
    return (
        _entry(
            f"je_recon_found_{line}",
            postings={psp_clearing(connector): amount, SUSPENSE: -amount},
            **common,  # type: ignore[arg-type]
        ),
        _entry(
            f"je_recon_refund_{line}",
            postings={SUSPENSE: amount, psp_clearing(connector): -amount},
            **common,  # type: ignore[arg-type]
        ),
    )


def reconciliation_adjustment(
    *,
    entry_id: str,
    merchant_id: str,
    currency: str,
    connector: str,
    source: str,
    delta: int,
    merchant_bears: bool,
    created: int,
) -> JournalEntry:
    """A resolved difference: the PSP's clearing account moves by `delta` (what the PSP holds
    minus what PayFlow booked) against the merchant's balance or the platform's write-off."""
    counter = AVAILABLE if merchant_bears else WRITE_OFF
    return _entry(
        entry_id,
        merchant_id=merchant_id,
        currency=currency,
        kind=EntryKind.ADJUSTMENT,
        source=source,
        created=created,
        postings={psp_clearing(connector): delta, counter: -delta},
    )


def balance_transaction(entry: JournalEntry, status: str) -> dict[str, Any]:
    """The merchant's view of an entry, Stripe-shaped (`balance_transaction`): `net` is what
    the balance moved, `amount` that before the fee."""
    net = entry.merchant_effect
    fee_details = (
        [
            {
                "amount": entry.fee,
                "application": None,
                "currency": entry.currency,
                "description": "Dispute fee",
                "type": "stripe_fee",
            }
        ]
        if entry.fee
        else []
    )
    return {
        "id": "txn_" + entry.id.removeprefix("je_"),
        "object": "balance_transaction",
        "amount": net + entry.fee,
        "available_on": entry.available_on,
        # Every PayFlow balance is a payments balance (Stripe's other kinds are issuing and
        # reserves, which PayFlow has not).
        "balance_type": "payments",
        "created": entry.created,
        "currency": entry.currency,
        "description": None,
        "fee": entry.fee,
        "fee_details": fee_details,
        "net": net,
        "reporting_category": _REPORTING[entry.kind],
        "source": entry.source,
        "status": status,
        "type": _TYPES.get(entry.kind, entry.kind.value),
    }


_REPORTING = {
    EntryKind.CHARGE: "charge",
    EntryKind.RELEASE: "transfer",
    EntryKind.REFUND_HOLD: "refund",
    EntryKind.REFUND_SETTLE: "refund",
    EntryKind.REFUND_FAILURE: "refund_failure",
    EntryKind.DISPUTE_WITHDRAWAL: "dispute",
    EntryKind.DISPUTE_REINSTATEMENT: "dispute_reversal",
    EntryKind.DISPUTE_PAYOUT: "dispute",
    EntryKind.FEE: "fee",
    EntryKind.ADJUSTMENT: "other_adjustment",
    EntryKind.RECONCILIATION: "other_adjustment",
}

_TYPES = {
    EntryKind.DISPUTE_WITHDRAWAL: "adjustment",
    EntryKind.DISPUTE_REINSTATEMENT: "adjustment",
}
"""Stripe's balance transaction type where it differs from the entry's kind: a dispute's
withdrawal and reinstatement are adjustments, told apart by reporting_category."""


def sums(entries: list[JournalEntry]) -> dict[tuple[str, str, str], int]:
    """Balances recomputed from postings: (merchant, currency, account) -> amount."""
    totals: dict[tuple[str, str, str], int] = defaultdict(int)
    for entry in entries:
        for posting in entry.postings:
            totals[(entry.merchant_id, entry.currency, posting.account)] += posting.amount
    return dict(totals)
