"""Stripe as a PSP, through the official SDK.

Each PayFlow attempt becomes one Stripe PaymentIntent created and confirmed in one call with
PayFlow's idempotency key, so a retried attempt is charged once at Stripe too. Stripe's errors
map onto PayFlow's taxonomy: declines are answers; connection problems are timeouts (the outcome
is unknown, so the orchestration asks `lookup` before failing over); 429 is rate limiting; 5xx
is unavailability; bad credentials or requests make the connector unavailable for this payment.
"""

from __future__ import annotations

import time
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
    ReportsUnavailable,
    with_answer,
)
from chalicelib.domain.disputes import DisputeReason, DisputeReport, DisputeStatus
from chalicelib.domain.psp_events import InvalidWebhook, PspEvent, PspOutcome
from chalicelib.domain.test_cards import describe

if TYPE_CHECKING:
    import stripe

    from chalicelib.reconciliation.reports import SettlementRow

# The SDK (about 50 ms to import) is imported by the calls that use it, not with this module:
# the connector is off unless STRIPE_API_KEY is set, and every function imports the registry.

T = TypeVar("T")
_REPORT_POLLS = 30
_REPORT_POLL_SECONDS = 1.0
"""A report run is asynchronous at Stripe: how long PayFlow waits for one (a run retries later)."""
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
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.id = connector_id
        self._sleep = sleep
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
                "payflow_merchant": request.merchant_id,
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

    def settlement_report(self, merchant_id: str, day: str) -> list[SettlementRow]:
        """Stripe's itemized payout reconciliation report of `day`, through the Reporting API
        (a report run, then its file), narrowed to the merchant PayFlow named in each payment's
        metadata: one Stripe account serves every PayFlow merchant."""
        from chalicelib.reconciliation.reports import (
            STRIPE_METADATA_COLUMNS,
            STRIPE_REPORT,
            day_start,
            read_stripe_itemized,
        )

        client = self._stripe()
        start = day_start(day)
        run = translate_errors(
            lambda: client.v1.reporting.report_runs.create(
                params={
                    "report_type": STRIPE_REPORT,
                    "parameters": {
                        "interval_start": start,
                        "interval_end": start + 86_400,
                        "columns": list(STRIPE_METADATA_COLUMNS),
                    },
                }  # type: ignore[arg-type]
            )
        )
        run_id = run.id
        for _ in range(_REPORT_POLLS):
            if run.status != "pending":
                break
            self._sleep(_REPORT_POLL_SECONDS)
            run = translate_errors(lambda: client.v1.reporting.report_runs.retrieve(run_id))
        if run.status != "succeeded" or run.result is None or not run.result.url:
            raise ReportsUnavailable(f"{self.id}: report run {run.id} is {run.status}")
        text = self._download(str(run.result.url))
        return [
            row for row, merchant in read_stripe_itemized(self.id, text) if merchant == merchant_id
        ]

    def _download(self, url: str) -> str:
        """A report file's contents (files.stripe.com; the fake's own address in tests)."""
        import requests

        try:
            response = requests.get(
                url, auth=(self._api_key or "", ""), timeout=self._timeout_ms / 1000
            )
        except requests.RequestException as error:
            raise PspUnavailable(f"{self.id}: report file: {error}") from error
        if response.status_code != 200:
            raise PspUnavailable(f"{self.id}: report file answered {response.status_code}")
        return response.text

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
    if intent.get("object") == "dispute":
        return [_dispute_event(data, intent)]
    if intent.get("object") == "refund" and intent.get("status") == "failed":
        # charge.refund.updated, refund.updated or refund.failed of a refund PayFlow asked for
        # (its metadata carries the PayFlow refund id).
        key = str((intent.get("metadata") or {}).get("payflow_key") or "")
        return [
            PspEvent(
                id=str(data["id"]),
                type=str(data.get("type")),
                outcome=PspOutcome.REFUND_FAILED,
                payment_intent_id=None,
                psp_reference=str(intent.get("payment_intent") or "") or None,
                refund_id=key if key.startswith("re_") else None,
                failure_reason=str(intent.get("failure_reason") or "unknown"),
                body=data,
            )
        ]
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


def _dispute_event(data: dict[str, Any], dispute: dict[str, Any]) -> PspEvent:
    """A charge.dispute.* event: the dispute object says it all (Stripe's charge id is PayFlow's
    charge id for a Stripe payment)."""
    try:
        status = DisputeStatus(str(dispute.get("status")))
        reason = DisputeReason(str(dispute.get("reason")))
    except ValueError:
        status, reason = DisputeStatus.WARNING_NEEDS_RESPONSE, DisputeReason.GENERAL
        if dispute.get("status") == "prevented":
            # Stripe's own fraud tooling stopped it: nothing for PayFlow to apply.
            return PspEvent(str(data["id"]), str(data.get("type")), PspOutcome.OTHER, None)
    charge = dispute.get("charge")
    charge_id = charge.get("id") if isinstance(charge, dict) else charge
    details = (dispute.get("payment_method_details") or {}).get("card") or {}
    amount = dispute.get("amount")
    if not isinstance(dispute.get("id"), str) or not isinstance(charge_id, str):
        raise InvalidWebhook("The Stripe dispute event names no dispute or charge.")
    return PspEvent(
        id=str(data["id"]),
        type=str(data.get("type")),
        outcome=PspOutcome.DISPUTE,
        payment_intent_id=None,
        psp_reference=str(dispute.get("payment_intent") or "") or None,
        charge_id=charge_id,
        dispute=DisputeReport(
            reference=dispute["id"],
            charge_id=charge_id,
            status=status,
            reason=reason,
            amount=amount if isinstance(amount, int) else None,
            currency=str(dispute.get("currency") or "") or None,
            due_by=(dispute.get("evidence_details") or {}).get("due_by"),
            network_reason_code=details.get("network_reason_code"),
            payment_reference=str(dispute.get("payment_intent") or "") or None,
        ),
        body=data,
    )
