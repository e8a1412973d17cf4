"""The PaymentIntent: its statuses, their legal transitions, and the pure functions that move it.

Nothing here performs I/O. The service layer loads a PaymentIntent, calls one of these functions
to get the next version, and writes it with a condition on the version it read.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

from chalicelib.domain.contact import Shipping, shipping_api
from chalicelib.domain.metadata import merge_metadata
from chalicelib.domain.test_cards import describe
from chalicelib.errors import ParameterInvalid, UnexpectedState


class PaymentIntentStatus(StrEnum):
    """Stripe's seven PaymentIntent statuses."""

    REQUIRES_PAYMENT_METHOD = "requires_payment_method"
    """Created (or declined) without a usable payment method; attach one and confirm."""
    REQUIRES_CONFIRMATION = "requires_confirmation"
    """Has a payment method; waits for confirm."""
    REQUIRES_ACTION = "requires_action"
    """The customer must authenticate (3-D Secure) before the PSP can authorize."""
    PROCESSING = "processing"
    """Confirmed; the PSP has not answered yet."""
    REQUIRES_CAPTURE = "requires_capture"
    """Authorized with capture_method=manual; funds are held until capture or cancel."""
    CANCELED = "canceled"
    """Terminal: canceled before any money moved (a held authorization is released)."""
    SUCCEEDED = "succeeded"
    """Terminal: the funds were captured."""


class CaptureMethod(StrEnum):
    """When authorized funds are captured."""

    AUTOMATIC = "automatic"
    """Captured as part of confirmation."""
    MANUAL = "manual"
    """Held at requires_capture until an explicit capture (or cancel)."""


class CancellationReason(StrEnum):
    """The reasons a merchant may give when canceling."""

    DUPLICATE = "duplicate"
    FRAUDULENT = "fraudulent"
    REQUESTED_BY_CUSTOMER = "requested_by_customer"
    ABANDONED = "abandoned"


class SetupFutureUsage(StrEnum):
    """Whether a payment also saves its method to the customer for later payments."""

    OFF_SESSION = "off_session"
    """Saved and authenticated for payments made without the customer present."""
    ON_SESSION = "on_session"
    """Saved for payments the customer is present for."""


class PaymentMethodType(StrEnum):
    """Payment method families a PaymentIntent may accept."""

    CARD = "card"
    UPI = "upi"
    WALLET = "wallet"


S = PaymentIntentStatus

TRANSITIONS: dict[PaymentIntentStatus, frozenset[PaymentIntentStatus]] = {
    S.REQUIRES_PAYMENT_METHOD: frozenset(
        {
            S.REQUIRES_CONFIRMATION,
            S.REQUIRES_ACTION,
            S.PROCESSING,
            S.REQUIRES_CAPTURE,
            S.SUCCEEDED,
            S.REQUIRES_PAYMENT_METHOD,
            S.CANCELED,
        }
    ),
    S.REQUIRES_CONFIRMATION: frozenset(
        {
            S.REQUIRES_ACTION,
            S.PROCESSING,
            S.REQUIRES_CAPTURE,
            S.SUCCEEDED,
            S.REQUIRES_PAYMENT_METHOD,
            S.REQUIRES_CONFIRMATION,
            S.CANCELED,
        }
    ),
    S.REQUIRES_ACTION: frozenset(
        {
            S.PROCESSING,
            S.REQUIRES_CAPTURE,
            S.SUCCEEDED,
            S.REQUIRES_PAYMENT_METHOD,
            S.REQUIRES_ACTION,
            S.CANCELED,
        }
    ),
    S.PROCESSING: frozenset(
        {S.REQUIRES_ACTION, S.REQUIRES_CAPTURE, S.SUCCEEDED, S.REQUIRES_PAYMENT_METHOD}
    ),
    S.REQUIRES_CAPTURE: frozenset({S.SUCCEEDED, S.CANCELED}),
    S.SUCCEEDED: frozenset(),
    S.CANCELED: frozenset(),
}
"""Every legal move from each status (a status may 'move' to itself when, say, re-declined)."""

UPDATABLE = frozenset({S.REQUIRES_PAYMENT_METHOD, S.REQUIRES_CONFIRMATION, S.REQUIRES_ACTION})
CONFIRMABLE = frozenset({S.REQUIRES_PAYMENT_METHOD, S.REQUIRES_CONFIRMATION, S.REQUIRES_ACTION})
CAPTURABLE = frozenset({S.REQUIRES_CAPTURE})
CANCELABLE = frozenset(
    {S.REQUIRES_PAYMENT_METHOD, S.REQUIRES_CONFIRMATION, S.REQUIRES_ACTION, S.REQUIRES_CAPTURE}
)
# Fields that can only change before the PaymentIntent is confirmed.
PRE_CONFIRMATION_FIELDS = frozenset(
    {"amount", "currency", "capture_method", "payment_method", "payment_method_types"}
)


