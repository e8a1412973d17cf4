"""Adyen as a PSP, through the official `Adyen` SDK (Checkout payments and modifications).

An attempt is one `POST /payments` whose `reference` and `Idempotency-Key` are PayFlow's
idempotency key, so a retried attempt is charged once. Captures, cancels and refunds are
Adyen's asynchronous modifications: Adyen answers `received` and reports the outcome by
notification (webhook). Adyen has no call to read a payment back; what PayFlow knows of one
after the fact comes from the notifications it stored (POST /v1/psp_webhooks/{connector}), so
the connector is given a reader of them: `lookup` is the AUTHORISATION notification for the
key, `complete_action` the one for the payment, and captures and refunds take the currency the
authorisation was made in from it. Adyen's own integration guide requires those webhooks.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from chalicelib.connectors.base import (
    AuthorizationRequest,
    AuthorizationResult,
    AuthorizationStatus,
    Connector,
    ConnectorError,
    ConnectorUnavailable,
    Decline,
    PaymentMethodDetails,
    PspRateLimited,
    PspTimeout,
    PspUnavailable,
    with_answer,
)
from chalicelib.domain.psp_events import (
    InvalidWebhook,
    PspEvent,
    PspOutcome,
    payment_intent_of,
)
from chalicelib.domain.test_cards import EXP_MONTH, EXP_YEAR, describe

if TYPE_CHECKING:
    import Adyen

# The SDK (about 0.1 s to import) is imported by the calls that use it, not with this module.

T = TypeVar("T")

Notifications = Callable[[str, str], "dict[str, Any] | None"]
"""(eventCode, merchantReference or pspReference) -> the last notification item PayFlow
stored for it, or None."""

ERRORS: dict[str, type[ConnectorError] | tuple[str, str | None]] = {
    # What Adyen's answer means to PayFlow, the one table. Keys: `http_<status>` (`http_5xx`),
    # `error_<errorCode>`, `result_<resultCode>`, `refusal_<refusalReasonCode>`. An error class
    # is retried or failed over on by the state machine; a (code, decline_code) pair is an
    # answer, a decline in Stripe's words.
    "http_400": ConnectorUnavailable,
    "http_401": ConnectorUnavailable,
    "http_403": ConnectorUnavailable,
    "http_404": ConnectorUnavailable,
    "http_422": ConnectorUnavailable,
    "http_429": PspRateLimited,
    "http_5xx": PspUnavailable,
    "error_704": PspTimeout,  # the first request with this key is still in progress
    "result_Error": PspUnavailable,
    "result_Pending": PspTimeout,  # the outcome comes later, by notification
    "result_Received": PspTimeout,
    "result_Cancelled": ("card_declined", "generic_decline"),
    "refusal_2": ("card_declined", "generic_decline"),
    "refusal_3": ("card_declined", "call_issuer"),
    "refusal_4": PspUnavailable,  # Acquirer Error: another PSP may get through
    "refusal_5": ("card_declined", "restricted_card"),
    "refusal_6": ("expired_card", "expired_card"),
    "refusal_7": ("card_declined", "invalid_amount"),
    "refusal_8": ("incorrect_number", "incorrect_number"),
    "refusal_9": PspUnavailable,  # Issuer Unavailable
    "refusal_11": ("payment_intent_authentication_failure", None),
    "refusal_12": ("card_declined", "insufficient_funds"),
    "refusal_14": ("card_declined", "fraudulent"),
    "refusal_15": ("card_declined", "generic_decline"),
    "refusal_16": ("card_declined", "generic_decline"),
    "refusal_20": ("card_declined", "fraudulent"),
    "refusal_22": ("card_declined", "fraudulent"),
    "refusal_24": ("incorrect_cvc", "incorrect_cvc"),
    "refusal_25": ("card_declined", "restricted_card"),
    "refusal_27": ("card_declined", "do_not_honor"),
    "refusal_28": ("card_declined", "withdrawal_count_limit_exceeded"),
    "refusal_29": ("card_declined", "withdrawal_count_limit_exceeded"),
    "refusal_31": ("card_declined", "fraudulent"),
    "refusal_38": ("authentication_required", "authentication_required"),
}
REFUSAL_CODES = {
    "Refused": "2",
    "Referral": "3",
    "Acquirer Error": "4",
    "Blocked Card": "5",
    "Expired Card": "6",
    "Invalid Amount": "7",
    "Invalid Card Number": "8",
    "Issuer Unavailable": "9",
    "3D Not Authenticated": "11",
    "Not enough balance": "12",
    "Acquirer Fraud": "14",
    "Cancelled": "15",
    "Shopper Cancelled": "16",
    "FRAUD": "20",
    "FRAUD-CANCELLED": "22",
    "CVC Declined": "24",
    "Restricted Card": "25",
    "Declined Non Generic": "27",
    "Withdrawal amount exceeded": "28",
    "Withdrawal count exceeded": "29",
    "Issuer Suspected Fraud": "31",
    "Authentication required": "38",
}
"""Adyen's refusal reasons by their text: a notification carries the text, not the code."""
_GENERIC_DECLINE = ("card_declined", "generic_decline")
_ACTION_RESULTS = {"RedirectShopper", "IdentifyShopper", "ChallengeShopper"}


