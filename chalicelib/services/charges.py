"""Charges: written with the PaymentIntent change that makes or moves them, read through the API."""

from __future__ import annotations

from typing import Any

from chalicelib.dal.dynamo import WriteBatch
from chalicelib.domain import charges as rules
from chalicelib.domain.charges import Charge
from chalicelib.domain.contact import BillingDetails
from chalicelib.domain.metadata import updated_metadata
from chalicelib.domain.payment_intents import PaymentIntent
from chalicelib.services.context import Outcome, RequestContext
from chalicelib.services.resources import Resource, Resources


def _top_level(charge: Charge) -> dict[str, str]:
    attrs = {"status": charge.status.value, "payment_intent": charge.payment_intent}
    if charge.customer:
        attrs["customer"] = charge.customer
    return attrs


CHARGES: Resource[Charge] = Resource(
    kind="charge", model=Charge, url="/v1/charges", noun="charge", top_level=_top_level
)


class ChargeService:
    """Charges follow their PaymentIntent: every write here joins a PaymentIntent's batch."""

    def __init__(self, resources: Resources) -> None:
        self._r = resources

    def retrieve(self, merchant_id: str, charge_id: str, *, param: str = "charge") -> Charge:
        return self._r.get(CHARGES, merchant_id, charge_id, param=param)

    def find(self, merchant_id: str, charge_id: str) -> Charge | None:
        return self._r.find(CHARGES, merchant_id, charge_id)

    def list_page(
        self,
        merchant_id: str,
        *,
        limit: int,
        starting_after: str | None,
        ending_before: str | None,
        payment_intent: str | None,
        customer: str | None,
    ) -> dict[str, Any]:
        return self._r.list_body(
            CHARGES,
            merchant_id,
            limit=limit,
            starting_after=starting_after,
            ending_before=ending_before,
            filters={"payment_intent": payment_intent, "customer": customer},
        )

    def search(
        self, merchant_id: str, *, query: str, limit: int, page: str | None
    ) -> dict[str, Any]:
        return self._r.search_body(CHARGES, merchant_id, query=query, limit=limit, page=page)

    def update(
        self, merchant_id: str, charge_id: str, ctx: RequestContext, changes: dict[str, Any]
    ) -> Outcome:
        charge = self.retrieve(merchant_id, charge_id)
        update: dict[str, Any] = {"version": charge.version + 1}
        if "description" in changes:
            update["description"] = changes["description"] or None
        if "metadata" in changes:
            update["metadata"] = updated_metadata(charge.metadata, changes["metadata"])
        after = charge.model_copy(update=update)
        batch = WriteBatch()
        self._r.add_version(batch, CHARGES, after, charge.version)
        self._r.add_event(batch, ctx, "charge.updated", after, charge)
        return self._r.committer.commit(ctx, batch, Outcome(200, after.to_api()))

    def add_for(
        self,
        batch: WriteBatch,
        ctx: RequestContext,
        before: PaymentIntent,
        after: PaymentIntent,
        billing: BillingDetails | None,
    ) -> None:
        """Add to `batch` what a PaymentIntent change does to its charges: a PSP answer makes
        one; capture and cancel move the latest."""
        if after.latest_charge and after.latest_charge != before.latest_charge:
            made = rules.made_by(after, after.latest_charge, self._r.now(), billing)
            self._r.add_new(batch, CHARGES, made)
            self._announce(batch, ctx, None, made)
            return
        if not after.latest_charge or not rules.may_move(before, after):
            return
        charge = self.find(after.merchant_id, after.latest_charge)
        moved = rules.moved_by(charge, before, after) if charge else None
        if charge is not None and moved is not None:
            self._r.add_version(batch, CHARGES, moved, charge.version)
            self._announce(batch, ctx, charge, moved)

    def add_refund(
        self, batch: WriteBatch, ctx: RequestContext, charge: Charge, delta: int
    ) -> Charge:
        """A refund of `delta` reserved on the charge (a negative delta gives it back)."""
        after = rules.refund_changed(charge, delta)
        self._r.add_version(batch, CHARGES, after, charge.version)
        return after

    def _announce(
        self, batch: WriteBatch, ctx: RequestContext, before: Charge | None, after: Charge
    ) -> None:
        event_type = rules.event_for(before, after)
        if event_type is not None:
            self._r.add_event(batch, ctx, event_type, after, before)
