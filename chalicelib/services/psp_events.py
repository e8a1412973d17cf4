"""Provider webhooks in: verify, store each event once, apply it forward.

`POST /v1/psp_webhooks/{connector}` lands here. The connector's kind says how its provider
signs (Stripe-Signature, X-Razorpay-Signature, Adyen's HMAC on each notification item); each
verified event is stored under the provider's own id by a conditional write, then applied
through PaymentIntentService's transitions (forward only) and marked applied. A duplicate of an
applied event changes nothing; one whose first delivery died before it was applied is applied
now, which is safe because applying is itself idempotent.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from chalicelib.connectors import (
    adyen_connector,
    razorpay_connector,
    simulator_webhooks,
    stripe_connector,
)
from chalicelib.dal.psp_events import PspEventStore
from chalicelib.domain.disputes import EVIDENCE_DAYS, DisputeReason, DisputeReport, DisputeStatus
from chalicelib.domain.psp_events import PspEvent, PspOutcome, connector_of
from chalicelib.domain.routing import ConnectorKind, RoutingConfig
from chalicelib.errors import Conflict, InvalidRequestError, ResourceMissing
from chalicelib.services.disputes import DisputeService
from chalicelib.services.payment_intents import PaymentIntentService
from chalicelib.services.refunds import RefundService

if TYPE_CHECKING:
    from chalicelib.connectors.simulator_settlement import SimulatorSettlement

logger = logging.getLogger("payflow.psp_events")

Verifier = Callable[[str, Mapping[str, str], bytes], list[PspEvent]]

VERIFIERS: dict[ConnectorKind, Verifier] = {
    ConnectorKind.STRIPE: stripe_connector.webhook_events,
    ConnectorKind.RAZORPAY: razorpay_connector.webhook_events,
    ConnectorKind.ADYEN: adyen_connector.webhook_events,
    ConnectorKind.SIMULATOR: simulator_webhooks.webhook_events,
}
"""How each provider's webhooks are verified and read (next to its connector)."""


@dataclass(frozen=True)
class WebhookSecrets:
    """The secrets providers sign their webhooks with (one per provider account)."""

    stripe: str | None = None
    """STRIPE_WEBHOOK_SECRET: the endpoint's whsec_ secret."""
    razorpay: str | None = None
    """RAZORPAY_WEBHOOK_SECRET: the secret set on the Razorpay webhook."""
    adyen: str | None = None
    """ADYEN_HMAC_KEY: the webhook's HMAC key (hex), from Adyen's Customer Area."""
    simulator: str | None = None
    """PAYFLOW_SIMULATOR_WEBHOOK_SECRET: what the simulator signs its own webhooks with."""

    def for_kind(self, kind: ConnectorKind) -> str | None:
        return {
            ConnectorKind.STRIPE: self.stripe,
            ConnectorKind.RAZORPAY: self.razorpay,
            ConnectorKind.ADYEN: self.adyen,
            ConnectorKind.SIMULATOR: self.simulator,
        }.get(kind)


