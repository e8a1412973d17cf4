"""A reconciliation run and the exceptions it finds, as stored and as the API shows them."""

from __future__ import annotations

from datetime import date, timedelta
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

from chalicelib.errors import ResourceMissing
from chalicelib.reconciliation.bank import StatementFormat
from chalicelib.reconciliation.matching import ExceptionKind, ExceptionStatus, Repair, Resolution
from chalicelib.reconciliation.reports import BankLine


class RunStatus(StrEnum):
    """Where a run stands."""

    RUNNING = "running"
    """Its workflow is matching."""
    SUCCEEDED = "succeeded"
    """Every line, booking and payout was matched or became an exception."""
    FAILED = "failed"
    """The workflow failed (`failure` says why); running it again is safe."""


class ReconciliationRun(BaseModel):
    """One reconciliation of one merchant's day."""

    id: str
    merchant_id: str
    date: str
    sla_days: int
    status: RunStatus = RunStatus.RUNNING
    created: int
    completed_at: int | None = None
    providers: list[str] = Field(default_factory=list)
    skipped_providers: dict[str, str] = Field(default_factory=dict)
    """Connectors whose settlement reports PayFlow cannot read yet, and why."""
    rows: int = 0
    matched: int = 0
    exceptions: int = 0
    repaired: int = 0
    awaiting_settlement: int = 0
    payouts: int = 0
    payouts_matched: int = 0
    """Payouts the bank received as promised."""
    awaiting_bank: int = 0
    """Payouts not in the bank yet whose window is still open (or not covered to its end)."""
    bank_covers: list[str] = Field(default_factory=list)
    """Connectors whose payouts this run matched with the bank."""
    bank_not_covered: dict[str, str] = Field(default_factory=dict)
    """Connectors whose payouts it could not (no statement covers their window), and why."""
    bank_statements: list[str] = Field(default_factory=list)
    """The uploaded statements it read."""
    exceptions_by_kind: dict[str, int] = Field(default_factory=dict)
    fees: dict[str, int] = Field(default_factory=dict)
    """Provider fees booked by this run, per currency."""
    failure: str | None = None
    version: int = 0

    def to_api(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "reconciliation.run",
            "created": self.created,
            "date": self.date,
            "sla_days": self.sla_days,
            "status": self.status.value,
            "completed_at": self.completed_at,
            "providers": list(self.providers),
            "skipped_providers": dict(self.skipped_providers),
            "counts": {
                "rows": self.rows,
                "matched": self.matched,
                "exceptions": self.exceptions,
                "repaired": self.repaired,
                "awaiting_settlement": self.awaiting_settlement,
                "payouts": self.payouts,
                "payouts_matched": self.payouts_matched,
                "awaiting_bank": self.awaiting_bank,
            },
            "bank_covers": list(self.bank_covers),
            "bank_not_covered": dict(self.bank_not_covered),
            "bank_statements": list(self.bank_statements),
            "exceptions_by_kind": dict(self.exceptions_by_kind),
            "fees": dict(self.fees),
            "failure": self.failure,
            "livemode": False,
        }


class ReconciliationException(BaseModel):
    """A line, booking or payout that did not match."""

    id: str
    merchant_id: str
    run: str
    kind: ExceptionKind
    status: ExceptionStatus = ExceptionStatus.OPEN
    provider: str
    subject: str
    row_id: str | None = None
    object_id: str | None = None
    payment_intent: str | None = None
    psp_reference: str | None = None
    currency: str
    provider_amount: int
    payflow_amount: int
    payflow_currency: str | None = None
    repair: Repair | None = None
    repair_error: str | None = None
    resolution: Resolution | None = None
    resolved_at: int | None = None
    ledger_entries: list[str] = Field(default_factory=list)
    created: int
    version: int = 1

    @property
    def delta(self) -> int:
        return self.provider_amount - self.payflow_amount

    def to_api(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "reconciliation.exception",
            "created": self.created,
            "run": self.run,
            "kind": self.kind.value,
            "status": self.status.value,
            "provider": self.provider,
            "subject": self.subject,
            "settlement_line": self.row_id,
            "object_id": self.object_id,
            "payment_intent": self.payment_intent,
            "psp_reference": self.psp_reference,
            "currency": self.currency,
            "provider_amount": self.provider_amount,
            "payflow_amount": self.payflow_amount,
            # PayFlow's side in its own currency: another than `currency` for a mismatch only.
            "payflow_currency": self.payflow_currency or self.currency,
            "difference": self.delta,
            "repair": self.repair.value if self.repair else None,
            "repair_error": self.repair_error,
            "resolution": self.resolution.value if self.resolution else None,
            "resolved_at": self.resolved_at,
            "ledger_entries": list(self.ledger_entries),
            "livemode": False,
        }


