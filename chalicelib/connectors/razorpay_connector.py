"""Razorpay as a PSP, through the official `razorpay` SDK (orders, payments, capture, refunds).

One PayFlow attempt is one Razorpay order whose `receipt` is PayFlow's idempotency key, paid by
one server-to-server payment (a card, or a UPI collect request). Razorpay takes no
Idempotency-Key on payments, so the order is the key: `authorize` reads the orders with that
receipt first and never pays an order twice, and `lookup` finds a payment whose answer was lost
the same way. Refunds carry Razorpay's `X-Refund-Idempotency` header.

Razorpay authorizations are released by Razorpay itself when they are not captured (there is
no void call), and a capture takes the whole authorized amount.
"""

from __future__ import annotations

import hashlib
import hmac
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
    RefundRefused,
    with_answer,
)
from chalicelib.domain.disputes import DisputeReport, DisputeStatus, reason_for
from chalicelib.domain.psp_events import InvalidWebhook, PspEvent, PspOutcome
from chalicelib.domain.test_cards import EXP_MONTH, EXP_YEAR, TestCard, describe

if TYPE_CHECKING:
    import razorpay
    import requests

    from chalicelib.reconciliation.reports import SettlementRow

# The SDK (about 0.1 s to import, with requests) is imported by the calls that use it: every
# function imports the registry, few of them call Razorpay.

T = TypeVar("T")

ERRORS: dict[str, type[ConnectorError] | tuple[str, str | None]] = {
    # What Razorpay's answer means to PayFlow, the one table: an HTTP status (`http_<n>`,
    # `http_5xx`) or Razorpay's error `code` maps to an error class the state machine retries
    # or fails over on; a failed payment's `error_reason` is an answer, a decline in Stripe's
    # (code, decline_code).
    "http_401": ConnectorUnavailable,
    "http_403": ConnectorUnavailable,
    "http_429": PspRateLimited,
    "http_5xx": PspUnavailable,
    "SERVER_ERROR": PspUnavailable,
    "GATEWAY_ERROR": PspUnavailable,
    "BAD_REQUEST_ERROR": ConnectorUnavailable,
    "card_declined": ("card_declined", "generic_decline"),
    "payment_failed": ("card_declined", "generic_decline"),
    "insufficient_funds": ("card_declined", "insufficient_funds"),
    "card_expired": ("expired_card", "expired_card"),
    "incorrect_cvv": ("incorrect_cvc", "incorrect_cvc"),
    "incorrect_card_details": ("incorrect_number", "incorrect_number"),
    "authentication_failed": ("payment_intent_authentication_failure", None),
    "payment_cancelled": ("card_declined", "generic_decline"),
    "payment_timed_out": ("card_declined", "generic_decline"),
    "authorisation_declined_by_psp": ("card_declined", "generic_decline"),
    "transaction_limit_exceeded": ("card_declined", "card_velocity_exceeded"),
    "suspected_fraud": ("card_declined", "fraudulent"),
}
_GENERIC_DECLINE = ("card_declined", "generic_decline")
_AUTHORIZED = {"authorized", "captured", "refunded"}
_RECEIPT_MAX = 40
"""Razorpay's limit on an order's `receipt`."""


def error_class(key: str) -> type[ConnectorError]:
    """The PayFlow error for an HTTP status key or Razorpay error code (ERRORS)."""
    mapped = ERRORS.get(key)
    return mapped if isinstance(mapped, type) else ConnectorUnavailable


def decline_for(reason: str | None, description: str | None) -> Decline:
    """A failed Razorpay payment's `error_reason`, as Stripe would have declined it."""
    mapped = ERRORS.get(reason or "")
    code, decline_code = mapped if isinstance(mapped, tuple) else _GENERIC_DECLINE
    return Decline(code, description or "Your payment was declined.", decline_code)


def _raise_for_status(response: requests.Response, *args: Any, **kwargs: Any) -> None:
    # The SDK turns every non-2xx answer into an exception by the body's error code alone,
    # dropping the status: read it here, before the SDK parses, so 429 and 5xx keep their
    # meaning.
    status = response.status_code
    key = "http_5xx" if status >= 500 else f"http_{status}"
    if key in ERRORS:
        raise error_class(key)(f"razorpay answered {status}")


def translate_errors(call: Callable[[], T]) -> T:
    """Run a Razorpay SDK call; transport failures and server errors become PayFlow's."""
    import razorpay.errors
    import requests

    try:
        return call()
    except (requests.Timeout, requests.ConnectionError) as error:
        raise PspTimeout(f"razorpay: {error}") from error
    except requests.RequestException as error:
        raise PspUnavailable(f"razorpay: {error}") from error
    except razorpay.errors.GatewayError as error:
        raise error_class("GATEWAY_ERROR")(f"razorpay: {error}") from error
    except razorpay.errors.ServerError as error:
        raise error_class("SERVER_ERROR")(f"razorpay: {error}") from error