class PaymentError(BaseModel):
    """Why the last attempt failed, as Stripe's `last_payment_error`."""

    type: str
    code: str
    message: str
    decline_code: str | None = None
    param: str | None = None
    charge: str | None = None
    payment_method: str | None = None
    payment_method_object: dict[str, Any] | None = None
    """The PaymentMethod as it was when the attempt failed (Stripe embeds the whole object)."""

    def to_api(self) -> dict[str, Any]:
        """Stripe's `api_errors`: fields without a value are left out, not null."""
        body = {
            k: v
            for k, v in self.model_dump(exclude={"payment_method", "payment_method_object"}).items()
            if v is not None
        }
        if self.payment_method_object is not None:
            body["payment_method"] = self.payment_method_object
        return body


class PaymentIntent(BaseModel):
    """A PaymentIntent as stored: the Stripe fields plus PayFlow's bookkeeping."""

    id: str
    merchant_id: str
    amount: int
    currency: str
    status: PaymentIntentStatus
    capture_method: CaptureMethod = CaptureMethod.AUTOMATIC
    created: int
    client_secret: str
    amount_capturable: int = 0
    amount_received: int = 0
    description: str | None = None
    metadata: dict[str, str] = Field(default_factory=dict)
    payment_method: str | None = None
    payment_method_types: list[str] = Field(default_factory=lambda: ["card"])
    last_payment_error: PaymentError | None = None
    latest_charge: str | None = None
    next_action: dict[str, Any] | None = None
    canceled_at: int | None = None
    cancellation_reason: CancellationReason | None = None
    # Bookkeeping, never shown to API callers.
    version: int = 0
    """Incremented on every write; writes are conditional on the version read."""
    attempt_count: int = 0
    """PSP authorization attempts so far; part of each attempt's PSP idempotency key."""
    connector: str | None = None
    """The connector that holds the current authorization (capture and cancel go there)."""
    psp_reference: str | None = None
    """The connector's own id for the current authorization."""
    candidates: list[str] = Field(default_factory=list)
    """The connectors routing chose for the current attempt, in the order to try them."""
    answered_by: str | None = None
    """The connector whose answer the latest attempt took (kept after a decline, which clears
    `connector`)."""
    amount_refunded: int = 0
    """Refunded or being refunded (a failed refund gives its amount back)."""
    customer: str | None = None
    setup_future_usage: SetupFutureUsage | None = None
    receipt_email: str | None = None
    statement_descriptor: str | None = None
    statement_descriptor_suffix: str | None = None
    shipping: Shipping | None = None
    transfer_group: str | None = None
    automatic_payment_methods: bool = False
    card_capture_method: CaptureMethod | None = None
    """payment_method_options[card][capture_method]: overrides capture_method for cards."""
    return_url: str | None = None
    """Where the customer returns after authentication; shown in next_action."""
    off_session: bool = False
    """The current attempt is made without the customer present."""
    error_on_requires_action: bool = False
    """Fail the attempt instead of asking the customer to authenticate."""
    psp_payment_method: str | None = None
    """The test card behind payment_method: what a PSP is sent."""
    payment_method_set_up: bool = False
    """The payment method was set up for off-session use (a SetupIntent or an earlier save)."""

    def attributes(self) -> dict[str, str]:
        """What is stored beside the object for conditions and list filters."""
        attrs = {"status": self.status.value}
        if self.customer:
            attrs["customer"] = self.customer
        if self.routed_connector:
            attrs["connector"] = self.routed_connector
        if self.payment_method_type:
            attrs["payment_method_type"] = self.payment_method_type
        return attrs

    @property
    def routed_connector(self) -> str | None:
        """The connector a payment is listed under: the one holding its authorization, else
        the one that answered its latest attempt, else (no connector answered) routing's first
        choice; None before the first confirm."""
        return (
            self.connector or self.answered_by or (self.candidates[0] if self.candidates else None)
        )

    @property
    def captures_automatically(self) -> bool:
        """Whether an authorization is captured at once: payment_method_options[card]
        [capture_method] decides for cards, capture_method otherwise."""
        method = self.capture_method
        if self.card_capture_method is not None and self.payment_method_type == "card":
            method = self.card_capture_method
        return method == CaptureMethod.AUTOMATIC

    @property
    def payment_method_type(self) -> str | None:
        card = describe(self.psp_payment_method or self.payment_method or "")
        return card.type if card else None

    def search_view(self) -> dict[str, Any]:
        """What a search matches: the API object and PayFlow's own searchable fields."""
        return {
            **self.to_api(),
            "connector": self.routed_connector,
            "payment_method_type": self.payment_method_type,
        }

    def to_api(self) -> dict[str, Any]:
        """The Stripe-shaped object."""
        return {
            "id": self.id,
            "object": "payment_intent",
            "amount": self.amount,
            "amount_capturable": self.amount_capturable,
            "amount_received": self.amount_received,
            "application": None,
            "application_fee_amount": None,
            "automatic_payment_methods": (
                {"allow_redirects": "always", "enabled": True}
                if self.automatic_payment_methods
                else None
            ),
            "canceled_at": self.canceled_at,
            "cancellation_reason": (
                self.cancellation_reason.value if self.cancellation_reason else None
            ),
            "capture_method": self.capture_method.value,
            "client_secret": self.client_secret,
            "confirmation_method": "automatic",
            "created": self.created,
            "currency": self.currency,
            "customer": self.customer,
            "description": self.description,
            "last_payment_error": (
                self.last_payment_error.to_api() if self.last_payment_error else None
            ),
            "latest_charge": self.latest_charge,
            "livemode": False,
            "metadata": dict(self.metadata),
            "next_action": self.next_action,
            "on_behalf_of": None,
            "payment_method": self.payment_method,
            "payment_method_options": (
                {"card": {"capture_method": self.card_capture_method.value}}
                if self.card_capture_method
                else {}
            ),
            "payment_method_types": list(self.payment_method_types),
            "processing": None,
            "receipt_email": self.receipt_email,
            "setup_future_usage": (
                self.setup_future_usage.value if self.setup_future_usage else None
            ),
            "shipping": shipping_api(self.shipping),
            "statement_descriptor": self.statement_descriptor,
            "statement_descriptor_suffix": self.statement_descriptor_suffix,
            "status": self.status.value,
            "transfer_data": None,
            "transfer_group": self.transfer_group,
        }