def error_class(key: str) -> type[ConnectorError]:
    """The PayFlow error for a key of ERRORS that names one (ConnectorUnavailable otherwise)."""
    mapped = ERRORS.get(key)
    return mapped if isinstance(mapped, type) else ConnectorUnavailable


def _refusal(code: str | None, reason: str | None) -> Decline:
    """A refusal as a Decline, or the error it stands for (raised)."""
    key = f"refusal_{code}"
    mapped = ERRORS.get(key, _GENERIC_DECLINE)
    if isinstance(mapped, type):
        raise mapped(f"adyen refused: {reason}")
    stripe_code, decline_code = mapped
    return Decline(stripe_code, reason or "Your card was declined.", decline_code)


def translate_errors(call: Callable[[], T]) -> T:
    """Run an Adyen SDK call; transport failures and error answers become PayFlow's."""
    import Adyen
    import requests

    try:
        return call()
    except (requests.Timeout, requests.ConnectionError) as error:
        raise PspTimeout(f"adyen: {error}") from error
    except requests.RequestException as error:
        raise PspUnavailable(f"adyen: {error}") from error
    except Adyen.AdyenError as error:
        status = int(error.status_code or 0)
        for key in (f"error_{error.error_code}", "http_5xx" if status >= 500 else f"http_{status}"):
            if key in ERRORS:
                raise error_class(key)(f"adyen answered {status}: {error.error_code}") from error
        raise ConnectorUnavailable(f"adyen answered {status}: {error.error_code}") from error


@dataclass(frozen=True)
class AdyenAccount:
    """The Adyen account PayFlow's Adyen connectors use (ADYEN_* settings)."""

    api_key: str | None = None
    merchant_account: str | None = None
    checkout_base: str | None = None
    """Adyen's Checkout API with its version (default: the SDK's test endpoint)."""
    return_url: str = "https://payflow.invalid/adyen/return"
    """Where Adyen sends the shopper back after a redirect (3-D Secure)."""

    @property
    def configured(self) -> bool:
        return bool(self.api_key and self.merchant_account)