def receipt_for(idempotency_key: str) -> str:
    """The order receipt that stands for PayFlow's idempotency key (at most 40 characters)."""
    if len(idempotency_key) <= _RECEIPT_MAX:
        return idempotency_key
    return "pf_" + hashlib.sha256(idempotency_key.encode()).hexdigest()[: _RECEIPT_MAX - 3]


@dataclass(frozen=True)
class RazorpayAccount:
    """The Razorpay account PayFlow's Razorpay connectors use (RAZORPAY_* settings)."""

    key_id: str | None = None
    key_secret: str | None = None
    api_base: str | None = None
    """Default: Razorpay's API; tests point it at a local fake."""

    @property
    def configured(self) -> bool:
        return bool(self.key_id and self.key_secret)


class RazorpayConnector(Connector):
    """Razorpay, reached with the official SDK (enabled when RAZORPAY_KEY_ID is set)."""

    def __init__(
        self,
        account: RazorpayAccount,
        *,
        connector_id: str = "razorpay",
        timeout_ms: int = 10_000,
        customer_email: str = "customer@payflow.invalid",
        customer_contact: str = "+919000090000",
    ) -> None:
        self.id = connector_id
        self._key_id = account.key_id
        self._key_secret = account.key_secret
        self._api_base = account.api_base
        self._timeout = timeout_ms / 1000
        # Razorpay's server-to-server payments require a customer email and contact; PayFlow's
        # authorization carries neither, so each connector sends its configured ones.
        self._email = customer_email
        self._contact = customer_contact
        self._client: razorpay.Client | None = None

    def _razorpay(self) -> razorpay.Client:
        import razorpay
        import requests

        if not (self._key_id and self._key_secret):
            raise ConnectorUnavailable("the razorpay connector needs RAZORPAY_KEY_ID and _SECRET")
        if self._client is None:
            session = requests.Session()
            session.hooks["response"].append(_raise_for_status)
            options: dict[str, Any] = {"base_url": self._api_base} if self._api_base else {}
            # Retries stay off (the SDK's default): the state machine owns them.
            self._client = razorpay.Client(
                session=session, auth=(self._key_id, self._key_secret), **options
            )
        return self._client

    def payment_method(self, payment_method_id: str) -> PaymentMethodDetails | None:
        pm = describe(payment_method_id)
        if pm is None or pm.type not in ("card", "upi"):
            return None
        return PaymentMethodDetails(pm.id, pm.type, pm.brand, pm.bin)

    def authorize(self, request: AuthorizationRequest) -> AuthorizationResult:
        import razorpay.errors

        pm = describe(request.payment_method)
        if pm is None or pm.type not in ("card", "upi"):
            raise ConnectorUnavailable(f"razorpay cannot charge {request.payment_method}")
        client = self._razorpay()
        orders = self._orders(request.idempotency_key)
        answered = _answer(orders)
        if answered is not None:
            return answered
        order = orders[0][0] if orders else self._create_order(request)
        body = self._payment_body(request, pm, order["id"])
        create = client.payment.createUpi if pm.type == "upi" else client.payment.createPaymentJson
        try:
            created = translate_errors(lambda: create(body, timeout=self._timeout))
        except razorpay.errors.BadRequestError as error:
            # A declined payment comes back as a 400 whose reason the SDK drops; the failed
            # payment on the order keeps it.
            declined = _settled(self._payments(order["id"]))
            if declined is None:
                raise ConnectorUnavailable(f"razorpay refused the payment: {error}") from error
            return declined
        payment = self._fetch(created["razorpay_payment_id"])
        redirect = next(
            (n["url"] for n in created.get("next") or [] if n.get("action") == "redirect"), None
        )
        if payment["status"] == "created" and redirect:
            return AuthorizationResult(
                AuthorizationStatus.REQUIRES_ACTION,
                payment["id"],
                _charge_id(payment["id"]),
                next_action={
                    "type": "redirect_to_url",
                    "redirect_to_url": {"url": redirect, "return_url": None},
                },
            )
        return _result(payment)

    def lookup(self, idempotency_key: str) -> AuthorizationResult | None:
        return _answer(self._orders(idempotency_key))

    def complete_action(
        self, psp_reference: str, *, succeeded: bool, capture: bool, idempotency_key: str
    ) -> AuthorizationResult:
        # The customer authenticates on Razorpay's (the bank's) page; PayFlow reads the outcome.
        return _result(self._fetch(psp_reference))

    def capture(self, psp_reference: str, amount: int, *, idempotency_key: str) -> None:
        client = self._razorpay()
        payment = self._fetch(psp_reference)
        if payment["status"] in ("captured", "refunded"):
            return  # a retried capture: Razorpay would refuse the second one
        translate_errors(
            lambda: client.payment.capture(
                psp_reference,
                amount,
                {"currency": payment["currency"]},
                timeout=self._timeout,
            )
        )

    def void(self, psp_reference: str, *, idempotency_key: str) -> None:
        # Razorpay has no call to release an authorization: one that is not captured is
        # released (refunded to the customer) by Razorpay after the capture window. Reading it
        # still checks that Razorpay knows the payment and is reachable.
        self._fetch(psp_reference)

    def refund(self, psp_reference: str, amount: int, *, idempotency_key: str) -> None:
        import razorpay.errors

        client = self._razorpay()
        try:
            refund = translate_errors(
                lambda: client.payment.refund(
                    psp_reference,
                    {"amount": amount, "notes": {"payflow_key": idempotency_key}},
                    headers={"X-Refund-Idempotency": idempotency_key},
                    timeout=self._timeout,
                )
            )
        except razorpay.errors.BadRequestError as error:
            raise RefundRefused("declined") from error
        if refund.get("status") == "failed":
            raise RefundRefused("unknown")

    def refunded(self, psp_reference: str, idempotency_key: str) -> bool:
        client = self._razorpay()
        listed = translate_errors(
            lambda: client.payment.fetch_multiple_refund(
                psp_reference, {"count": 100}, timeout=self._timeout
            )
        )
        return any(
            (r.get("notes") or {}).get("payflow_key") == idempotency_key
            and r.get("status") in ("processed", "pending")
            for r in listed.get("items", [])
        )

    # -- Razorpay calls ------------------------------------------------------------------------

    def _orders(self, idempotency_key: str) -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
        """The orders made for this key (newest first), each with its payments."""
        client = self._razorpay()
        found = translate_errors(
            lambda: client.order.all(
                {"receipt": receipt_for(idempotency_key)}, timeout=self._timeout
            )
        )
        return [(order, self._payments(order["id"])) for order in found.get("items", [])]

    def _payments(self, order_id: str) -> list[dict[str, Any]]:
        client = self._razorpay()
        found = translate_errors(lambda: client.order.payments(order_id, timeout=self._timeout))
        return list(found.get("items", []))

    def _fetch(self, payment_id: str) -> dict[str, Any]:
        client = self._razorpay()
        return translate_errors(  # type: ignore[no-any-return]
            lambda: client.payment.fetch(payment_id, timeout=self._timeout)
        )

    def _create_order(self, request: AuthorizationRequest) -> dict[str, Any]:
        client = self._razorpay()
        body = {
            "amount": request.amount,
            "currency": request.currency.upper(),
            "receipt": receipt_for(request.idempotency_key),
            "notes": {
                "payflow_payment_intent": request.payment_intent_id,
                "payflow_key": request.idempotency_key,
                "payflow_merchant": request.merchant_id,
            },
            "payment": {"capture": "automatic" if request.capture else "manual"},
        }
        return translate_errors(  # type: ignore[no-any-return]
            lambda: client.order.create(body, timeout=self._timeout)
        )

    def _payment_body(
        self, request: AuthorizationRequest, pm: TestCard, order_id: str
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "amount": request.amount,
            "currency": request.currency.upper(),
            "order_id": order_id,
            "email": self._email,
            "contact": self._contact,
            "notes": {
                "payflow_payment_intent": request.payment_intent_id,
                "payflow_key": request.idempotency_key,
                "payflow_merchant": request.merchant_id,
            },
        }
        if pm.type == "upi":
            # Razorpay's test VPA that approves the collect request.
            body.update(method="upi", upi={"flow": "collect", "vpa": "success@razorpay"})
            return body
        body.update(
            method="card",
            card={
                "number": pm.number,
                "name": "PayFlow test card",
                "expiry_month": EXP_MONTH,
                "expiry_year": EXP_YEAR % 100,
                "cvv": "123",
            },
        )
        return body

    def settlement_report(self, merchant_id: str, day: str) -> list[SettlementRow]:
        """Razorpay's settlement recon of `day` (`GET /v1/settlements/recon/combined` with
        year, month and day): its payments and refunds, narrowed to the merchant PayFlow named
        in each payment's notes (a refund line names its payment, read from the same report or
        from Razorpay)."""
        from chalicelib.reconciliation.reports import read_razorpay_recon

        client = self._razorpay()
        year, month, date_of_month = (int(part) for part in day.split("-"))
        answer = translate_errors(
            lambda: client.settlement.report(
                {"year": year, "month": month, "day": date_of_month}, timeout=self._timeout
            )
        )
        items = list(answer.get("items") or [])
        notes = {i["entity_id"]: _notes(i) for i in items if i.get("type") == "payment"}
        rows = []
        for row, item in read_razorpay_recon(self.id, items):
            payment = str(item.get("payment_id") or item["entity_id"])
            if payment not in notes:
                notes[payment] = _notes(self._fetch(payment))
            if notes[payment].get("payflow_merchant") != merchant_id:
                continue
            key = notes[payment].get("payflow_key", "")
            rows.append(row.model_copy(update={"payment_intent": key.partition(":")[0] or None}))
        return rows


