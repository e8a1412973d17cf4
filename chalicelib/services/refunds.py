"""Refunds, and the tasks of the refund saga (statemachines/refund.asl.json).

Creating a refund reserves its amount on the PaymentIntent (a write conditional on the version
read, so concurrent refunds can never exceed what was received), records the refund and its
`refund.created` event in one transaction, and starts the saga named by the refund id:

Hold (ledger: available -> refunds in flight) -> RefundAtPsp (retries transient errors) ->
Settle (refunds in flight -> PSP clearing; refund succeeded, charge.refunded)
or, when the PSP refuses (or a lost answer turns out to be no refund), Compensate (the hold goes
back; the reservation is released; refund failed with its failure_reason).

Every task checks the refund's state first and writes conditionally: running one twice changes
nothing.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from chalicelib.connectors.registry import ConnectorRegistry
from chalicelib.dal.dynamo import ConditionFailed, WriteBatch
from chalicelib.dal.ledger import LedgerStore
from chalicelib.dal.objects import ObjectStore
from chalicelib.dal.workflows import PaymentWorkflows
from chalicelib.domain import ledger as ledger_rules
from chalicelib.domain.charges import Charge
from chalicelib.domain.disputes import Dispute
from chalicelib.domain.ids import new_id
from chalicelib.domain.metadata import merge_metadata
from chalicelib.domain.payment_intents import PaymentIntent
from chalicelib.domain.refunds import Refund, RefundReason, RefundStatus, refundable
from chalicelib.errors import (
    Conflict,
    InvalidRequestError,
    ParameterMissing,
    StaleWrite,
    UnexpectedState,
)
from chalicelib.services.charges import ChargeService
from chalicelib.services.context import (
    Committer,
    Outcome,
    RequestContext,
    add_event,
    fetch,
    list_body,
)

KIND = "refund"
PI_KIND = "payment_intent"
_RACES = 8
_COMPENSABLE = frozenset({RefundStatus.PENDING})
"""What the saga's compensation fails: a refund the PSP refused before paying it out."""
_FAILABLE = frozenset({RefundStatus.PENDING, RefundStatus.SUCCEEDED})
"""What a provider's failure report fails: also a refund it paid out and took back."""