class AdyenConnector(Connector):
    """Adyen, reached with the official SDK (enabled when ADYEN_API_KEY is set)."""

    def __init__(
        self,
        account: AdyenAccount,
        notifications: Notifications,
        *,
        connector_id: str = "adyen",
        timeout_ms: int = 10_000,
    ) -> None:
        self.id = connector_id
        self._account = account
        self._notifications = notifications
        self._timeout = timeout_ms / 1000
        self._sdk: Adyen.Adyen | None = None

    def _adyen(self) -> Adyen.Adyen:
        import Adyen

        if not self._account.configured:
            raise ConnectorUnavailable(
                "the adyen connector needs ADYEN_API_KEY and ADYEN_MERCHANT_ACCOUNT"
            )
        if self._sdk is None:
            # requests, whatever else is installed (the SDK prefers pycurl when it finds it).
            sdk = Adyen.Adyen(
                xapikey=self._account.api_key,
                platform="test",
                http_force="requests",
                http_timeout=self._timeout,
            )
            if self._account.checkout_base:
                sdk.checkout.payments_api.baseUrl = self._account.checkout_base
                sdk.checkout.modifications_api.baseUrl = self._account.checkout_base
            self._sdk = sdk
        return self._sdk

    def payment_method(self, payment_method_id: str) -> PaymentMethodDetails | None:
        pm = describe(payment_method_id)
        if pm is None or pm.type != "card":
            return None
        return PaymentMethodDetails(pm.id, pm.type, pm.brand, pm.bin)

    def authorize(self, request: AuthorizationRequest) -> AuthorizationResult:
        pm = describe(request.payment_method)
        if pm is None or pm.type != "card":
            raise ConnectorUnavailable(f"adyen cannot charge {request.payment_method}")
        sdk = self._adyen()
        body: dict[str, Any] = {
            "merchantAccount": self._account.merchant_account,
            "amount": {"value": request.amount, "currency": request.currency.upper()},
            "reference": request.idempotency_key,
            "paymentMethod": {
                "type": "scheme",
                "number": pm.number,
                "expiryMonth": f"{EXP_MONTH:02d}",
                "expiryYear": str(EXP_YEAR),
                "cvc": "737",
                "holderName": "PayFlow test card",
            },
            "returnUrl": self._account.return_url,
            "shopperInteraction": "ContAuth" if request.off_session else "Ecommerce",
            "metadata": {"payflow_payment_intent": request.payment_intent_id},
        }
        if request.capture:
            body["captureDelayHours"] = 0
        else:
            body["additionalData"] = {"manualCapture": "true"}
        answer = translate_errors(
            lambda: sdk.checkout.payments_api.payments(
                body, idempotency_key=request.idempotency_key
            )
        ).message
        return _result(answer)

    def lookup(self, idempotency_key: str) -> AuthorizationResult | None:
        item = self._notifications("AUTHORISATION", idempotency_key)
        return _from_notification(item) if item else None

    def complete_action(
        self, psp_reference: str, *, succeeded: bool, capture: bool, idempotency_key: str
    ) -> AuthorizationResult:
        # The shopper authenticates on the issuer's page; Adyen reports the outcome.
        item = self._notifications("AUTHORISATION", psp_reference)
        if item is None:
            raise PspTimeout("adyen has not reported this authentication's outcome yet")
        return _from_notification(item)

    def capture(self, psp_reference: str, amount: int, *, idempotency_key: str) -> None:
        sdk = self._adyen()
        body = {
            "merchantAccount": self._account.merchant_account,
            "amount": {"value": amount, "currency": self._currency(psp_reference)},
            "reference": idempotency_key,
        }
        translate_errors(
            lambda: sdk.checkout.modifications_api.capture_authorised_payment(
                body, psp_reference, idempotency_key=idempotency_key
            )
        )

    def void(self, psp_reference: str, *, idempotency_key: str) -> None:
        sdk = self._adyen()
        body = {"merchantAccount": self._account.merchant_account, "reference": idempotency_key}
        translate_errors(
            lambda: sdk.checkout.modifications_api.cancel_authorised_payment_by_psp_reference(
                body, psp_reference, idempotency_key=idempotency_key
            )
        )

    def refund(self, psp_reference: str, amount: int, *, idempotency_key: str) -> None:
        # Adyen accepts the refund now and reports a refusal later, by a REFUND notification.
        sdk = self._adyen()
        body = {
            "merchantAccount": self._account.merchant_account,
            "amount": {"value": amount, "currency": self._currency(psp_reference)},
            "reference": idempotency_key,
        }
        translate_errors(
            lambda: sdk.checkout.modifications_api.refund_captured_payment(
                body, psp_reference, idempotency_key=idempotency_key
            )
        )

    def refunded(self, psp_reference: str, idempotency_key: str) -> bool:
        item = self._notifications("REFUND", idempotency_key)
        return bool(
            item and item.get("originalReference") == psp_reference and item["success"] == "true"
        )

    def _currency(self, psp_reference: str) -> str:
        """The currency of the authorisation, which a modification must repeat."""
        item = self._notifications("AUTHORISATION", psp_reference)
        if item is None:
            raise PspTimeout("adyen has not confirmed this authorisation by notification yet")
        return str(item["amount"]["currency"])


def _charge_id(psp_reference: str) -> str:
    """PayFlow's charge for an Adyen payment (Adyen has no separate charge object)."""
    return f"ch_{psp_reference}"


