"""The PaymentIntent lifecycle: create, update, confirm, capture, cancel, read and list."""

from __future__ import annotations

from typing import Any

from chalicelib.connectors.base import (
    AuthorizationRequest,
    AuthorizationResult,
    AuthorizationStatus,
    Connector,
)
from chalicelib.dal.dynamo import WriteBatch
from chalicelib.dal.objects import ObjectStore
from chalicelib.domain import payment_intents as rules
from chalicelib.domain.events import Event, previous_attributes
from chalicelib.domain.ids import new_id, new_secret
from chalicelib.domain.payment_intents import (
    CancellationReason,
    CaptureMethod,
    PaymentError,
    PaymentIntent,
    PaymentIntentStatus,
)
from chalicelib.errors import CardError, ResourceMissing, StaleWrite, UnexpectedState
from chalicelib.services.context import Committer, Outcome, RequestContext

KIND = "payment_intent"


class PaymentIntentService:
    """Every PaymentIntent operation; each write is conditional on the version it read."""

    def __init__(self, objects: ObjectStore, committer: Committer, connector: Connector) -> None:
        self._objects = objects
        self._committer = committer
        self._connector = connector

    # -- reads ---------------------------------------------------------------------------------

    def retrieve(self, merchant_id: str, pi_id: str) -> PaymentIntent:
        data = self._objects.get(KIND, merchant_id, pi_id)
        if data is None:
            raise ResourceMissing(f"No such payment_intent: '{pi_id}'", param="intent")
        return PaymentIntent.model_validate(data)

    def list_page(
        self,
        merchant_id: str,
        *,
        limit: int,
        starting_after: str | None,
        ending_before: str | None,
    ) -> dict[str, Any]:
        page = self._objects.list(
            KIND,
            merchant_id,
            limit=limit,
            starting_after=starting_after,
            ending_before=ending_before,
        )
        return {
            "object": "list",
            "data": [PaymentIntent.model_validate(item).to_api() for item in page.items],
            "has_more": page.has_more,
            "url": "/v1/payment_intents",
        }

    # -- writes --------------------------------------------------------------------------------

    def create(
        self,
        merchant_id: str,
        ctx: RequestContext,
        *,
        amount: int,
        currency: str,
        capture_method: CaptureMethod,
        payment_method: str | None,
        confirm: bool,
        description: str | None,
        metadata: dict[str, str] | None,
        payment_method_types: list[str] | None,
    ) -> Outcome:
        if payment_method:
            self._check_payment_method(payment_method)
        pi_id = ctx.claim.object_id if ctx.claim else new_id("pi")
        created = rules.create(
            id=pi_id,
            merchant_id=merchant_id,
            amount=amount,
            currency=currency,
            created=int(self._committer.clock()),
            client_secret=f"{pi_id}_secret_{new_secret('', 24)}",
            capture_method=capture_method,
            payment_method=payment_method,
            payment_method_types=payment_method_types,
            description=description,
            metadata=metadata,
        )
        batch = WriteBatch()
        self._add_event(batch, ctx, None, created)
        final = created
        if confirm:
            ready = rules.prepare_confirm(created, payment_method=None, capture_method=None)
            final = self._attempt(ready)
            self._add_event(batch, ctx, created, final)
        self._objects.put_new(batch, KIND, final, status=final.status.value)
        return self._committer.commit(ctx, batch, self._outcome(created, final))

    def update(
        self, merchant_id: str, pi_id: str, ctx: RequestContext, changes: dict[str, Any]
    ) -> Outcome:
        if changes.get("payment_method"):
            self._check_payment_method(changes["payment_method"])
        pi = self.retrieve(merchant_id, pi_id)
        after = rules.update(pi, changes)
        return self._save(ctx, pi, after)

    def confirm(
        self,
        merchant_id: str,
        pi_id: str,
        ctx: RequestContext,
        *,
        payment_method: str | None,
        capture_method: CaptureMethod | None,
    ) -> Outcome:
        if payment_method:
            self._check_payment_method(payment_method)
        pi = self.retrieve(merchant_id, pi_id)
        ready = rules.prepare_confirm(
            pi, payment_method=payment_method, capture_method=capture_method
        )
        return self._save(ctx, pi, self._attempt(ready), action=rules.CONFIRMABLE)

    def capture(
        self,
        merchant_id: str,
        pi_id: str,
        ctx: RequestContext,
        *,
        amount_to_capture: int | None,
        metadata: dict[str, str] | None,
    ) -> Outcome:
        pi = self.retrieve(merchant_id, pi_id)
        amount = rules.check_capture(pi, amount_to_capture)
        # One capture per PaymentIntent: concurrent captures share this key, so the PSP
        # captures once and only one of them wins the conditional write.
        self._connector.capture(self._reference(pi), amount, idempotency_key=f"{pi.id}:capture")
        return self._save(ctx, pi, rules.captured(pi, amount, metadata), action=rules.CAPTURABLE)

    def cancel(
        self,
        merchant_id: str,
        pi_id: str,
        ctx: RequestContext,
        *,
        reason: CancellationReason | None,
    ) -> Outcome:
        pi = self.retrieve(merchant_id, pi_id)
        rules.check_cancel(pi)
        if pi.psp_reference:
            self._connector.void(pi.psp_reference, idempotency_key=f"{pi.id}:void")
        after = rules.canceled(pi, reason, int(self._committer.clock()))
        return self._save(ctx, pi, after, action=rules.CANCELABLE)

    def complete_authentication(
        self, merchant_id: str, pi_id: str, ctx: RequestContext, *, succeeded: bool
    ) -> Outcome:
        """What the customer's 3-D Secure step decides (a sandbox stand-in for the bank page)."""
        pi = self.retrieve(merchant_id, pi_id)
        if pi.status != PaymentIntentStatus.REQUIRES_ACTION:
            raise UnexpectedState(
                f"This PaymentIntent has a status of {pi.status.value}; only one that "
                "requires_action can be authenticated."
            )
        result = self._connector.complete_action(
            self._reference(pi),
            succeeded=succeeded,
            capture=pi.capture_method == CaptureMethod.AUTOMATIC,
            idempotency_key=f"{pi.id}:authenticate:{pi.attempt_count}",
        )
        after = self._apply(pi, result)
        return self._save(ctx, pi, after, action=frozenset({PaymentIntentStatus.REQUIRES_ACTION}))

    # -- helpers -------------------------------------------------------------------------------

    def _check_payment_method(self, payment_method: str) -> None:
        if self._connector.payment_method(payment_method) is None:
            raise ResourceMissing(
                f"No such PaymentMethod: '{payment_method}'", param="payment_method"
            )

    @staticmethod
    def _reference(pi: PaymentIntent) -> str:
        if not pi.psp_reference:
            raise UnexpectedState("This PaymentIntent has no authorization at its PSP.")
        return pi.psp_reference

    def _attempt(self, ready: PaymentIntent) -> PaymentIntent:
        """One PSP attempt. Its idempotency key names the PaymentIntent, the attempt and the
        connector, so a repeated or concurrent attempt is charged once."""
        assert ready.payment_method is not None
        result = self._connector.authorize(
            AuthorizationRequest(
                payment_intent_id=ready.id,
                amount=ready.amount,
                currency=ready.currency,
                payment_method=ready.payment_method,
                capture=ready.capture_method == CaptureMethod.AUTOMATIC,
                idempotency_key=f"{ready.id}:{ready.attempt_count}:{self._connector.id}",
            )
        )
        return self._apply(ready, result)

    def _apply(self, pi: PaymentIntent, result: AuthorizationResult) -> PaymentIntent:
        if result.status == AuthorizationStatus.AUTHORIZED:
            return rules.authorized(
                pi,
                connector=self._connector.id,
                psp_reference=result.psp_reference,
                charge_id=result.charge_id,
            )
        if result.status == AuthorizationStatus.REQUIRES_ACTION:
            return rules.requires_action(
                pi,
                connector=self._connector.id,
                psp_reference=result.psp_reference,
                next_action=result.next_action or {},
            )
        assert result.decline is not None
        return rules.declined(
            pi,
            PaymentError(
                type="card_error",
                code=result.decline.code,
                decline_code=result.decline.decline_code,
                message=result.decline.message,
                charge=result.charge_id,
                payment_method=pi.payment_method,
            ),
        )

    def _save(
        self,
        ctx: RequestContext,
        before: PaymentIntent,
        after: PaymentIntent,
        action: frozenset[PaymentIntentStatus] | None = None,
    ) -> Outcome:
        batch = WriteBatch()
        self._objects.put_version(batch, KIND, after, before.version, status=after.status.value)
        self._add_event(batch, ctx, before, after)
        try:
            return self._committer.commit(ctx, batch, self._outcome(before, after))
        except StaleWrite:
            # Someone else moved the PaymentIntent first. If the move they made rules this
            # action out, say so as Stripe would; otherwise the 409 invites a retry.
            current = self.retrieve(before.merchant_id, before.id)
            if action is not None and current.status not in action:
                rules.require_status(current, action, _ACTION_NAMES.get(action, "changed"))
            raise

    def _add_event(
        self,
        batch: WriteBatch,
        ctx: RequestContext,
        before: PaymentIntent | None,
        after: PaymentIntent,
    ) -> None:
        event_type = rules.event_type_for(before, after)
        if event_type is None:
            return
        after_api = after.to_api()
        event = Event(
            id=new_id("evt"),
            merchant_id=after.merchant_id,
            type=event_type,
            created=int(self._committer.clock()),
            data_object=after_api,
            previous_attributes=previous_attributes(before.to_api() if before else None, after_api),
            request_id=ctx.request_id,
            idempotency_key=ctx.idempotency_key,
        )
        self._objects.put_new(batch, "event", event, type=event_type)

    @staticmethod
    def _outcome(before: PaymentIntent, after: PaymentIntent) -> Outcome:
        """200 with the PaymentIntent, or Stripe's 402 when this very attempt was declined."""
        error = after.last_payment_error
        newly_declined = (
            error is not None
            and after.status == PaymentIntentStatus.REQUIRES_PAYMENT_METHOD
            and after.attempt_count > 0
            and (before.last_payment_error != error or before.status != after.status)
        )
        if newly_declined:
            assert error is not None
            card_error = CardError(
                error.message,
                code=error.code,
                extra={
                    "decline_code": error.decline_code,
                    "charge": error.charge,
                    "payment_intent": after.to_api(),
                    "payment_method": error.to_api()["payment_method"],
                },
            )
            return Outcome(card_error.http_status, card_error.to_body())
        return Outcome(200, after.to_api())


_ACTION_NAMES = {
    rules.CONFIRMABLE: "confirmed",
    rules.CAPTURABLE: "captured",
    rules.CANCELABLE: "canceled",
}