ENTRIES_SHOWN = 100
"""Entries a statement shows inline (its `entries` list pages through the rest)."""


class BankStatement(BaseModel):
    """A bank statement the merchant uploaded: its entries, credits and debits alike (only
    credits are matched with payouts)."""

    id: str
    merchant_id: str
    created: int
    format: StatementFormat
    statement_ids: list[str] = Field(default_factory=list)
    account: str | None = None
    period_start: str
    period_end: str
    sha256: str
    skipped: int = 0
    lines: list[BankLine] = Field(default_factory=list)
    version: int = 0

    def days(self) -> list[str]:
        """Every day the statement covers."""
        start, end = date.fromisoformat(self.period_start), date.fromisoformat(self.period_end)
        return [(start + timedelta(days=n)).isoformat() for n in range((end - start).days + 1)]

    def to_api(self) -> dict[str, Any]:
        totals: dict[str, dict[str, int]] = {}
        for line in self.lines:
            side = "credits" if line.credit else "debits"
            totals.setdefault(line.currency, {"credits": 0, "debits": 0})[side] += abs(line.amount)
        return {
            "id": self.id,
            "object": "reconciliation.bank_statement",
            "created": self.created,
            "format": self.format.value,
            "statement_ids": list(self.statement_ids),
            "account": self.account,
            "period": {"start": self.period_start, "end": self.period_end},
            "counts": {
                "entries": len(self.lines),
                "credits": sum(1 for line in self.lines if line.credit),
                "debits": sum(1 for line in self.lines if not line.credit),
                "skipped": self.skipped,
            },
            "totals": totals,
            "sha256": self.sha256,
            "entries": self.entries_page(limit=ENTRIES_SHOWN),
            "livemode": False,
        }

    def entries_page(
        self, *, limit: int, starting_after: str | None = None, ending_before: str | None = None
    ) -> dict[str, Any]:
        """A Stripe list of the statement's entries, in the statement's order (cursors are
        entry ids, as Stripe pages an invoice's lines); an unknown cursor is a 404."""
        ids = [line.entry_id for line in self.lines]
        start, end = 0, len(ids)
        for cursor, param in ((starting_after, "starting_after"), (ending_before, "ending_before")):
            if cursor is not None and cursor not in ids:
                raise ResourceMissing(f"No such entry: '{cursor}'", param=param)
        if starting_after is not None:
            start = ids.index(starting_after) + 1
            end = min(len(ids), start + limit)
        elif ending_before is not None:
            end = ids.index(ending_before)
            start = max(0, end - limit)
        else:
            end = min(len(ids), limit)
        more = end < len(ids) if ending_before is None else start > 0
        return {
            "object": "list",
            "data": [_entry(line) for line in self.lines[start:end]],
            "has_more": more,
            "url": f"/v1/reconciliation/bank_statements/{self.id}/entries",
        }


def _entry(line: BankLine) -> dict[str, Any]:
    return {
        "id": line.entry_id,
        "object": "reconciliation.bank_statement_entry",
        "direction": "credit" if line.credit else "debit",
        "amount": abs(line.amount),
        "currency": line.currency,
        "booking_date": line.booking_date,
        "value_date": line.value_date,
        "reference": line.reference,
        "bank_reference": line.bank_reference,
        "end_to_end_id": line.end_to_end_id,
        "description": line.description,
        "counterparty": line.counterparty,
    }
