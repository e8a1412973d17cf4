"""Disputes: applied from providers' reports, read and answered through the API.

A report (a provider's dispute webhook, or the sandbox's simulated one, both through
PspEventService) moves a dispute only forward (domain.disputes.reported). Each change commits
in one transaction with everything it implies: the dispute, on creation its provider reference
and the charge's `disputed` flag, the ledger entries that move its money, and its
charge.dispute.* events. The dispute's version condition makes a retried or racing report post
nothing twice.
"""

from __future__ import annotations

from typing import Any

from chalicelib.dal.disputes import DisputeRefs
from chalicelib.dal.dynamo import WriteBatch
from chalicelib.dal.ledger import LedgerStore
from chalicelib.domain import disputes as rules
from chalicelib.domain import ledger as ledger_rules
from chalicelib.domain.charges import Charge
from chalicelib.domain.disputes import Dispute, DisputeReport, DisputeStatus, FundsMove
from chalicelib.domain.ids import new_id
from chalicelib.domain.metadata import updated_metadata
from chalicelib.errors import Conflict, StaleWrite, UnexpectedState
from chalicelib.services.charges import CHARGES
from chalicelib.services.context import Outcome, RequestContext
from chalicelib.services.resources import Resource, Resources


def _top_level(dispute: Dispute) -> dict[str, str]:
    attrs = {"status": dispute.status.value, "charge": dispute.charge}
    if dispute.payment_intent:
        attrs["payment_intent"] = dispute.payment_intent
    return attrs


DISPUTES: Resource[Dispute] = Resource(
    kind="dispute", model=Dispute, url="/v1/disputes", noun="dispute", top_level=_top_level
)

_ENTRY_KINDS = {
    FundsMove.WITHDRAW: ledger_rules.EntryKind.DISPUTE_WITHDRAWAL,
    FundsMove.REINSTATE: ledger_rules.EntryKind.DISPUTE_REINSTATEMENT,
    FundsMove.PAY_OUT: ledger_rules.EntryKind.DISPUTE_PAYOUT,
}
_RACES = 8


