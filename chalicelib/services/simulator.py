"""The simulator PSP's side of asynchronous payments: the customer's decision, the sweep that
expires silence, and the delivery of the simulator's webhooks.

None of these touch a PaymentIntent: the simulator is another company's system. What it decides
reaches PayFlow as a signed webhook to `/v1/psp_webhooks/simulator`, applied by
PspEventService like Razorpay's or Adyen's.
"""

from __future__ import annotations

from typing import Any

from chalicelib.connectors.registry import ConnectorRegistry
from chalicelib.connectors.simulator import SimulatorConnector
from chalicelib.connectors.simulator_customer import Decision, SimulatorCustomer
from chalicelib.connectors.simulator_webhooks import Post, SimulatorOutbox
from chalicelib.domain.payment_intents import PaymentIntentStatus
from chalicelib.errors import UnexpectedState
from chalicelib.services.payment_intents import PaymentIntentService


class SimulatorService:
    """What the sandbox asks of the simulator PSP."""

    def __init__(
        self,
        customer: SimulatorCustomer,
        outbox: SimulatorOutbox,
        registry: ConnectorRegistry,
        payment_intents: PaymentIntentService,
    ) -> None:
        self._customer = customer
        self._outbox = outbox
        self._registry = registry
        self._payment_intents = payment_intents

    def decide(self, merchant_id: str, pi_id: str, decision: Decision) -> dict[str, Any]:
        """The customer approves or refuses the payment `pi_id` waits for (in their UPI app,
        on the wallet's page). The first decision stands; the PaymentIntent moves when the
        simulator's webhook arrives."""
        pi = self._payment_intents.retrieve(merchant_id, pi_id)
        connector = (
            self._registry.connector_for(merchant_id, pi.connector) if pi.connector else None
        )
        if (
            pi.status != PaymentIntentStatus.REQUIRES_ACTION
            or not pi.psp_reference
            or not isinstance(connector, SimulatorConnector)
        ):
            raise UnexpectedState(
                f"This PaymentIntent has a status of {pi.status.value}; only one waiting for "
                "its customer at the simulator can be approved or refused."
            )
        action = self._customer.decide(pi.psp_reference, decision)
        return {
            "object": "customer_action",
            "payment_intent": pi.id,
            "type": action["action"],
            "decision": action["decision"],
            "expires_at": int(action["expires_at"]),
        }

    def expire_due(self) -> int:
        """The sweep: expire every customer action whose time is up."""
        return self._customer.expire_due()

    def deliver_webhooks(self, post: Post, url: str, secret: str) -> int:
        """POST the simulator's pending webhooks to `url`, signed with `secret`."""
        return self._outbox.deliver(post, url, secret, self._registry.simulator_settings)