class PspEventService:
    """Receives provider webhooks."""

    def __init__(
        self,
        routing: RoutingConfig,
        secrets: WebhookSecrets,
        store: PspEventStore,
        payment_intents: PaymentIntentService,
        disputes: DisputeService,
        refunds: RefundService,
        simulator: SimulatorSettlement,
    ) -> None:
        self._routing = routing
        self._secrets = secrets
        self._store = store
        self._payment_intents = payment_intents
        self._disputes = disputes
        self._refunds = refunds
        self._simulator = simulator

    def kind_of(self, connector_id: str) -> ConnectorKind:
        """The provider behind `connector_id`: a configured connector's kind, or the kind of
        that name (a provider account serves every merchant's connectors of its kind)."""
        config = self._routing.connector(connector_id)
        if config is not None and config.kind in VERIFIERS:
            return config.kind
        try:
            kind = ConnectorKind(connector_id)
        except ValueError:
            kind = None
        if kind is None or kind not in VERIFIERS:
            raise ResourceMissing(
                f"No provider receives webhooks as '{connector_id}'.", param="connector"
            )
        return kind

    def receive(self, connector_id: str, headers: Mapping[str, str], body: bytes) -> dict[str, Any]:
        """Verify a provider's webhook and apply its events; what happened to each."""
        kind = self.kind_of(connector_id)
        secret = self._secrets.for_kind(kind)
        if not secret:
            raise InvalidRequestError(
                f"No webhook secret is configured for {kind.value}; PayFlow cannot verify it.",
                code="psp_webhook_not_configured",
            )
        lowered = {name.lower(): value for name, value in headers.items()}
        events = VERIFIERS[kind](secret, lowered, body)
        results = [self._receive_one(connector_id, kind.value, event) for event in events]
        return {"object": "psp_webhook", "connector": connector_id, "events": results}

    def simulate_dispute(
        self,
        merchant_id: str,
        charge_id: str,
        *,
        status: DisputeStatus,
        reason: DisputeReason | None,
        amount: int | None,
    ) -> dict[str, Any]:
        """The sandbox's provider opens, moves or closes the dispute of one of the merchant's
        charges: a report applied exactly as a provider's webhook is (stored once under its
        own id, then applied forward), so both take one road. The simulator's bank moves the
        money in its own book first, as a provider's does before it reports: that book is what
        its settlement report says. Returns the dispute."""
        charge = self._disputes.disputable_charge(merchant_id, charge_id)
        reference = f"dp_sim_{charge_id}"
        booked = self._simulator.record_dispute(
            charge.connector, charge_id, reference, status, amount, at=self._disputes.now()
        )
        # A charge another provider captured has no line in the simulator's book: the
        # sandbox's bank still reports what it was asked to.
        amount = amount if booked is None else booked
        event = PspEvent(
            id=f"{reference}:{status.value}",
            type=f"dispute.{status.value}",
            outcome=PspOutcome.DISPUTE,
            payment_intent_id=None,
            dispute=DisputeReport(
                reference=reference,
                charge_id=charge_id,
                status=status,
                reason=reason or DisputeReason.GENERAL,
                amount=amount,
                due_by=self._disputes.now() + EVIDENCE_DAYS * 86_400,
            ),
            body={"dispute": reference, "status": status.value, "amount": amount},
        )
        self._receive_one(ConnectorKind.SIMULATOR.value, ConnectorKind.SIMULATOR.value, event)
        found = self._disputes.by_reference(ConnectorKind.SIMULATOR.value, reference)
        if found is None:
            raise ResourceMissing(f"No such charge: '{charge_id}'", param="charge")
        return found.to_api()

    def stored(self, connector_id: str, event_id: str) -> dict[str, Any] | None:
        """A received provider event as stored: `event`, `applied`, and `outcome` (what
        applying it did), or None."""
        return self._store.event(connector_id, event_id)

    def _receive_one(self, connector_id: str, provider: str, event: PspEvent) -> dict[str, str]:
        if not self._store.record(connector_id, event.id, event.body):
            return {"id": event.id, "result": "duplicate"}
        self._store.index(connector_id, event.type, event.references, event.body)
        result = self._apply(connector_id, provider, event)
        if result == "unknown_payment_intent" and event.payment_intent_id:
            # The provider can answer before the confirm that called it has committed (the
            # first call is made before anything is written): left unapplied, the event is
            # applied when the provider delivers it again, which a non-2xx answer asks for.
            raise Conflict(
                f"PaymentIntent {event.payment_intent_id} is not known yet; deliver this event "
                "again later.",
                code="payment_intent_not_yet_known",
                headers={"Retry-After": "1"},
            )
        self._store.mark_applied(connector_id, event.id, result)
        logger.info(
            "psp event", extra={"connector": connector_id, "event": event.id, "result": result}
        )
        return {"id": event.id, "result": result}

    def _apply(self, connector_id: str, provider: str, event: PspEvent) -> str:
        if event.outcome == PspOutcome.OTHER:
            return "stored"
        if event.outcome == PspOutcome.DISPUTE:
            assert event.dispute is not None
            return self._disputes.apply_report(provider, event.dispute)
        if event.outcome == PspOutcome.REFUND_FAILED:
            return self._refunds.fail_reported(event.refund_id, event.failure_reason)

        if not event.payment_intent_id:
            return "unknown_payment_intent"
        # The attempt key names the merchant's own id for the connector (a merchant's routing
        # may call its Razorpay connector "razorpay_in"); the URL's id serves the others.
        connector = connector_of(event.attempt_key) or connector_id
        return self._payment_intents.apply_psp_event(event.payment_intent_id, connector, event)
