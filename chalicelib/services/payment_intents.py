"""The PaymentIntent lifecycle: create, update, confirm, capture, cancel, read and list."""

from __future__ import annotations

import logging
import random
from collections.abc import Iterable, Mapping
from typing import Any

from chalicelib.connectors.base import (
    AuthorizationResult,
    AuthorizationStatus,
    Connector,
    ConnectorError,
    Decline,
)
from chalicelib.connectors.registry import ConnectorRegistry, RoutingState
from chalicelib.dal.connectors import ConnectorStateStore
from chalicelib.dal.dynamo import WriteBatch, from_image
from chalicelib.dal.ledger import LedgerStore
from chalicelib.dal.objects import ObjectStore
from chalicelib.dal.workflows import PaymentWorkflows
from chalicelib.domain import ledger as ledger_rules
from chalicelib.domain import payment_intents as rules
from chalicelib.domain.contact import BillingDetails
from chalicelib.domain.ids import new_id, new_secret
from chalicelib.domain.payment_intents import (
    CancellationReason,
    CaptureMethod,
    PaymentError,
    PaymentIntent,
    PaymentIntentStatus,
)
from chalicelib.domain.payment_methods import PaymentMethod
from chalicelib.domain.psp_events import PspEvent, transition
from chalicelib.domain.routing import Decision, PaymentFacts, route
from chalicelib.domain.test_cards import describe, is_test_id
from chalicelib.errors import CardError, Conflict, ResourceMissing, StaleWrite, UnexpectedState
from chalicelib.services.charges import ChargeService
from chalicelib.services.circuits import CircuitBreakers
from chalicelib.services.context import (
    Committer,
    Outcome,
    RequestContext,
    add_event,
    fetch,
    list_body,
)
from chalicelib.services.customers import CustomerService
from chalicelib.services.orchestration import PaymentOrchestrator
from chalicelib.services.payment_methods import PaymentMethodService

KIND = "payment_intent"
logger = logging.getLogger("payflow.payment_intents")