class DisputeService:
    """Disputes from providers' reports, and the merchant's side of them."""

    def __init__(self, resources: Resources, ledger: LedgerStore, refs: DisputeRefs) -> None:
        self._r = resources
        self._ledger = ledger
        self._refs = refs

    # -- providers' reports ----------------------------------------------------------------------

    def apply_report(self, provider: str, report: DisputeReport) -> str:
        """Apply a provider's report of a dispute: "applied", "unchanged" (the dispute is past
        what it reports) or "unknown_charge". Safe to run twice."""
        merchant_id = self._r.objects.owner(CHARGES.kind, report.charge_id)
        if merchant_id is None:
            return "unknown_charge"
        for _ in range(_RACES):
            charge = self._r.get(CHARGES, merchant_id, report.charge_id, param="charge")
            known = self._refs.find(provider, report.reference)
            before = self._r.find(DISPUTES, merchant_id, known[1]) if known else None
            status = rules.reported(before, report)
            if status is None:
                return "unchanged"
            batch = WriteBatch()
            if before is None:
                after = self._new(provider, report, charge, status)
                self._refs.add(batch, provider, report.reference, merchant_id, after.id)
                self._r.add_version(batch, CHARGES, _disputed(charge), charge.version)
            else:
                after = before.model_copy(update={"status": status, "version": before.version + 1})
            try:
                self._commit_change(batch, RequestContext(request_id=None), before, after)
            except StaleWrite:
                continue  # another report or the merchant moved it first: decide again
            return "applied"
        raise Conflict("The dispute is changing too fast; the provider will retry.")

    def now(self) -> int:
        """The business clock (the sandbox's settable one)."""
        return self._r.now()

    def disputable_charge(self, merchant_id: str, charge_id: str) -> Charge:
        """The merchant's charge, if a cardholder could dispute it: captured money."""
        charge = self._r.get(CHARGES, merchant_id, charge_id, param="charge")
        if not charge.captured or charge.amount_captured <= 0:
            raise UnexpectedState(
                f"Charge {charge_id} has captured no money; only a captured charge can be "
                "disputed.",
                param="charge",
            )
        return charge

    def by_reference(self, provider: str, reference: str) -> Dispute | None:
        """The dispute a provider knows as `reference` (for reconciliation), or None."""
        known = self._refs.find(provider, reference)
        return self._r.find(DISPUTES, known[0], known[1]) if known else None

    def _new(
        self, provider: str, report: DisputeReport, charge: Charge, status: DisputeStatus
    ) -> Dispute:
        # A dispute is of captured money, never more (a provider's amount could be in another
        # currency's units after conversion; PayFlow keeps the charge's currency).
        captured = charge.amount_captured or charge.amount
        amount = min(report.amount, captured) if report.amount else captured
        return Dispute(
            id=new_id("du", clock=self._r.committer.clock),
            merchant_id=charge.merchant_id,
            charge=charge.id,
            payment_intent=charge.payment_intent,
            amount=amount,
            currency=charge.currency,
            created=self._r.now(),
            status=status,
            reason=report.reason,
            due_by=report.due_by,
            network_reason_code=report.network_reason_code,
            card=charge.card,
            provider=provider,
            provider_reference=report.reference,
            payment_reference=report.payment_reference,
            connector=charge.connector,
        )

    # -- the merchant's side -------------------------------------------------------------------

    def retrieve(self, merchant_id: str, dispute_id: str) -> Dispute:
        return self._r.get(DISPUTES, merchant_id, dispute_id, param="dispute")

    def list_page(
        self,
        merchant_id: str,
        *,
        limit: int,
        starting_after: str | None,
        ending_before: str | None,
        charge: str | None,
        payment_intent: str | None,
    ) -> dict[str, Any]:
        return self._r.list_body(
            DISPUTES,
            merchant_id,
            limit=limit,
            starting_after=starting_after,
            ending_before=ending_before,
            filters={"charge": charge, "payment_intent": payment_intent},
        )

    def update(
        self,
        merchant_id: str,
        dispute_id: str,
        ctx: RequestContext,
        *,
        evidence: dict[str, str] | None,
        submit: bool,
        metadata: dict[str, str] | None,
        metadata_sent: bool,
    ) -> Outcome:
        """Change evidence or metadata, and with `submit` send the evidence (the dispute goes
        under review)."""
        before = self.retrieve(merchant_id, dispute_id)
        current = updated_metadata(before.metadata, metadata) if metadata_sent else before.metadata
        after = rules.with_evidence(before, evidence, submit, current)
        return self._commit_change(WriteBatch(), ctx, before, after)

    def close(self, merchant_id: str, dispute_id: str, ctx: RequestContext) -> Outcome:
        """The merchant accepts the dispute: lost (an inquiry: closed), its funds paid out."""
        before = self.retrieve(merchant_id, dispute_id)
        status = rules.closed_by_merchant(before)
        after = before.model_copy(update={"status": status, "version": before.version + 1})
        return self._commit_change(WriteBatch(), ctx, before, after)

    # -- one change, with its money and its events -----------------------------------------------

    def _commit_change(
        self, batch: WriteBatch, ctx: RequestContext, before: Dispute | None, after: Dispute
    ) -> Outcome:
        moves = rules.moves_between(
            before.funds if before else rules.Funds.UNTOUCHED, rules.funds_for(after.status)
        )
        after = self._post(batch, after, moves)
        if before is None:
            self._r.add_new(batch, DISPUTES, after)
        else:
            self._r.add_version(batch, DISPUTES, after, before.version)
        for event_type in rules.event_types(before, after, moves):
            self._r.add_event(batch, ctx, event_type, after, before)
        return self._r.committer.commit(ctx, batch, Outcome(200, after.to_api()))

    def _post(self, batch: WriteBatch, dispute: Dispute, moves: list[FundsMove]) -> Dispute:
        """Add the ledger entries of `moves`; the dispute as it is after them."""
        if not moves:
            return dispute
        now = self._r.now()
        entries = [
            ledger_rules.dispute_move(
                kind=_ENTRY_KINDS[move],
                dispute=dispute.id,
                sequence=dispute.entries + position,
                merchant_id=dispute.merchant_id,
                currency=dispute.currency,
                connector=dispute.connector or "unknown",
                amount=dispute.amount,
                fee=dispute.fee,
                created=now,
            )
            for position, move in enumerate(moves)
        ]
        self._ledger.add(batch, *entries)
        shown = [
            ledger_rules.balance_transaction(entry, "available")
            for entry in entries
            if entry.merchant_effect
        ]
        return dispute.model_copy(
            update={
                "funds": rules.funds_for(dispute.status),
                "entries": dispute.entries + len(entries),
                "balance_transactions": [*dispute.balance_transactions, *shown],
            }
        )


def _disputed(charge: Charge) -> Charge:
    return charge.model_copy(update={"disputed": True, "version": charge.version + 1})
