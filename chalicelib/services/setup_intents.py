"""SetupIntents: save a payment method for later use, with 3-D Secure when the card asks.

Each operation reads the SetupIntent (and its latest attempt), lets chalicelib.domain.setup_intents
decide the next versions, and commits them with their events in one transaction, conditional on
the versions read. A SetupIntent that succeeds with a customer saves its method to that customer
in the same transaction, so a succeeded SetupIntent never names a method that is not saved.
"""

from __future__ import annotations

from typing import Any

from chalicelib.dal.dynamo import WriteBatch
from chalicelib.domain import setup_intents as rules
from chalicelib.domain.ids import new_id, new_secret
from chalicelib.domain.payment_methods import PaymentMethod
from chalicelib.domain.setup_intents import (
    AutomaticPaymentMethods,
    Handover,
    SetupAttempt,
    SetupCancellationReason,
    SetupIntent,
    SetupIntentStatus,
    Usage,
)
from chalicelib.errors import CardError
from chalicelib.services.context import Outcome, RequestContext
from chalicelib.services.customers import CustomerService
from chalicelib.services.payment_methods import PaymentMethodService
from chalicelib.services.resources import Resource, Resources


def _intent_top_level(si: SetupIntent) -> dict[str, str]:
    """What the list filters read: `customer=` and `payment_method=`."""
    attrs = {}
    if si.customer:
        attrs["customer"] = si.customer
    if si.payment_method:
        attrs["payment_method"] = si.payment_method
    return attrs


SETUP_INTENTS: Resource[SetupIntent] = Resource(
    kind="setup_intent",
    model=SetupIntent,
    url="/v1/setup_intents",
    noun="setupintent",
    top_level=_intent_top_level,
)

SETUP_ATTEMPTS: Resource[SetupAttempt] = Resource(
    kind="setup_attempt",
    model=SetupAttempt,
    url="/v1/setup_attempts",
    noun="setupattempt",
    top_level=lambda attempt: {"setup_intent": attempt.setup_intent},
)


def authenticate_url(origin: str, setup_intent_id: str) -> str:
    """Where `next_action` sends the customer: the sandbox's stand-in for the bank's page."""
    return f"{origin}/v1/sandbox/setup_intents/{setup_intent_id}/authenticate"