class PaymentIntentService:
    """Every PaymentIntent operation; each write is conditional on the version it read."""

    def __init__(
        self,
        objects: ObjectStore,
        committer: Committer,
        registry: ConnectorRegistry,
        breakers: CircuitBreakers,
        connector_state: ConnectorStateStore,
        workflows: PaymentWorkflows,
        ledger: LedgerStore,
        payment_methods: PaymentMethodService,
        customers: CustomerService,
        charges: ChargeService,
        orchestrator: PaymentOrchestrator,
        *,
        confirm_wait_ms: int = 5000,
        availability_delay_seconds: int = 0,
        rng: random.Random | None = None,
    ) -> None:
        self._objects = objects
        self._committer = committer
        self._registry = registry
        self._breakers = breakers
        self._connector_state = connector_state
        self._workflows = workflows
        self._confirm_wait_ms = confirm_wait_ms
        self._ledger = ledger
        self._availability_delay = availability_delay_seconds
        self._rng = rng
        self._payment_methods = payment_methods
        self._customers = customers
        self._charges = charges
        self._orchestrator = orchestrator

    # -- reads ---------------------------------------------------------------------------------

    def retrieve(self, merchant_id: str, pi_id: str) -> PaymentIntent:
        return fetch(self._objects, KIND, PaymentIntent, merchant_id, pi_id, param="intent")

    def list_page(
        self,
        merchant_id: str,
        *,
        limit: int,
        starting_after: str | None,
        ending_before: str | None,
        customer: str | None = None,
        connector: str | None = None,
        payment_method_type: str | None = None,
    ) -> dict[str, Any]:
        """A page of the merchant's PaymentIntents, newest first. A connector or payment method
        type is read through its index (one Query per page, whatever the merchant's total);
        with both, the connector's index is read and filtered by the type; `customer` filters."""
        filters = {
            name: value
            for name, value in (
                ("customer", customer),
                ("payment_method_type", payment_method_type if connector else None),
            )
            if value
        }
        indexed = None
        if connector:
            indexed = ("connector", connector)
        elif payment_method_type:
            indexed = ("payment_method_type", payment_method_type)
        return list_body(
            self._objects,
            KIND,
            PaymentIntent,
            merchant_id,
            "/v1/payment_intents",
            limit=limit,
            starting_after=starting_after,
            ending_before=ending_before,
            filters=filters or None,
            indexed=indexed,
        )

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
        options: dict[str, Any] | None = None,
    ) -> Outcome:
        """`options` are the other stored parameters (customer, shipping, off_session...)."""
        options = dict(options or {})
        if options.get("customer"):
            self._customers.active(merchant_id, options["customer"])
        if payment_method:
            chosen = self._payment_method_fields(merchant_id, payment_method, options)
            payment_method = chosen.pop("payment_method")
            options.update(chosen)
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
            options={k: v for k, v in options.items() if k not in _PER_ATTEMPT},
        )
        if ctx.claim is not None and ctx.claim.taken_over:
            existing = self._objects.get(KIND, merchant_id, pi_id)
            if existing is not None:
                return self._resume(created, PaymentIntent.model_validate(existing))
        batch = WriteBatch()
        self._add_event(batch, ctx, None, created)
        if not confirm:
            self._objects.put_new(batch, KIND, created, **created.attributes())
            return self._committer.commit(ctx, batch, self._outcome(created, created))
        ready = rules.prepare_confirm(
            created,
            payment_method=None,
            capture_method=None,
            options={k: v for k, v in options.items() if k in _PER_ATTEMPT},
        )
        return self._run_attempt(ctx, batch, created, ready, new=True)

    def update(
        self, merchant_id: str, pi_id: str, ctx: RequestContext, changes: dict[str, Any]
    ) -> Outcome:
        pi = self.retrieve(merchant_id, pi_id)
        customer = changes.get("customer", pi.customer)
        if changes.get("customer"):
            self._customers.active(merchant_id, changes["customer"])
        if changes.get("payment_method"):
            changes.update(
                self._payment_method_fields(
                    merchant_id, changes["payment_method"], {"customer": customer}
                )
            )
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
        options: dict[str, Any] | None = None,
    ) -> Outcome:
        """`options`: the confirm's other parameters (return_url, off_session, shipping...)."""
        pi = self.retrieve(merchant_id, pi_id)
        options = dict(options or {})
        if payment_method:
            chosen = self._payment_method_fields(
                merchant_id, payment_method, {"customer": pi.customer, **options}
            )
            payment_method = chosen.pop("payment_method")
            options.update(chosen)
        if (
            ctx.claim is not None
            and ctx.claim.taken_over
            and pi.status == PaymentIntentStatus.PROCESSING
        ):
            return self._resume(pi.model_copy(update={"attempt_count": pi.attempt_count - 1}), pi)
        ready = rules.prepare_confirm(
            pi, payment_method=payment_method, capture_method=capture_method, options=options
        )
        return self._run_attempt(ctx, WriteBatch(), pi, ready, action=rules.CONFIRMABLE)

    def attempts(self, merchant_id: str, pi_id: str) -> dict[str, Any]:
        """Every PSP call made for a PaymentIntent and each attempt's routing decision."""
        self.retrieve(merchant_id, pi_id)
        calls, decisions = self._connector_state.attempts(pi_id)
        return {
            "object": "list",
            "data": calls,
            "routing": decisions,
            "has_more": False,
            "url": f"/v1/payment_intents/{pi_id}/attempts",
        }

    def executions(self, merchant_id: str, pi_id: str) -> dict[str, Any]:
        """The Step Functions executions of the PaymentIntent's attempts that the confirm
        handler handed over (most payments have none), each with its state history."""
        self.retrieve(merchant_id, pi_id)
        _, decisions = self._connector_state.attempts(pi_id)
        return {
            "object": "list",
            "data": self.execution_views(decisions),
            "has_more": False,
            "url": f"/v1/payment_intents/{pi_id}/executions",
        }

    def execution_views(self, decisions: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """The execution of each routing decision (`attempts()`'s) that names one: a
        DescribeExecution and a history read each, only for the attempts handed over."""
        from chalicelib.domain.executions import execution_view

        return [
            execution_view(name, int(d["attempt"]), self._workflows.execution(name))
            for d in decisions
            if (name := d.get("execution"))
        ]

    def finalize_attempt(self, task: dict[str, Any]) -> dict[str, Any]:
        """The payment state machine's last step: write what the attempt decided.

        Safe to run twice: a PaymentIntent that is no longer processing this attempt is left as
        it is.
        """
        pi = self.retrieve(task["merchant_id"], task["payment_intent_id"])
        if pi.status != PaymentIntentStatus.PROCESSING or pi.attempt_count != task["attempt"]:
            return {"status": pi.status.value, "changed": False}
        authorization = task.get("authorization") or {}
        if authorization.get("status"):
            after = self._apply(pi, _result_from(authorization), authorization["connector"])
        else:
            after = _exhausted(pi, (task.get("last_error") or {}).get("Error"))
        self._save(RequestContext(request_id=None), pi, after)
        return {"status": after.status.value, "changed": True}

    def capture(
        self,
        merchant_id: str,
        pi_id: str,
        ctx: RequestContext,
        *,
        amount_to_capture: int | None,
        metadata: dict[str, str] | None,
        statement_descriptor_suffix: str | None = None,
    ) -> Outcome:
        pi = self.retrieve(merchant_id, pi_id)
        amount = rules.check_capture(pi, amount_to_capture)
        # One capture per PaymentIntent: concurrent captures share this key, so the PSP
        # captures once and only one of them wins the conditional write.
        self._connector_of(pi).capture(
            self._reference(pi), amount, idempotency_key=f"{pi.id}:capture"
        )
        after = rules.captured(pi, amount, metadata)
        if statement_descriptor_suffix is not None:
            after = after.model_copy(
                update={"statement_descriptor_suffix": statement_descriptor_suffix}
            )
        return self._save(ctx, pi, after, action=rules.CAPTURABLE)

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
            self._connector_of(pi).void(pi.psp_reference, idempotency_key=f"{pi.id}:void")
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
        result = self._connector_of(pi).complete_action(
            self._reference(pi),
            succeeded=succeeded,
            capture=pi.captures_automatically,
            idempotency_key=f"{pi.id}:authenticate:{pi.attempt_count}",
        )
        after = self._apply(pi, result, pi.connector or "")
        return self._save(ctx, pi, after, action=frozenset({PaymentIntentStatus.REQUIRES_ACTION}))

    # -- helpers -------------------------------------------------------------------------------

    def _payment_method_fields(
        self, merchant_id: str, payment_method: str, options: dict[str, Any]
    ) -> dict[str, Any]:
        """What naming `payment_method` stores: the method, the test card a PSP is sent, and
        whether it was set up for off-session use. Refuses another customer's method."""
        pm = self._payment_methods.usable(merchant_id, payment_method, options.get("customer"))
        return {
            "payment_method": pm.id,
            "psp_payment_method": pm.card,
            "payment_method_set_up": pm.set_up,
        }

    def _connector_of(self, pi: PaymentIntent) -> Connector:
        return self._registry.connector_for(pi.merchant_id, pi.connector or "")

    @staticmethod
    def _reference(pi: PaymentIntent) -> str:
        if not pi.psp_reference:
            raise UnexpectedState("This PaymentIntent has no authorization at its PSP.")
        return pi.psp_reference

    def _route(self, ready: PaymentIntent, state: RoutingState) -> tuple[PaymentIntent, Decision]:
        """Choose the connectors for this attempt and hand the PaymentIntent to them
        (processing, not yet stored). The split among equal priorities is drawn from the
        PaymentIntent and attempt, so a retried request routes as the first one did."""
        assert ready.payment_method is not None
        pm = describe(ready.psp_payment_method or ready.payment_method)
        assert pm is not None
        routing = state.config
        decision = route(
            routing,
            PaymentFacts(
                amount=ready.amount,
                currency=ready.currency,
                payment_method_type=pm.type,
                card_bin=pm.bin if pm.type == "card" else None,
            ),
            self._breakers.open_circuits(
                (c.id for c in routing.connectors), routing.circuit_breaker, state.circuits
            ),
            self._rng or random.Random(f"{ready.id}:{ready.attempt_count}"),
        )
        return rules.processing(ready, decision.candidates), decision

    def _run_attempt(
        self,
        ctx: RequestContext,
        batch: WriteBatch,
        before: PaymentIntent,
        ready: PaymentIntent,
        *,
        action: frozenset[PaymentIntentStatus] | None = None,
        new: bool = False,
    ) -> Outcome:
        """Route `ready` and call its first connector right here. An answer (authorized,
        declined, requires_action) is committed at once, in one transaction with everything it
        brings; no candidate is a decline. Anything else (a PSP error, an open circuit) hands
        the attempt to the payment state machine, which retries, reconciles and fails over:
        commit it as processing, start its execution and wait for it up to the confirm wait.
        `new`: `before` is not stored yet (confirm=true on create)."""
        state = self._registry.routing_state(ready.merchant_id)
        handed_over, decision = self._route(ready, state)
        calls: list[dict[str, Any]] = []
        answer = self._first_call(ctx, handed_over, state, calls)
        decided = decision.to_api()
        if answer is None:
            # The attempt's page finds its execution by this name (Step Functions cannot be
            # asked which executions a payment has without listing them all).
            decided["execution"] = rules.execution_name(handed_over)
        self._connector_state.add_decision(
            batch, handed_over.id, handed_over.attempt_count, decided, calls
        )
        if answer is not None:
            return self._save(ctx, before, answer, action=action, batch=batch, new=new)
        self._write(batch, before, handed_over, new=new)
        self._add_event(batch, ctx, before, handed_over)
        self._commit_or_explain(ctx, batch, before, action, complete=False)
        self.ensure_execution(handed_over)
        return self._outcome(before, self._settled(handed_over))

    def _first_call(
        self,
        ctx: RequestContext,
        handed_over: PaymentIntent,
        state: RoutingState,
        calls: list[dict[str, Any]],
    ) -> PaymentIntent | None:
        """The PaymentIntent as the first candidate's answer leaves it, or None when the
        state machine must take the attempt over."""
        if not handed_over.candidates:
            return _exhausted(handed_over, None)
        task = {**rules.workflow_input(handed_over), "index": 0}
        if ctx.claim is not None and ctx.claim.taken_over:
            # The request this one takes over may have reached a PSP before it died: what a
            # PSP holds under this attempt's key is the answer (never a second charge).
            found = self._orchestrator.find_charged(task, state)
            if found is not None:
                return self._apply(handed_over, _result_from(found), found["connector"])
        try:
            authorization = self._orchestrator.authorize(task, state, calls)
        except ConnectorError:
            return None
        return self._apply(handed_over, _result_from(authorization), authorization["connector"])

    def _resume(self, before: PaymentIntent, current: PaymentIntent) -> Outcome:
        """Finish what a request that died after its commit had started (found through the
        id its idempotency claim reserved): join the attempt's execution, answer its outcome."""
        if current.status != PaymentIntentStatus.PROCESSING:
            return self._outcome(before, self.retrieve(current.merchant_id, current.id))
        self.ensure_execution(current)
        return self._outcome(before, self._settled(current))

    def ensure_execution(self, pi: PaymentIntent) -> None:
        """Start the execution of `pi`'s current attempt if it is not running yet (idempotent:
        the name and input come from the PaymentIntent alone)."""
        self._workflows.start(rules.execution_name(pi), rules.workflow_input(pi))

    def _settled(self, pi: PaymentIntent) -> PaymentIntent:
        """The PaymentIntent once its execution has written the outcome, or as it is when the
        confirm wait runs out (still processing: the answer comes by webhook)."""
        return self._workflows.wait_for(
            lambda: self.retrieve(pi.merchant_id, pi.id),
            lambda current: current.status != PaymentIntentStatus.PROCESSING,
            self._confirm_wait_ms,
        )

    def resume_from_stream(self, records: Iterable[dict[str, Any]]) -> list[str]:
        """For the stream: every PaymentIntent in processing gets its execution, even when the
        request that committed it died before starting it. Returns the sequence number to
        retry from when a start fails (the batch's later records are retried with it)."""
        for record in records:
            values = from_image(record.get("dynamodb", {}).get("NewImage") or {})
            if values.get("sk") != KIND or values.get("status") != "processing":
                continue
            try:
                self.ensure_execution(PaymentIntent.model_validate(values["data"]))
            except Exception:
                logger.exception("could not start a payment execution")
                return [str(record["dynamodb"]["SequenceNumber"])]
        return []

    def _apply(
        self, pi: PaymentIntent, result: AuthorizationResult, connector: str
    ) -> PaymentIntent:
        answered = pi.model_copy(update={"answered_by": connector or pi.answered_by})
        return self._answered(answered, result, connector)

    @staticmethod
    def _answered(pi: PaymentIntent, result: AuthorizationResult, connector: str) -> PaymentIntent:
        if result.status == AuthorizationStatus.AUTHORIZED:
            return rules.authorized(
                pi,
                connector=connector,
                psp_reference=result.psp_reference,
                charge_id=result.charge_id,
            )
        if result.status == AuthorizationStatus.REQUIRES_ACTION and (
            pi.off_session or pi.error_on_requires_action
        ):
            # Nobody is there to authenticate: Stripe fails the attempt instead.
            return rules.declined(pi, rules.authentication_required(pi, result.charge_id))
        if result.status == AuthorizationStatus.REQUIRES_ACTION:
            return rules.requires_action(
                pi,
                connector=connector,
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
                charge=result.charge_id or None,
                payment_method=pi.payment_method,
            ),
        )

    def _save(
        self,
        ctx: RequestContext,
        before: PaymentIntent,
        after: PaymentIntent,
        action: frozenset[PaymentIntentStatus] | None = None,
        *,
        batch: WriteBatch | None = None,
        new: bool = False,
    ) -> Outcome:
        """Commit `after` with its event, charges, saved method and ledger entries (added to
        `batch` when given; `new`: the PaymentIntent is not stored yet)."""
        batch = batch or WriteBatch()
        after = self._with_failed_method(before, after)
        after, saved = self._save_payment_method(batch, ctx, before, after)
        self._write(batch, before, after, new=new)
        self._add_event(batch, ctx, before, after)
        billing = saved.billing_details if saved else self._billing(after)
        self._charges.add_for(batch, ctx, before, after, billing)
        self._post_capture(batch, before, after)
        return self._commit_or_explain(ctx, batch, before, action, self._outcome(before, after))

    def _write(
        self, batch: WriteBatch, before: PaymentIntent, after: PaymentIntent, *, new: bool
    ) -> None:
        if new:
            self._objects.put_new(batch, KIND, after, **after.attributes())
        else:
            self._objects.put_version(batch, KIND, after, before.version, **after.attributes())

    def _save_payment_method(
        self, batch: WriteBatch, ctx: RequestContext, before: PaymentIntent, after: PaymentIntent
    ) -> tuple[PaymentIntent, PaymentMethod | None]:
        """setup_future_usage: the authorization that succeeds saves its method to the
        customer, set up for later payments, in the same transaction. A test card's own id is
        saved as a copy, which the PaymentIntent then names. Returns the method saved."""
        authorized = {PaymentIntentStatus.SUCCEEDED, PaymentIntentStatus.REQUIRES_CAPTURE}
        if (
            not after.setup_future_usage
            or not after.customer
            or not after.payment_method
            or after.status not in authorized
            or before.status in authorized
        ):
            return after, None
        attach = self._payment_methods.plan_attach(
            after.merchant_id, after.payment_method, after.customer, set_up=True
        )
        self._payment_methods.add_attach(batch, ctx, attach)
        saved = after.model_copy(
            update={"payment_method": attach.after.id, "payment_method_set_up": True}
        )
        return saved, attach.after

    def _with_failed_method(self, before: PaymentIntent, after: PaymentIntent) -> PaymentIntent:
        """A new last_payment_error embeds the payment method it failed with, as Stripe's
        does (read once, when the attempt fails)."""
        error = after.last_payment_error
        if error is None or error == before.last_payment_error or not error.payment_method:
            return after
        try:
            pm = self._payment_methods.retrieve(after.merchant_id, error.payment_method)
        except ResourceMissing:
            return after
        embedded = error.model_copy(update={"payment_method_object": pm.to_api()})
        return after.model_copy(update={"last_payment_error": embedded})

    def _billing(self, pi: PaymentIntent) -> BillingDetails | None:
        if not pi.payment_method or is_test_id(pi.payment_method):
            return None
        found = self._payment_methods.retrieve(pi.merchant_id, pi.payment_method)
        return found.billing_details

    def _post_capture(self, batch: WriteBatch, before: PaymentIntent, after: PaymentIntent) -> None:
        """Captured money enters the ledger in the same transaction as the status change:
        pending until available_on, or available at once when there is no delay."""
        captured = after.amount_received - before.amount_received
        if captured <= 0:
            return
        now = int(self._committer.clock())
        entry = ledger_rules.capture(
            merchant_id=after.merchant_id,
            currency=after.currency,
            connector=after.connector or "unknown",
            charge=after.latest_charge or after.id,
            amount=captured,
            created=now,
            available_on=now + self._availability_delay,
        )
        self._ledger.add(
            batch, entry, status="pending" if self._availability_delay > 0 else "available"
        )

    def _commit_or_explain(
        self,
        ctx: RequestContext,
        batch: WriteBatch,
        before: PaymentIntent,
        action: frozenset[PaymentIntentStatus] | None,
        outcome: Outcome | None = None,
        *,
        complete: bool = True,
    ) -> Outcome:
        try:
            return self._committer.commit(
                ctx, batch, outcome or Outcome(200, {}), complete=complete
            )
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
        if event_type is not None:
            add_event(
                self._objects,
                batch,
                ctx,
                merchant_id=after.merchant_id,
                event_type=event_type,
                data_object=after.to_api(),
                created=int(self._committer.clock()),
                before=before.to_api() if before else None,
            )

    @staticmethod
    def _outcome(before: PaymentIntent, after: PaymentIntent) -> Outcome:
        """200 with the PaymentIntent, or Stripe's 402 when this very attempt was declined."""
        error = after.last_payment_error
        newly_declined = (
            error is not None
            and after.status == PaymentIntentStatus.REQUIRES_PAYMENT_METHOD
            and after.attempt_count > 0
            and (
                before.last_payment_error != error
                or before.attempt_count != after.attempt_count
                or before.status != after.status
            )
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
                    "payment_method": error.to_api().get("payment_method"),
                },
            )
            return Outcome(card_error.http_status, card_error.to_body())
        return Outcome(200, after.to_api())

    def apply_psp_event(self, pi_id: str, connector: str, event: PspEvent) -> str:
        """A provider's webhook about `pi_id`, applied through the same transitions, events,
        charges and ledger entries as the orchestration's answers, and only forward
        (domain.psp_events.transition). Returns what it did: "applied", "unchanged" (the
        PaymentIntent is past what the event reports) or "unknown_payment_intent". Safe to
        run twice: the second run finds nothing left to move."""
        merchant_id = self._objects.owner(KIND, pi_id)
        if merchant_id is None:
            return "unknown_payment_intent"
        for _ in range(5):
            pi = self.retrieve(merchant_id, pi_id)
            move = transition(pi, event, connector)
            if move is None:
                return "unchanged"
            if move.result is not None:
                after = self._apply(pi, move.result, connector)
            else:
                assert move.captured is not None
                after = rules.captured(pi, move.captured, None)
            try:
                self._save(RequestContext(request_id=None), pi, after)
                return "applied"
            except StaleWrite:
                continue  # the orchestration or a request moved it first: decide again
        raise Conflict("The PaymentIntent is changing too fast; the provider will retry.")


_PER_ATTEMPT = frozenset({"off_session", "error_on_requires_action"})
"""Confirm-time parameters that hold for one attempt only."""

_ACTION_NAMES = {
    rules.CONFIRMABLE: "confirmed",
    rules.CAPTURABLE: "captured",
    rules.CANCELABLE: "canceled",
}


def _exhausted(pi: PaymentIntent, last_error: str | None) -> PaymentIntent:
    """No connector could answer this attempt: Stripe's processing_error."""
    return rules.declined(
        pi,
        PaymentError(
            type="card_error",
            code="processing_error",
            message=(
                "No payment processor could complete this payment "
                f"(last error: {last_error or 'none eligible'}). Try again later."
            ),
            payment_method=pi.payment_method,
        ),
    )


def _result_from(authorization: dict[str, Any]) -> AuthorizationResult:
    """An authorization as the state machine carried it (see services.orchestration)."""
    decline = authorization.get("decline")
    return AuthorizationResult(
        status=AuthorizationStatus(authorization["status"]),
        psp_reference=authorization.get("psp_reference") or "",
        charge_id=authorization.get("charge_id") or "",
        decline=Decline(**decline) if decline else None,
        next_action=authorization.get("next_action"),
    )
