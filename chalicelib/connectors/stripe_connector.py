"""Stripe as a PSP, through the official SDK.

Each PayFlow attempt becomes one Stripe PaymentIntent created and confirmed in one call with
PayFlow's idempotency key, so a retried attempt is charged once at Stripe too. Stripe's errors
map onto PayFlow's taxonomy: declines are answers; connection problems are timeouts (the outcome
is unknown, so the orchestration asks `lookup` before failing over); 429 is rate limiting; 5xx
is unavailability; bad credentials or requests make the connector unavailable for this payment.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from chalicelib.connectors.base import (
    AuthorizationRequest,
    AuthorizationResult,
    AuthorizationStatus,
    Connector,
    ConnectorUnavailable,
    Decline,
    PaymentMethodDetails,
    PspRateLimited,
    PspTimeout,
    PspUnavailable,
    RefundRefused,
    with_answer,
)
from chalicelib.domain.psp_events import InvalidWebhook, PspEvent, PspOutcome
from chalicelib.domain.test_cards import describe

if TYPE_CHECKING:
    import stripe

# The SDK (about 50 ms to import) is imported by the calls that use it, not with this module:
# the connector is off unless STRIPE_API_KEY is set, and every function imports the registry.

T = TypeVar("T")
_AUTHORIZED = {"succeeded", "requires_capture"}


def translate_errors(call: Callable[[], T]) -> T:
    """Run a Stripe SDK call; its transport and server errors become PayFlow's."""
    import stripe

    try:
        return call()
    except stripe.RateLimitError as error:
        raise PspRateLimited(str(error.user_message or error)) from error
    except stripe.APIConnectionError as error:
        raise PspTimeout(f"stripe: {error.user_message or error}") from error
    except (stripe.AuthenticationError, stripe.PermissionError) as error:
        raise ConnectorUnavailable(f"stripe refused the credentials: {error.code}") from error
    except stripe.APIError as error:
        raise PspUnavailable(f"stripe answered {error.http_status}") from error
    except stripe.InvalidRequestError as error:
        raise ConnectorUnavailable(f"stripe refused the request: {error.code}") from error


