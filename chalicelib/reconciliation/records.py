"""A reconciliation run and the exceptions it finds, as stored and as the API shows them."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

from chalicelib.reconciliation.matching import ExceptionKind, ExceptionStatus, Repair, Resolution


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
            },
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