def _moved(pi: PaymentIntent, **changes: Any) -> PaymentIntent:
    """The next version of `pi`; refuses a status change the transition table forbids."""
    target = changes.get("status", pi.status)
    if target not in TRANSITIONS[pi.status] and target != pi.status:
        raise UnexpectedState(
            f"This PaymentIntent cannot move from {pi.status.value} to {target.value}."
        )
    return pi.model_copy(update={**changes, "version": pi.version + 1})


def require_status(pi: PaymentIntent, allowed: frozenset[PaymentIntentStatus], action: str) -> None:
    if pi.status not in allowed:
        statuses = ", ".join(sorted(s.value for s in allowed))
        raise UnexpectedState(
            f"This PaymentIntent could not be {action} because it has a status of "
            f"{pi.status.value}. Only a PaymentIntent with one of the following statuses may be "
            f"{action}: {statuses}.",
            extra={"payment_intent": pi.to_api()},
        )


def create(
    *,
    id: str,
    merchant_id: str,
    amount: int,
    currency: str,
    created: int,
    client_secret: str,
    capture_method: CaptureMethod = CaptureMethod.AUTOMATIC,
    payment_method: str | None = None,
    payment_method_types: list[str] | None = None,
    description: str | None = None,
    metadata: dict[str, str] | None = None,
    options: dict[str, Any] | None = None,
) -> PaymentIntent:
    """A new PaymentIntent: requires_confirmation if it has a payment method, else
    requires_payment_method. `options` are the other stored fields (customer, shipping...)."""
    return PaymentIntent(
        id=id,
        merchant_id=merchant_id,
        amount=amount,
        currency=currency,
        created=created,
        client_secret=client_secret,
        capture_method=capture_method,
        payment_method=payment_method,
        payment_method_types=payment_method_types or ["card"],
        description=description,
        metadata=merge_metadata({}, metadata),
        status=S.REQUIRES_CONFIRMATION if payment_method else S.REQUIRES_PAYMENT_METHOD,
        version=1,
        **(options or {}),
    )