def _notes(entity: dict[str, Any]) -> dict[str, str]:
    """Razorpay's notes: an object in its API, a JSON string in some recon lines."""
    raw = entity.get("notes") or {}
    if isinstance(raw, str):
        import json

        try:
            raw = json.loads(raw)
        except ValueError:
            return {}
    return {str(k): str(v) for k, v in raw.items()} if isinstance(raw, dict) else {}


def _charge_id(payment_id: str) -> str:
    """PayFlow's charge for a Razorpay payment (Razorpay has no separate charge object)."""
    return "ch_" + payment_id.removeprefix("pay_")


def _answer(
    orders: list[tuple[dict[str, Any], list[dict[str, Any]]]],
) -> AuthorizationResult | None:
    """What the orders of one idempotency key have answered (None: no payment made yet).
    A payment still waiting for its customer is neither paid again nor given up on: a UPI
    collect request waits for the customer's approval, a card for its 3-D Secure."""
    for _, payments in orders:
        answered = _settled(payments)
        if answered is not None:
            return answered
        waiting = [p for p in payments if p["status"] == "created"]
        if waiting:
            return _result(waiting[0])
    return None


def _settled(payments: list[dict[str, Any]]) -> AuthorizationResult | None:
    """The answer an order's payments give: an authorized one wins, else the latest failure;
    None while no payment was made or one is still waiting."""
    for payment in payments:
        if payment["status"] in _AUTHORIZED:
            return _result(payment)
    failed = [p for p in payments if p["status"] == "failed"]
    if failed and not any(p["status"] == "created" for p in payments):
        return _result(max(failed, key=lambda p: p.get("created_at", 0)))
    return None