class StripeConnector(Connector):
    """Stripe, reached with the official SDK (enabled when STRIPE_API_KEY is set)."""

    def __init__(
        self,
        api_key: str | None,
        *,
        connector_id: str = "stripe",
        api_base: str | None = None,
        timeout_ms: int = 10_000,
    ) -> None:
        self.id = connector_id
        self._api_key = api_key
        self._api_base = api_base
        self._timeout_ms = timeout_ms
        self._client: stripe.StripeClient | None = None

    @property
    def configured(self) -> bool:
        return bool(self._api_key)

    def _stripe(self) -> stripe.StripeClient:
        import stripe

        if not self._api_key:
            raise ConnectorUnavailable("the stripe connector needs STRIPE_API_KEY")
        if self._client is None:
            options: dict[str, Any] = {
                "max_network_retries": 0,  # the state machine owns retries and backoff
                "http_client": stripe.RequestsClient(timeout=self._timeout_ms / 1000),
            }
            if self._api_base:
                options["base_addresses"] = {"api": self._api_base}
            self._client = stripe.StripeClient(self._api_key, **options)
        return self._client

    def payment_method(self, payment_method_id: str) -> PaymentMethodDetails | None:
        pm = describe(payment_method_id)
        return PaymentMethodDetails(pm.id, pm.type, pm.brand, pm.bin) if pm else None

    def authorize(self, request: AuthorizationRequest) -> AuthorizationResult:
        import stripe

        client = self._stripe()
        params: dict[str, Any] = {
            "amount": request.amount,
            "currency": request.currency,
            "payment_method": request.payment_method,
            "payment_method_types": ["card"],
            "confirm": True,
            "capture_method": "automatic" if request.capture else "manual",
            "metadata": {
                "payflow_payment_intent": request.payment_intent_id,
                "payflow_key": request.idempotency_key,
            },
        }
        if request.off_session:
            params["off_session"] = True
        try:
            intent = translate_errors(
                lambda: client.v1.payment_intents.create(
                    params=params,  # type: ignore[arg-type]
                    options={"idempotency_key": request.idempotency_key},
                )
            )
        except stripe.CardError as error:
            return self._declined(error)
        return self._result(intent)

    def lookup(self, idempotency_key: str) -> AuthorizationResult | None:
        client = self._stripe()
        found = translate_errors(
            lambda: client.v1.payment_intents.search(
                params={"query": f"metadata['payflow_key']:'{idempotency_key}'", "limit": 1}
            )
        )
        return self._result(found.data[0]) if found.data else None

    def complete_action(
        self, psp_reference: str, *, succeeded: bool, capture: bool, idempotency_key: str
    ) -> AuthorizationResult:
        # At Stripe the customer authenticates with Stripe.js; PayFlow reads the outcome.
        client = self._stripe()
        intent = translate_errors(lambda: client.v1.payment_intents.retrieve(psp_reference))
        return self._result(intent)

    def capture(self, psp_reference: str, amount: int, *, idempotency_key: str) -> None:
        client = self._stripe()
        translate_errors(
            lambda: client.v1.payment_intents.capture(
                psp_reference,
                params={"amount_to_capture": amount},
                options={"idempotency_key": idempotency_key},
            )
        )

    def void(self, psp_reference: str, *, idempotency_key: str) -> None:
        client = self._stripe()
        translate_errors(
            lambda: client.v1.payment_intents.cancel(
                psp_reference, options={"idempotency_key": idempotency_key}
            )
        )

    def refund(self, psp_reference: str, amount: int, *, idempotency_key: str) -> None:
        import stripe

        client = self._stripe()
        try:
            refund = translate_errors(
                lambda: client.v1.refunds.create(
                    params={
                        "payment_intent": psp_reference,
                        "amount": amount,
                        "metadata": {"payflow_key": idempotency_key},
                    },
                    options={"idempotency_key": idempotency_key},
                )
            )
        except stripe.CardError as error:
            raise RefundRefused(error.code or "declined") from error
        if refund.status in ("failed", "canceled"):
            raise RefundRefused(str(refund.failure_reason or "unknown"))

    def refunded(self, psp_reference: str, idempotency_key: str) -> bool:
        client = self._stripe()
        listed = translate_errors(
            lambda: client.v1.refunds.list(params={"payment_intent": psp_reference, "limit": 100})
        )
        for refund in listed.data:
            # StripeObject is not a dict in stripe-python 16: read it through to_dict().
            metadata = refund.metadata.to_dict() if refund.metadata else {}
            if metadata.get("payflow_key") == idempotency_key and refund.status == "succeeded":
                return True
        return False

    @staticmethod
    def _declined(error: stripe.CardError) -> AuthorizationResult:
        intent = getattr(error.error, "payment_intent", None) if error.error else None
        decline_code = getattr(error.error, "decline_code", None) if error.error else None
        declined = AuthorizationResult(
            status=AuthorizationStatus.DECLINED,
            psp_reference=str(intent.id) if intent else "",
            charge_id=str(getattr(intent, "latest_charge", "") or "") if intent else "",
            decline=Decline(
                error.code or "card_declined", error.user_message or str(error), decline_code
            ),
        )
        return with_answer(declined, error.json_body)

    @staticmethod
    def _result(intent: Any) -> AuthorizationResult:
        return with_answer(StripeConnector._mapped(intent), intent.to_dict())

    @staticmethod
    def _mapped(intent: Any) -> AuthorizationResult:
        status = intent.status
        charge = str(intent.latest_charge or "")
        if status in _AUTHORIZED:
            return AuthorizationResult(AuthorizationStatus.AUTHORIZED, intent.id, charge)
        if status == "requires_action":
            return AuthorizationResult(
                AuthorizationStatus.REQUIRES_ACTION,
                intent.id,
                charge,
                next_action=intent.next_action.to_dict() if intent.next_action else None,
            )
        error = intent.last_payment_error
        if status == "processing":
            raise PspTimeout("stripe is still processing the payment")
        return AuthorizationResult(
            AuthorizationStatus.DECLINED,
            intent.id,
            charge,
            decline=Decline(
                (error.code if error else None) or "card_declined",
                (error.message if error else None) or "Your card was declined.",
                error.decline_code if error else None,
            ),
        )


_WEBHOOK_OUTCOMES = {
    "payment_intent.amount_capturable_updated": PspOutcome.AUTHORIZED,
    "payment_intent.succeeded": PspOutcome.CAPTURED,
    "payment_intent.payment_failed": PspOutcome.FAILED,
}


def webhook_events(secret: str, headers: Mapping[str, str], body: bytes) -> list[PspEvent]:
    """A Stripe webhook, verified by the SDK: `Stripe-Signature` (t=..,v1=..) is the
    HMAC-SHA256 of "{t}.{body}" under the endpoint secret, within Stripe's 300 s tolerance.
    Raises InvalidWebhook when it does not verify."""
    import stripe

    try:
        event = stripe.Webhook.construct_event(
            body.decode("utf-8"), headers.get("stripe-signature", ""), secret
        )
    except (stripe.SignatureVerificationError, ValueError) as error:
        raise InvalidWebhook(f"The Stripe-Signature does not verify: {error}") from error
    data = event.to_dict()
    intent = (data.get("data") or {}).get("object") or {}
    metadata = intent.get("metadata") or {}
    outcome = _WEBHOOK_OUTCOMES.get(str(data.get("type")), PspOutcome.OTHER)
    failure = intent.get("last_payment_error") or {}
    if intent.get("object") != "payment_intent":
        outcome = PspOutcome.OTHER
    received = intent.get("amount_received")
    return [
        PspEvent(
            id=str(data["id"]),
            type=str(data.get("type")),
            outcome=outcome,
            payment_intent_id=metadata.get("payflow_payment_intent"),
            attempt_key=metadata.get("payflow_key"),
            psp_reference=intent.get("id"),
            charge_id=str(intent.get("latest_charge") or "") or None,
            amount=received if isinstance(received, int) and received > 0 else None,
            decline=Decline(
                failure.get("code") or "card_declined",
                failure.get("message") or "Your card was declined.",
                failure.get("decline_code"),
            )
            if outcome == PspOutcome.FAILED
            else None,
            body=data,
        )
    ]