def update(pi: PaymentIntent, changes: dict[str, Any]) -> PaymentIntent:
    """Apply a merchant's update. Metadata and description may change in any status; the
    fields of PRE_CONFIRMATION_FIELDS only while the PaymentIntent awaits confirmation."""
    restricted = PRE_CONFIRMATION_FIELDS.intersection(changes)
    if restricted:
        require_status(pi, UPDATABLE, "updated")
    fields: dict[str, Any] = {k: v for k, v in changes.items() if k != "metadata"}
    if "metadata" in changes:
        # An explicit empty metadata (`metadata=` in a form) clears every key, as in Stripe.
        update = changes["metadata"]
        fields["metadata"] = {} if update is None else merge_metadata(pi.metadata, update)
    fields = _typed(fields)
    if fields.get("payment_method") and pi.status == S.REQUIRES_PAYMENT_METHOD:
        fields["status"] = S.REQUIRES_CONFIRMATION
    return _moved(pi, **fields)


def prepare_confirm(
    pi: PaymentIntent,
    *,
    payment_method: str | None,
    capture_method: CaptureMethod | None,
    options: dict[str, Any] | None = None,
) -> PaymentIntent:
    """Check that `pi` may be confirmed and fold in the confirm call's parameters
    (`options`: the other fields a confirm may set, such as return_url or off_session).

    The result is not stored: it is what the PSP attempt is made for.
    """
    require_status(pi, CONFIRMABLE, "confirmed")
    method = payment_method or pi.payment_method
    if not method:
        raise UnexpectedState(
            "You cannot confirm this PaymentIntent because it's missing a payment method. "
            "Update it with a payment_method or pass one to confirm.",
            param="payment_method",
        )
    return pi.model_copy(
        update={
            "payment_method": method,
            "capture_method": capture_method or pi.capture_method,
            "attempt_count": pi.attempt_count + 1,
            "off_session": False,
            "error_on_requires_action": False,
            **_typed(options or {}),
        }
    )


def _typed(fields: dict[str, Any]) -> dict[str, Any]:
    """Parameters as the model's own types (model_copy does not convert a hash)."""
    if isinstance(fields.get("shipping"), dict):
        return {**fields, "shipping": Shipping.model_validate(fields["shipping"])}
    return fields


def processing(pi: PaymentIntent, candidates: list[str]) -> PaymentIntent:
    """Confirmed and handed to the orchestration, which tries `candidates` in order."""
    return _moved(
        pi,
        status=S.PROCESSING,
        candidates=list(candidates),
        # A new attempt: the previous one's answer no longer says where the payment is.
        answered_by=None,
        last_payment_error=None,
        next_action=None,
    )


def workflow_input(pi: PaymentIntent) -> dict[str, Any]:
    """What the payment state machine runs on: derived from the stored PaymentIntent only, so
    whoever starts the execution (the API, or recovery) starts the very same one."""
    return {
        "payment_intent_id": pi.id,
        "merchant_id": pi.merchant_id,
        "attempt": pi.attempt_count,
        "amount": pi.amount,
        "currency": pi.currency,
        "payment_method": pi.psp_payment_method or pi.payment_method,
        "capture": pi.captures_automatically,
        "off_session": pi.off_session,
        "set_up": pi.payment_method_set_up,
        "candidates": list(pi.candidates),
        "count": len(pi.candidates),
        "index": 0,
    }


def execution_name(pi: PaymentIntent) -> str:
    """One execution per (PaymentIntent, attempt): a repeated start finds the same one."""
    return f"{pi.id}-attempt-{pi.attempt_count}"


def psp_idempotency_key(payment_intent_id: str, attempt: int, connector: str) -> str:
    """Retries of one attempt at one connector share this key, so the PSP charges once."""
    return f"{payment_intent_id}:{attempt}:{connector}"


def authorized(
    pi: PaymentIntent, *, connector: str, psp_reference: str, charge_id: str
) -> PaymentIntent:
    """The PSP authorized the attempt; automatic capture means it captured as well."""
    common = {
        "connector": connector,
        "psp_reference": psp_reference,
        "latest_charge": charge_id,
        "last_payment_error": None,
        "next_action": None,
    }
    if not pi.captures_automatically:
        return _moved(pi, status=S.REQUIRES_CAPTURE, amount_capturable=pi.amount, **common)
    return _moved(pi, status=S.SUCCEEDED, amount_received=pi.amount, amount_capturable=0, **common)


CUSTOMER_ACTION_TYPES = frozenset(
    {"upi_handle_redirect_or_display_qr_code", "upi_await_notification"}
)
"""next_action types the customer completes in their UPI app, never by a redirect."""