def _result(payment: dict[str, Any]) -> AuthorizationResult:
    return with_answer(_mapped(payment), payment)


def _mapped(payment: dict[str, Any]) -> AuthorizationResult:
    status = payment["status"]
    charge = _charge_id(payment["id"])
    if status in _AUTHORIZED:
        return AuthorizationResult(AuthorizationStatus.AUTHORIZED, payment["id"], charge)
    if status == "failed":
        return AuthorizationResult(
            AuthorizationStatus.DECLINED,
            payment["id"],
            charge,
            decline=decline_for(payment.get("error_reason"), payment.get("error_description")),
        )
    if status == "created" and payment.get("method") == "upi":
        # The collect request is on the customer's phone; Razorpay's webhook says when they
        # approve it (POST /v1/psp_webhooks/{connector}).
        return AuthorizationResult(
            AuthorizationStatus.REQUIRES_ACTION,
            payment["id"],
            charge,
            next_action={"type": "upi_await_notification"},
        )
    raise PspTimeout(f"razorpay payment {payment['id']} is still {status}")


_WEBHOOK_OUTCOMES = {
    "payment.authorized": PspOutcome.AUTHORIZED,
    "payment.captured": PspOutcome.CAPTURED,
    "payment.failed": PspOutcome.FAILED,
}