def _result(answer: dict[str, Any]) -> AuthorizationResult:
    return with_answer(_mapped(answer), answer)


def _mapped(answer: dict[str, Any]) -> AuthorizationResult:
    result = str(answer.get("resultCode", ""))
    psp = str(answer.get("pspReference", ""))
    if result == "Authorised":
        return AuthorizationResult(AuthorizationStatus.AUTHORIZED, psp, _charge_id(psp))
    if result in _ACTION_RESULTS:
        url = (answer.get("action") or {}).get("url")
        if not url:
            raise ConnectorUnavailable("adyen asked for native 3-D Secure, which PayFlow lacks")
        return AuthorizationResult(
            AuthorizationStatus.REQUIRES_ACTION,
            psp,
            _charge_id(psp),
            next_action={
                "type": "redirect_to_url",
                "redirect_to_url": {"url": url, "return_url": None},
            },
        )
    if result == "Refused":
        decline = _refusal(answer.get("refusalReasonCode"), answer.get("refusalReason"))
        return AuthorizationResult(AuthorizationStatus.DECLINED, psp, _charge_id(psp), decline)
    mapped = ERRORS.get(f"result_{result}")
    if isinstance(mapped, tuple):
        decline = Decline(mapped[0], "The payment was cancelled.", mapped[1])
        return AuthorizationResult(AuthorizationStatus.DECLINED, psp, _charge_id(psp), decline)
    raise error_class(f"result_{result}")(f"adyen answered resultCode {result or 'none'}")


def _from_notification(item: dict[str, Any]) -> AuthorizationResult:
    psp = str(item["pspReference"])
    if item.get("success") == "true":
        return AuthorizationResult(AuthorizationStatus.AUTHORIZED, psp, _charge_id(psp))
    reason = str(item.get("reason") or "")
    decline = _refusal(REFUSAL_CODES.get(reason.split(":")[0].strip()), reason)
    return AuthorizationResult(AuthorizationStatus.DECLINED, psp, _charge_id(psp), decline)


def webhook_events(hmac_key: str, headers: Mapping[str, str], body: bytes) -> list[PspEvent]:
    """An Adyen notification request, verified: every item carries the HMAC Adyen signs with
    the merchant's HMAC key (checked by the SDK). An item is one event, named by its event
    code and pspReference (how Adyen's duplicates are recognized). Raises InvalidWebhook when
    any item's signature does not match."""
    import Adyen.util

    try:
        request = json.loads(body)
        items = [entry["NotificationRequestItem"] for entry in request["notificationItems"]]
        valid = all(Adyen.util.is_valid_hmac_notification(item, hmac_key) for item in items)
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise InvalidWebhook("The Adyen notification is not readable.") from error
    if not items or not valid:
        raise InvalidWebhook("An Adyen notification item's hmacSignature does not match.")
    return [_event(item) for item in items]


def _event(item: dict[str, Any]) -> PspEvent:
    code = str(item.get("eventCode", ""))
    psp = str(item.get("pspReference", ""))
    reference = str(item.get("merchantReference", ""))
    success = item.get("success") == "true"
    amount = (item.get("amount") or {}).get("value")
    outcome = PspOutcome.OTHER
    payment_psp = psp
    decline = None
    if code == "AUTHORISATION":
        outcome = PspOutcome.AUTHORIZED if success else PspOutcome.FAILED
        if not success:
            try:
                decline = _from_notification(item).decline
            except ConnectorError:
                # A refusal Adyen would fail over on (issuer unavailable): still a failure here.
                decline = Decline("card_declined", str(item.get("reason") or ""), None)
    elif code == "CAPTURE" and success:
        outcome = PspOutcome.CAPTURED
        payment_psp = str(item.get("originalReference", ""))
    return PspEvent(
        id=f"{code}:{psp}",
        type=code,
        outcome=outcome,
        payment_intent_id=payment_intent_of(reference),
        attempt_key=reference if code == "AUTHORISATION" else None,
        psp_reference=payment_psp or None,
        charge_id=_charge_id(payment_psp) if payment_psp else None,
        amount=amount if isinstance(amount, int) else None,
        decline=decline,
        references=(reference, psp),
        body=item,
    )