def requires_action(
    pi: PaymentIntent, *, connector: str, psp_reference: str, next_action: dict[str, Any]
) -> PaymentIntent:
    """The PSP wants the customer to authenticate (or approve, in a UPI app or a wallet)
    before it authorizes. With a return_url a 3-D Secure customer is sent to the
    authentication step and back, as Stripe's redirect does; a PSP's own redirect (a wallet's
    page) brings them back to it too. A UPI next_action stays as the PSP gave it."""
    kind = next_action.get("type")
    waits_for_customer = kind in CUSTOMER_ACTION_TYPES or str(
        (next_action.get("redirect_to_url") or {}).get("url", "")
    ).endswith("/customer_action")
    if pi.return_url and not waits_for_customer:
        next_action = {
            "type": "redirect_to_url",
            "redirect_to_url": {
                "return_url": pi.return_url,
                "url": f"/v1/sandbox/payment_intents/{pi.id}/authenticate",
            },
        }
    elif kind == "redirect_to_url" and not next_action["redirect_to_url"].get("return_url"):
        # The wallet's page sends the customer back where the merchant asked.
        redirect = {**next_action["redirect_to_url"], "return_url": pi.return_url}
        next_action = {**next_action, "redirect_to_url": redirect}
    return _moved(
        pi,
        status=S.REQUIRES_ACTION,
        connector=connector,
        psp_reference=psp_reference,
        next_action=next_action,
        last_payment_error=None,
    )


def authentication_required(pi: PaymentIntent, charge_id: str | None) -> PaymentError:
    """Stripe's decline for a payment that needs the customer while they are not there."""
    return PaymentError(
        type="card_error",
        code="authentication_required",
        decline_code="authentication_required",
        message="Your card was declined. This transaction requires authentication.",
        charge=charge_id or None,
        payment_method=pi.payment_method,
    )


def declined(pi: PaymentIntent, error: PaymentError) -> PaymentIntent:
    """The attempt failed for good: back to requires_payment_method, as Stripe does. A decline
    the PSP gave a charge for is the PaymentIntent's latest charge (a failed one)."""
    return _moved(
        pi,
        status=S.REQUIRES_PAYMENT_METHOD,
        latest_charge=error.charge or pi.latest_charge,
        last_payment_error=error,
        next_action=None,
        connector=None,
        psp_reference=None,
    )


def check_capture(pi: PaymentIntent, amount_to_capture: int | None) -> int:
    """The amount a capture would take; refuses an illegal capture."""
    require_status(pi, CAPTURABLE, "captured")
    amount = pi.amount_capturable if amount_to_capture is None else amount_to_capture
    if amount > pi.amount_capturable:
        raise ParameterInvalid(
            f"The amount to capture ({amount}) is greater than the amount capturable "
            f"({pi.amount_capturable}).",
            param="amount_to_capture",
            code="amount_too_large",
        )
    return amount


def captured(pi: PaymentIntent, amount: int, metadata: dict[str, str] | None) -> PaymentIntent:
    """Funds captured; an uncaptured remainder is released, as Stripe does."""
    return _moved(
        pi,
        status=S.SUCCEEDED,
        amount_received=amount,
        amount_capturable=0,
        metadata=merge_metadata(pi.metadata, metadata),
    )


def check_cancel(pi: PaymentIntent) -> None:
    """Refuses a cancel from a status Stripe does not cancel from."""
    require_status(pi, CANCELABLE, "canceled")


def canceled(
    pi: PaymentIntent, reason: CancellationReason | None, canceled_at: int
) -> PaymentIntent:
    """Canceled; a held authorization has been released by the caller."""
    return _moved(
        pi,
        status=S.CANCELED,
        cancellation_reason=reason,
        canceled_at=canceled_at,
        amount_capturable=0,
        next_action=None,
    )


EVENT_TYPES: dict[PaymentIntentStatus, str] = {
    S.REQUIRES_ACTION: "payment_intent.requires_action",
    S.PROCESSING: "payment_intent.processing",
    S.REQUIRES_CAPTURE: "payment_intent.amount_capturable_updated",
    S.SUCCEEDED: "payment_intent.succeeded",
    S.CANCELED: "payment_intent.canceled",
}


def event_type_for(before: PaymentIntent | None, after: PaymentIntent) -> str | None:
    """The event a change announces: created, a status event, payment_failed, or none."""
    if before is None:
        return "payment_intent.created"
    failed_now = before.last_payment_error != after.last_payment_error or (
        before.status != after.status
    )
    if after.status == S.REQUIRES_PAYMENT_METHOD and after.last_payment_error and failed_now:
        return "payment_intent.payment_failed"
    if after.status != before.status:
        return EVENT_TYPES.get(after.status)
    return None