def webhook_events(secret: str, headers: Mapping[str, str], body: bytes) -> list[PspEvent]:
    """A Razorpay webhook, verified: `X-Razorpay-Signature` is the hex HMAC-SHA256 of the raw
    body under the webhook secret; `X-Razorpay-Event-Id` names the event (duplicates share it).
    Raises InvalidWebhook when the signature does not match."""
    given = headers.get("x-razorpay-signature", "")
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise InvalidWebhook("The X-Razorpay-Signature does not match the body.")
    try:
        event = json.loads(body)
        name = str(event["event"])
        payment = (event.get("payload") or {}).get("payment", {}).get("entity") or {}
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise InvalidWebhook("The Razorpay webhook body is not an event.") from error
    dispute = (event.get("payload") or {}).get("dispute", {}).get("entity")
    if name.startswith("payment.dispute.") and isinstance(dispute, dict):
        return [_dispute_event(headers, name, dispute, event)]
    refund = (event.get("payload") or {}).get("refund", {}).get("entity")
    if name == "refund.failed" and isinstance(refund, dict):
        return [_refund_failed(headers, name, refund, event)]
    notes = payment.get("notes") or {}
    notes = notes if isinstance(notes, dict) else {}
    event_id = headers.get("x-razorpay-event-id") or f"{name}:{payment.get('id', '')}"
    outcome = _WEBHOOK_OUTCOMES.get(name, PspOutcome.OTHER)
    payment_id = payment.get("id")
    return [
        PspEvent(
            id=event_id,
            type=name,
            outcome=outcome,
            payment_intent_id=notes.get("payflow_payment_intent"),
            attempt_key=notes.get("payflow_key"),
            psp_reference=payment_id,
            charge_id=_charge_id(payment_id) if payment_id else None,
            amount=payment.get("amount") if isinstance(payment.get("amount"), int) else None,
            decline=decline_for(payment.get("error_reason"), payment.get("error_description"))
            if outcome == PspOutcome.FAILED
            else None,
            body=event,
        )
    ]


_INQUIRY_PHASES = frozenset({"retrieval", "fraud"})
"""Razorpay's dispute phases that ask for information and take no money (Stripe's warning_*
statuses); chargeback, pre_arbitration and arbitration do."""


def _dispute_status(entity: dict[str, Any]) -> DisputeStatus:
    """Stripe's status for a Razorpay dispute: its status read in its phase. A dispute closed
    with money deducted was lost; closed without, the merchant kept the money."""
    status = str(entity.get("status", "open"))
    inquiry = str(entity.get("phase", "chargeback")) in _INQUIRY_PHASES
    deducted = isinstance(entity.get("amount_deducted"), int) and entity["amount_deducted"] > 0
    if status == "lost" or (status == "closed" and deducted):
        return DisputeStatus.LOST
    if status in ("won", "closed"):
        return DisputeStatus.WARNING_CLOSED if inquiry else DisputeStatus.WON
    if status == "under_review":
        return DisputeStatus.WARNING_UNDER_REVIEW if inquiry else DisputeStatus.UNDER_REVIEW
    return DisputeStatus.WARNING_NEEDS_RESPONSE if inquiry else DisputeStatus.NEEDS_RESPONSE


def _dispute_event(
    headers: Mapping[str, str], name: str, entity: dict[str, Any], event: dict[str, Any]
) -> PspEvent:
    """A payment.dispute.* event (created, under_review, action_required, won, lost, closed)."""
    dispute_id, payment_id = entity.get("id"), entity.get("payment_id")
    if not isinstance(dispute_id, str) or not isinstance(payment_id, str):
        raise InvalidWebhook("The Razorpay dispute event names no dispute or payment.")
    amount, respond_by = entity.get("amount"), entity.get("respond_by")
    return PspEvent(
        id=headers.get("x-razorpay-event-id") or f"{name}:{dispute_id}",
        type=name,
        outcome=PspOutcome.DISPUTE,
        payment_intent_id=None,
        psp_reference=payment_id,
        charge_id=_charge_id(payment_id),
        dispute=DisputeReport(
            reference=dispute_id,
            charge_id=_charge_id(payment_id),
            status=_dispute_status(entity),
            reason=reason_for(entity.get("reason_code")),
            amount=amount if isinstance(amount, int) else None,
            currency=str(entity.get("currency") or "").lower() or None,
            due_by=respond_by if isinstance(respond_by, int) else None,
            network_reason_code=str(entity.get("reason_code") or "") or None,
            payment_reference=payment_id,
            reopens=name == "payment.dispute.action_required",
        ),
        body=event,
    )


def _refund_failed(
    headers: Mapping[str, str], name: str, refund: dict[str, Any], event: dict[str, Any]
) -> PspEvent:
    """refund.failed: the refund's notes carry the PayFlow refund id it was asked with."""
    notes = refund.get("notes") if isinstance(refund.get("notes"), dict) else {}
    key = str((notes or {}).get("payflow_key") or "")
    return PspEvent(
        id=headers.get("x-razorpay-event-id") or f"{name}:{refund.get('id', '')}",
        type=name,
        outcome=PspOutcome.REFUND_FAILED,
        payment_intent_id=None,
        psp_reference=str(refund.get("payment_id") or "") or None,
        refund_id=key if key.startswith("re_") else None,
        failure_reason="unknown",
        body=event,
    )
