"""The simulator PSP's side of asynchronous payments: the customer's decision, the sweep that
expires silence, and the delivery of the simulator's webhooks.

None of these touch a PaymentIntent: the simulator is another company's system. What it decides
reaches PayFlow as a signed webhook to `/v1/psp_webhooks/simulator`, applied by
PspEventService like Razorpay's or Adyen's.
"""

from __future__ import annotations

import logging
from typing import Any

from chalicelib.connectors.registry import ConnectorRegistry
from chalicelib.connectors.simulator import SimulatorConnector
from chalicelib.connectors.simulator_customer import Decision, SimulatorCustomer
from chalicelib.connectors.simulator_webhooks import Post, SimulatorOutbox
from chalicelib.domain.payment_intents import PaymentIntentStatus
from chalicelib.errors import UnexpectedState
from chalicelib.services.payment_intents import PaymentIntentService

logger = logging.getLogger("payflow.simulator")

WEBHOOK_PATH = "/v1/psp_webhooks/simulator"
"""Where, under the API's address, the simulator sends its webhooks."""


class SimulatorService:
    """What the sandbox asks of the simulator PSP."""

    def __init__(
        self,
        customer: SimulatorCustomer,
        outbox: SimulatorOutbox,
        registry: ConnectorRegistry,
        payment_intents: PaymentIntentService,
        *,
        api_url: str | None = None,
        webhook_secret: str | None = None,
        post: Post | None = None,
    ) -> None:
        self._customer = customer
        self._outbox = outbox
        self._registry = registry
        self._payment_intents = payment_intents
        self._api_url = api_url
        self._webhook_secret = webhook_secret
        self._post = post

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

    def tick(self) -> dict[str, Any]:
        """One round of the simulator's own clock where no sandbox poller runs (the scheduled
        simulator_tick function on AWS): expire what is due, then POST the pending webhooks to
        the API this service was given. Without an API address, a secret or a way to post, the
        expiries still happen (each leaves its webhook pending) and the webhooks wait."""
        expired = self.expire_due()
        api_url, secret, post = self._api_url, self._webhook_secret, self._post
        if not api_url or not secret or post is None:
            missing = [
                name
                for name, value in (
                    ("PAYFLOW_API_URL", api_url),
                    ("PAYFLOW_SIMULATOR_WEBHOOK_SECRET", secret),
                    ("a sender", post),
                )
                if not value
            ]
            logger.warning(
                "the simulator's webhooks wait: %s not set (%d customer actions expired)",
                ", ".join(missing),
                expired,
            )
            return {
                "object": "simulator_tick",
                "expired": expired,
                "delivered": 0,
                "webhooks": "waiting",
            }
        delivered = self.deliver_webhooks(post, api_url.rstrip("/") + WEBHOOK_PATH, secret)
        return {
            "object": "simulator_tick",
            "expired": expired,
            "delivered": delivered,
            "webhooks": "sent",
        }