class RefundService:
    """Refunds through the API, and the saga's tasks."""

    def __init__(
        self,
        objects: ObjectStore,
        committer: Committer,
        ledger: LedgerStore,
        registry: ConnectorRegistry,
        workflows: PaymentWorkflows,
        charges: ChargeService,
        *,
        wait_ms: int = 5000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._objects = objects
        self._committer = committer
        self._ledger = ledger
        self._registry = registry
        self._workflows = workflows
        self._charges = charges
        self._wait_ms = wait_ms
        self._clock = clock

    # -- API -----------------------------------------------------------------------------------

    def create(
        self,
        merchant_id: str,
        ctx: RequestContext,
        *,
        payment_intent: str | None,
        amount: int | None,
        reason: RefundReason | None,
        metadata: dict[str, str] | None,
        charge: str | None = None,
        instructions_email: str | None = None,
    ) -> Outcome:
        """Refund a PaymentIntent, named directly or by its charge (Stripe takes either)."""
        payment_intent = self._payment_intent_of(merchant_id, payment_intent, charge)
        refund_id = ctx.claim.object_id if ctx.claim else new_id("re")
        existing = self._objects.get(KIND, merchant_id, refund_id) if ctx.claim else None
        if existing is None:
            self._reserve_and_record(
                merchant_id,
                ctx,
                refund_id,
                payment_intent,
                amount,
                reason,
                metadata,
                instructions_email,
            )
        self._workflows.start(refund_id, {"refund_id": refund_id, "merchant_id": merchant_id})
        refund = self._workflows.wait_for(
            lambda: self.retrieve(merchant_id, refund_id),
            lambda current: current.status != RefundStatus.PENDING,
            self._wait_ms,
        )
        return Outcome(200, refund.to_api())

    def _reserve_and_record(
        self,
        merchant_id: str,
        ctx: RequestContext,
        refund_id: str,
        payment_intent: str,
        amount: int | None,
        reason: RefundReason | None,
        metadata: dict[str, str] | None,
        instructions_email: str | None,
    ) -> None:
        for _ in range(_RACES):
            pi = self._payment_intent(merchant_id, payment_intent)
            take = refundable(pi, amount)
            refund = Refund(
                id=refund_id,
                merchant_id=merchant_id,
                amount=take,
                currency=pi.currency,
                payment_intent=pi.id,
                charge=pi.latest_charge,
                reason=reason,
                metadata=metadata or {},
                created=int(self._clock()),
                connector=pi.connector or "",
                psp_reference=pi.psp_reference or "",
                instructions_email=instructions_email,
            )
            reserved = pi.model_copy(
                update={"amount_refunded": pi.amount_refunded + take, "version": pi.version + 1}
            )
            charge = (
                self._charges.find(pi.merchant_id, pi.latest_charge) if pi.latest_charge else None
            )
            if charge is not None and charge.disputed and not self._inquiry_only(charge):
                # The cardholder's bank already took the money back: a refund would pay twice.
                # The charge's version is in the batch, so a dispute opened meanwhile fails it.
                raise InvalidRequestError(
                    f"Charge {charge.id} has been charged back; cannot issue a refund.",
                    code="charge_disputed",
                    param="charge",
                )
            batch = WriteBatch()
            self._objects.put_version(batch, PI_KIND, reserved, pi.version, **pi.attributes())
            if charge is not None:
                self._charges.add_refund(batch, ctx, charge, take)
            self._objects.put_new(batch, KIND, refund, **_attributes(refund))
            self._event(batch, ctx, "refund.created", merchant_id, refund.to_api())
            try:
                self._committer.commit(ctx, batch, Outcome(200, refund.to_api()), complete=False)
                return
            except StaleWrite:
                continue  # another refund or change won the PaymentIntent: read it again
        raise Conflict("The PaymentIntent is changing too fast; retry the refund.")

    def retrieve(self, merchant_id: str, refund_id: str) -> Refund:
        return fetch(self._objects, KIND, Refund, merchant_id, refund_id, param="refund")

    def list_page(
        self,
        merchant_id: str,
        *,
        limit: int,
        starting_after: str | None,
        ending_before: str | None,
        payment_intent: str | None,
        charge: str | None = None,
    ) -> dict[str, Any]:
        filters = {"payment_intent": payment_intent} if payment_intent else {}
        if charge:
            filters["charge"] = charge
        return list_body(
            self._objects,
            KIND,
            Refund,
            merchant_id,
            "/v1/refunds",
            limit=limit,
            starting_after=starting_after,
            ending_before=ending_before,
            filters=filters or None,
        )

    def update(
        self, merchant_id: str, refund_id: str, ctx: RequestContext, metadata: dict[str, str] | None
    ) -> Outcome:
        refund = self.retrieve(merchant_id, refund_id)
        after = refund.model_copy(
            update={
                "metadata": {} if metadata is None else merge_metadata(refund.metadata, metadata),
                "version": refund.version + 1,
            }
        )
        batch = WriteBatch()
        self._put(batch, after, refund.version)
        return self._committer.commit(ctx, batch, Outcome(200, after.to_api()))

    def cancel(self, merchant_id: str, refund_id: str, ctx: RequestContext) -> Outcome:
        refund = self.retrieve(merchant_id, refund_id)
        if refund.status != RefundStatus.REQUIRES_ACTION:
            raise UnexpectedState(
                f"This refund has a status of {refund.status.value}; only a refund that "
                "requires_action can be canceled.",
                code="refund_unexpected_state",
            )
        # No PayFlow connector leaves a refund in requires_action; this is Stripe's rule.
        raise UnexpectedState("This refund cannot be canceled.", code="refund_unexpected_state")

    # -- the saga's tasks ----------------------------------------------------------------------

    def hold(self, task: dict[str, Any]) -> dict[str, Any]:
        """Move the refund's amount from the merchant's available balance to refunds in
        flight."""
        refund = self.retrieve(task["merchant_id"], task["refund_id"])
        if refund.held or refund.status != RefundStatus.PENDING:
            return {"held": refund.held}
        entry = ledger_rules.refund_hold(
            merchant_id=refund.merchant_id,
            currency=refund.currency,
            refund=refund.id,
            amount=refund.amount,
            created=int(self._clock()),
        )
        txn = ledger_rules.balance_transaction(entry, "available")["id"]
        after = refund.model_copy(
            update={"held": True, "balance_transaction": txn, "version": refund.version + 1}
        )
        batch = WriteBatch()
        self._ledger.add(batch, entry)
        self._put(batch, after, refund.version)
        self._commit_once(batch)
        return {"held": True}

    def refund_at_psp(self, task: dict[str, Any]) -> dict[str, Any]:
        """Ask the connector that captured to pay the refund out (key: the refund id)."""
        refund = self.retrieve(task["merchant_id"], task["refund_id"])
        if refund.status != RefundStatus.PENDING:
            return {"status": refund.status.value}
        connector = self._registry.connector_for(refund.merchant_id, refund.connector)
        connector.refund(refund.psp_reference, refund.amount, idempotency_key=refund.id)
        return {"status": "refunded"}

    def check_at_psp(self, task: dict[str, Any]) -> dict[str, Any]:
        """After the PSP's answers were lost: did the refund go through there?"""
        refund = self.retrieve(task["merchant_id"], task["refund_id"])
        connector = self._registry.connector_for(refund.merchant_id, refund.connector)
        return {"refunded": connector.refunded(refund.psp_reference, refund.id)}

    def settle(self, task: dict[str, Any]) -> dict[str, Any]:
        """The PSP paid the refund: settle the hold through the PSP's clearing account."""
        refund = self.retrieve(task["merchant_id"], task["refund_id"])
        if refund.status != RefundStatus.PENDING:
            return {"status": refund.status.value}
        hold = self._ledger.entry(f"je_refund_hold_{refund.id}")
        if hold is None:
            raise UnexpectedState(f"refund {refund.id} reached settlement without its hold")
        after = refund.model_copy(
            update={"status": RefundStatus.SUCCEEDED, "version": refund.version + 1}
        )
        batch = WriteBatch()
        self._ledger.add(
            batch, ledger_rules.refund_settle(hold, refund.connector, int(self._clock()))
        )
        self._put(batch, after, refund.version)
        ctx = RequestContext(request_id=None)
        self._event(
            batch,
            ctx,
            "refund.updated",
            refund.merchant_id,
            after.to_api(),
            refund.to_api(),
        )
        charge = self._charges.find(refund.merchant_id, refund.charge) if refund.charge else None
        if charge is not None:
            self._event(batch, ctx, "charge.refunded", refund.merchant_id, charge.to_api())
        self._commit_once(batch)
        return {"status": after.status.value}

    def compensate(self, task: dict[str, Any]) -> dict[str, Any]:
        """The PSP refused (or never refunded): give the hold back, release the reservation on
        the PaymentIntent, and fail the refund with Stripe's failure_reason."""
        reason = _failure_reason(task.get("failure") or {})
        # Only a pending refund: the saga's compensation of a refund that settled meanwhile
        # (a retried task) must change nothing.
        status, _ = self._fail(task["merchant_id"], task["refund_id"], reason, _COMPENSABLE)
        return {"status": status.value}

    def fail_reported(self, refund_id: str | None, reason: str | None) -> str:
        """A provider reports the refund failed (Adyen REFUND_FAILED, Razorpay refund.failed,
        Stripe's refund in status failed), possibly after it was reported paid out: the refund
        fails and its money goes back to the merchant. "applied", "unchanged" (failed already)
        or "unknown_refund". Safe to run twice."""
        merchant_id = self._objects.owner(KIND, refund_id) if refund_id else None
        if merchant_id is None or refund_id is None:
            return "unknown_refund"
        _, changed = self._fail(merchant_id, refund_id, reason or "unknown", _FAILABLE)
        return "applied" if changed else "unchanged"

    def _fail(
        self,
        merchant_id: str,
        refund_id: str,
        reason: str,
        failable: frozenset[RefundStatus],
    ) -> tuple[RefundStatus, bool]:
        """Fail a pending or succeeded refund: the ledger gives its money back (a pending one's
        hold, a succeeded one's payout through the PSP), the reservation on the PaymentIntent
        and the charge is released, and refund.failed, refund.updated and charge.refund.updated
        announce it, all in one transaction conditional on the versions read. Returns the
        refund's status and whether this call failed it (a racing copy finds it done)."""
        for _ in range(_RACES):
            refund = self.retrieve(merchant_id, refund_id)
            if refund.status not in failable:
                return refund.status, False
            pi = self._payment_intent(refund.merchant_id, refund.payment_intent)
            batch = WriteBatch()
            reversal = self._reversal(refund)
            failure_txn = None
            if reversal is not None:
                self._ledger.add(batch, reversal)
                failure_txn = ledger_rules.balance_transaction(reversal, "available")["id"]
            after = refund.model_copy(
                update={
                    "status": RefundStatus.FAILED,
                    "failure_reason": reason,
                    "failure_balance_transaction": failure_txn,
                    "version": refund.version + 1,
                }
            )
            released = pi.model_copy(
                update={
                    "amount_refunded": pi.amount_refunded - refund.amount,
                    "version": pi.version + 1,
                }
            )
            self._put(batch, after, refund.version)
            self._objects.put_version(batch, PI_KIND, released, pi.version, **pi.attributes())
            ctx = RequestContext(request_id=None)
            self._charge_refunded(batch, ctx, pi, -refund.amount)
            self._event(batch, ctx, "refund.failed", refund.merchant_id, after.to_api())
            for event_type in ("refund.updated", "charge.refund.updated"):
                self._event(
                    batch, ctx, event_type, refund.merchant_id, after.to_api(), refund.to_api()
                )
            try:
                self._committer.commit(ctx, batch, Outcome(200, {}), complete=False)
                return after.status, True
            except StaleWrite:
                continue
        raise Conflict("The PaymentIntent is changing too fast; the refund's failure is retried.")

    def _reversal(self, refund: Refund) -> ledger_rules.JournalEntry | None:
        """The entry that gives a failing refund's money back: a settled refund's payout
        returns from the PSP, a held one's hold is released; None when nothing was held."""
        now = int(self._clock())
        if refund.status == RefundStatus.SUCCEEDED:
            settle = self._ledger.entry(f"je_refund_settle_{refund.id}")
            if settle is None:
                raise UnexpectedState(f"refund {refund.id} succeeded without its settlement")
            return ledger_rules.refund_failed_after_settle(settle, refund.connector, now)
        hold = self._ledger.entry(f"je_refund_hold_{refund.id}") if refund.held else None
        return ledger_rules.refund_reversal(hold, now) if hold is not None else None

    # -- helpers -------------------------------------------------------------------------------

    def _payment_intent_of(
        self, merchant_id: str, payment_intent: str | None, charge: str | None
    ) -> str:
        if charge:
            found = self._charges.retrieve(merchant_id, charge)
            if payment_intent and payment_intent != found.payment_intent:
                raise InvalidRequestError(
                    f"Charge {charge} does not belong to PaymentIntent {payment_intent}.",
                    param="charge",
                )
            return found.payment_intent
        if not payment_intent:
            raise ParameterMissing(
                "Missing required param: payment_intent (or charge).", param="payment_intent"
            )
        return payment_intent

    def _inquiry_only(self, charge: Charge) -> bool:
        """Whether the charge's dispute is an inquiry, which takes no money: the merchant may
        still refund (Stripe's is_charge_refundable)."""
        page = self._objects.list(
            "dispute",
            charge.merchant_id,
            limit=1,
            starting_after=None,
            ending_before=None,
            filters={"charge": charge.id},
        )
        return all(Dispute.model_validate(item).inquiry for item in page.items)

    def _charge_refunded(
        self, batch: WriteBatch, ctx: RequestContext, pi: PaymentIntent, delta: int
    ) -> None:
        """The charge's amount_refunded moves with the reservation on its PaymentIntent (the
        PaymentIntent's conditional write orders concurrent refunds)."""
        charge = self._charges.find(pi.merchant_id, pi.latest_charge) if pi.latest_charge else None
        if charge is not None:
            self._charges.add_refund(batch, ctx, charge, delta)

    def _put(self, batch: WriteBatch, refund: Refund, expected_version: int) -> None:
        """The refund's next version, with the attributes lists filter on."""
        self._objects.put_version(batch, KIND, refund, expected_version, **_attributes(refund))

    def _payment_intent(self, merchant_id: str, pi_id: str) -> PaymentIntent:
        return fetch(
            self._objects, PI_KIND, PaymentIntent, merchant_id, pi_id, param="payment_intent"
        )

    def _commit_once(self, batch: WriteBatch) -> None:
        # A task that lost to its own earlier run (same deterministic ids, same versions) finds
        # the work done: nothing more to write.
        try:
            self._committer.commit(RequestContext(request_id=None), batch, Outcome(200, {}))
        except (StaleWrite, ConditionFailed):
            return

    def _event(
        self,
        batch: WriteBatch,
        ctx: RequestContext,
        event_type: str,
        merchant_id: str,
        data_object: dict[str, Any],
        previous: dict[str, Any] | None = None,
    ) -> None:
        add_event(
            self._objects,
            batch,
            ctx,
            merchant_id=merchant_id,
            event_type=event_type,
            data_object=data_object,
            created=int(self._clock()),
            before=previous,
        )


def _attributes(refund: Refund) -> dict[str, str]:
    """What refund lists filter on, stored beside the refund."""
    attrs = {"status": refund.status.value, "payment_intent": refund.payment_intent}
    if refund.charge:
        attrs["charge"] = refund.charge
    return attrs


def _failure_reason(failure: dict[str, Any]) -> str:
    """Stripe's failure_reason from the state machine's caught error."""
    if failure.get("Error") == "RefundRefused":
        try:
            return str(json.loads(failure.get("Cause") or "{}").get("errorMessage") or "declined")
        except ValueError:
            return "declined"
    return "unknown"