class SetupIntentService:
    """Every SetupIntent operation; writes are conditional on the version read."""

    def __init__(
        self,
        resources: Resources,
        payment_methods: PaymentMethodService,
        customers: CustomerService,
    ) -> None:
        self._r = resources
        self._payment_methods = payment_methods
        self._customers = customers

    # -- reads ---------------------------------------------------------------------------------

    def retrieve(self, merchant_id: str, si_id: str) -> SetupIntent:
        return self._r.get(SETUP_INTENTS, merchant_id, si_id, param="intent")

    def attempt(self, merchant_id: str, attempt_id: str) -> SetupAttempt:
        return self._r.get(SETUP_ATTEMPTS, merchant_id, attempt_id, param="id")

    def list_page(
        self,
        merchant_id: str,
        *,
        limit: int,
        starting_after: str | None,
        ending_before: str | None,
        customer: str | None,
        payment_method: str | None,
    ) -> dict[str, Any]:
        return self._r.list_body(
            SETUP_INTENTS,
            merchant_id,
            limit=limit,
            starting_after=starting_after,
            ending_before=ending_before,
            filters={"customer": customer, "payment_method": payment_method},
        )

    def list_attempts(
        self,
        merchant_id: str,
        setup_intent: str,
        *,
        limit: int,
        starting_after: str | None,
        ending_before: str | None,
    ) -> dict[str, Any]:
        """`GET /v1/setup_attempts?setup_intent=`: a SetupIntent's attempts, newest first."""
        self._r.get(SETUP_INTENTS, merchant_id, setup_intent, param="setup_intent")
        return self._r.list_body(
            SETUP_ATTEMPTS,
            merchant_id,
            limit=limit,
            starting_after=starting_after,
            ending_before=ending_before,
            filters={"setup_intent": setup_intent},
        )

    # -- writes --------------------------------------------------------------------------------

    def create(
        self,
        merchant_id: str,
        ctx: RequestContext,
        *,
        origin: str,
        customer: str | None,
        payment_method: str | None,
        usage: Usage,
        confirm: bool,
        handover: Handover,
        payment_method_types: list[str] | None,
        automatic: AutomaticPaymentMethods | None,
        description: str | None,
        metadata: dict[str, str] | None,
    ) -> Outcome:
        """`POST /v1/setup_intents`; with `confirm`, the first attempt runs in the same call."""
        handover.check_with(confirm)
        si_id = ctx.claim.object_id if ctx.claim else new_id("seti")
        if ctx.claim is not None and ctx.claim.taken_over:
            existing = self._r.find(SETUP_INTENTS, merchant_id, si_id)
            if existing is not None:
                return Outcome(200, existing.to_api())
        if customer is not None:
            self._customers.active(merchant_id, customer)
        si = rules.create(
            id=si_id,
            merchant_id=merchant_id,
            created=self._r.now(),
            client_secret=f"{si_id}_secret_{new_secret('', 24)}",
            usage=usage,
            customer=customer,
            payment_method=payment_method,
            payment_method_types=payment_method_types,
            automatic=automatic,
            description=description,
            metadata=metadata,
        )
        pm = self._method(si, payment_method) if payment_method else None
        batch = WriteBatch()
        self._r.add_event(batch, ctx, "setup_intent.created", si)
        if not confirm:
            self._r.add_new(batch, SETUP_INTENTS, si)
            return self._r.committer.commit(ctx, batch, Outcome(200, si.to_api()))
        rules.check_confirm(si, payment_method)
        assert pm is not None
        return self._attempt(batch, ctx, None, si, pm, new_id("setatt"), handover, origin)

    def update(
        self, merchant_id: str, si_id: str, ctx: RequestContext, changes: dict[str, Any]
    ) -> Outcome:
        si = self.retrieve(merchant_id, si_id)
        after = rules.update(si, changes)
        if after.customer != si.customer and after.customer is not None:
            self._customers.active(merchant_id, after.customer)
        if after.payment_method is not None and (
            after.payment_method != si.payment_method or after.customer != si.customer
        ):
            self._method(after, after.payment_method)
        batch = WriteBatch()
        self._r.add_version(batch, SETUP_INTENTS, after, si.version)
        # Stripe has no setup_intent.updated event: an update announces nothing.
        return self._r.committer.commit(ctx, batch, Outcome(200, after.to_api()))

    def confirm(
        self,
        merchant_id: str,
        si_id: str,
        ctx: RequestContext,
        *,
        origin: str,
        payment_method: str | None,
        handover: Handover,
    ) -> Outcome:
        si = self.retrieve(merchant_id, si_id)
        self._check_customer(si)
        pm = self._method(si, rules.check_confirm(si, payment_method))
        # The claim's reserved id (`creates="setatt"`) makes a retried confirm write the same
        # attempt, which can only be written once.
        attempt_id = ctx.claim.object_id if ctx.claim else new_id("setatt")
        return self._attempt(WriteBatch(), ctx, si, si, pm, attempt_id, handover, origin)

    def cancel(
        self,
        merchant_id: str,
        si_id: str,
        ctx: RequestContext,
        reason: SetupCancellationReason | None,
    ) -> Outcome:
        si = self.retrieve(merchant_id, si_id)
        after = rules.canceled(si, reason)
        batch = WriteBatch()
        self._add_abandoned(batch, si)
        self._add_change(batch, ctx, si, after)
        return self._r.committer.commit(ctx, batch, Outcome(200, after.to_api()))

    def complete_authentication(
        self, merchant_id: str, si_id: str, ctx: RequestContext, *, succeeded: bool
    ) -> Outcome:
        """What the customer's 3-D Secure step decides (a sandbox stand-in for the bank page)."""
        si = self.retrieve(merchant_id, si_id)
        attempt = self._latest(si)
        self._check_customer(si)
        pm = self._payment_methods.usable(merchant_id, attempt.payment_method, si.customer)
        after, after_attempt = rules.authenticated(si, attempt, pm, succeeded=succeeded)
        batch = WriteBatch()
        if after.status == SetupIntentStatus.SUCCEEDED:
            after, after_attempt = self._add_saved(batch, ctx, after, after_attempt, pm)
        self._r.add_version(batch, SETUP_ATTEMPTS, after_attempt, attempt.version)
        self._add_change(batch, ctx, si, after)
        return self._r.committer.commit(ctx, batch, Outcome(200, after.to_api()))

    # -- helpers -------------------------------------------------------------------------------

    def _method(self, si: SetupIntent, pm_id: str) -> PaymentMethod:
        """The method a SetupIntent names, usable by its customer and of a type it takes."""
        pm = self._payment_methods.usable(si.merchant_id, pm_id, si.customer)
        rules.check_type(si, pm)
        return pm

    def _check_customer(self, si: SetupIntent) -> None:
        """A customer deleted since the SetupIntent was made cannot have a method saved."""
        if si.customer is not None:
            self._customers.active(si.merchant_id, si.customer)

    def _latest(self, si: SetupIntent) -> SetupAttempt:
        """The attempt waiting for 3-D Secure (a confirm records it with requires_action)."""
        rules.require_action(si)
        assert si.latest_attempt is not None, (
            "only a confirm moves a SetupIntent to requires_action"
        )
        return self.attempt(si.merchant_id, si.latest_attempt)

    def _attempt(
        self,
        batch: WriteBatch,
        ctx: RequestContext,
        before: SetupIntent | None,
        si: SetupIntent,
        pm: PaymentMethod,
        attempt_id: str,
        handover: Handover,
        origin: str,
    ) -> Outcome:
        """Confirm `si` with `pm`: a new SetupAttempt, and the SetupIntent it leaves behind."""
        after, attempt = rules.attempted(
            si,
            pm,
            attempt_id=attempt_id,
            created=self._r.now(),
            handover=handover,
            action_url=authenticate_url(origin, si.id),
        )
        if after.status == SetupIntentStatus.SUCCEEDED:
            after, attempt = self._add_saved(batch, ctx, after, attempt, pm)
        if before is not None:
            self._add_abandoned(batch, before)
        self._r.add_new(batch, SETUP_ATTEMPTS, attempt)
        if before is None:
            # Created and confirmed in one call: one write of the final state, both events.
            self._r.add_new(batch, SETUP_INTENTS, after)
            self._announce(batch, ctx, si, after)
        else:
            self._add_change(batch, ctx, before, after)
        error = after.last_setup_error
        if after.status == SetupIntentStatus.REQUIRES_PAYMENT_METHOD and error is not None:
            declined = CardError(
                error.message,
                code=error.code,
                extra={
                    "decline_code": error.decline_code,
                    "payment_method": error.payment_method,
                    "setup_intent": after.to_api(),
                },
            )
            return self._r.committer.commit(
                ctx, batch, Outcome(declined.http_status, declined.to_body())
            )
        return self._r.committer.commit(ctx, batch, Outcome(200, after.to_api()))

    def _add_saved(
        self,
        batch: WriteBatch,
        ctx: RequestContext,
        si: SetupIntent,
        attempt: SetupAttempt,
        pm: PaymentMethod,
    ) -> tuple[SetupIntent, SetupAttempt]:
        """The succeeded setup's method, set up for off-session use and saved to the customer
        (a test card's id becomes a saved copy, which both then name)."""
        if si.customer is None:
            self._payment_methods.add_set_up(batch, pm)
            return si, attempt
        # One write per item in a transaction: the attach itself carries the set-up mark.
        attach = self._payment_methods.plan_attach(si.merchant_id, pm.id, si.customer, set_up=True)
        self._payment_methods.add_attach(batch, ctx, attach)
        if attach.after.id != pm.id:
            return rules.saved_as(si, attempt, attach.after.id)
        return si, attempt

    def _add_abandoned(self, batch: WriteBatch, si: SetupIntent) -> None:
        """The attempt left waiting for 3-D Secure when the SetupIntent moves on."""
        if si.status != SetupIntentStatus.REQUIRES_ACTION or si.latest_attempt is None:
            return
        attempt = self.attempt(si.merchant_id, si.latest_attempt)
        if attempt.status == rules.SetupAttemptStatus.REQUIRES_ACTION:
            self._r.add_version(batch, SETUP_ATTEMPTS, rules.abandoned(attempt), attempt.version)

    def _add_change(
        self, batch: WriteBatch, ctx: RequestContext, before: SetupIntent, after: SetupIntent
    ) -> None:
        self._r.add_version(batch, SETUP_INTENTS, after, before.version)
        self._announce(batch, ctx, before, after)

    def _announce(
        self, batch: WriteBatch, ctx: RequestContext, before: SetupIntent, after: SetupIntent
    ) -> None:
        event_type = rules.event_type_for(before, after)
        if event_type is not None:
            self._r.add_event(batch, ctx, event_type, after, before)
