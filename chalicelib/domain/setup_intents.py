"""The SetupIntent: saving a payment method for later, and the SetupAttempt each confirm makes.

Pure rules, no I/O. The service reads a SetupIntent (and its latest attempt), calls one of these
functions to get their next versions, and writes them on condition of the versions it read.
A confirm is decided by the test card's behaviour: a declining card fails with its decline
codes, a card that wants 3-D Secure on setup waits for the customer (requires_action), any
other card is set up at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

from chalicelib.domain.metadata import merge_metadata, updated_metadata
from chalicelib.domain.payment_methods import PaymentMethod, card_details
from chalicelib.domain.test_cards import TestBehaviour, describe
from chalicelib.errors import InvalidRequestError, ParameterInvalid, UnexpectedState


class SetupIntentStatus(StrEnum):
    """Stripe's six SetupIntent statuses."""

    REQUIRES_PAYMENT_METHOD = "requires_payment_method"
    """Created without a payment method, or the last one failed; give one and confirm."""
    REQUIRES_CONFIRMATION = "requires_confirmation"
    """Has a payment method; waits for confirm."""
    REQUIRES_ACTION = "requires_action"
    """The customer must authenticate (3-D Secure) before the method is set up."""
    PROCESSING = "processing"
    """Stripe's state while a bank verifies a debit method; PayFlow's cards never stay here."""
    CANCELED = "canceled"
    """Terminal: abandoned before the method was set up."""
    SUCCEEDED = "succeeded"
    """Terminal: the method is set up (and saved to the customer, when there is one)."""


class Usage(StrEnum):
    """How the saved method will be used."""

    OFF_SESSION = "off_session"
    """Charged while the customer is away (Stripe's default)."""
    ON_SESSION = "on_session"
    """Charged only while the customer is in the checkout."""


class SetupCancellationReason(StrEnum):
    """The reasons Stripe takes when a SetupIntent is canceled."""

    ABANDONED = "abandoned"
    DUPLICATE = "duplicate"
    REQUESTED_BY_CUSTOMER = "requested_by_customer"


class SetupAttemptStatus(StrEnum):
    """Where one confirm attempt stands."""

    REQUIRES_ACTION = "requires_action"
    """Waits for the customer's 3-D Secure step."""
    SUCCEEDED = "succeeded"
    """The method was set up."""
    FAILED = "failed"
    """Declined, or the customer failed authentication."""
    ABANDONED = "abandoned"
    """Left in requires_action: the SetupIntent was canceled or confirmed again."""


S = SetupIntentStatus

TRANSITIONS: dict[SetupIntentStatus, frozenset[SetupIntentStatus]] = {
    S.REQUIRES_PAYMENT_METHOD: frozenset(
        {S.REQUIRES_CONFIRMATION, S.REQUIRES_ACTION, S.PROCESSING, S.SUCCEEDED, S.CANCELED}
    ),
    S.REQUIRES_CONFIRMATION: frozenset(
        {
            S.REQUIRES_PAYMENT_METHOD,
            S.REQUIRES_ACTION,
            S.PROCESSING,
            S.SUCCEEDED,
            S.CANCELED,
        }
    ),
    S.REQUIRES_ACTION: frozenset(
        {
            S.REQUIRES_PAYMENT_METHOD,
            S.REQUIRES_CONFIRMATION,
            S.PROCESSING,
            S.SUCCEEDED,
            S.CANCELED,
        }
    ),
    S.PROCESSING: frozenset({S.REQUIRES_PAYMENT_METHOD, S.SUCCEEDED}),
    S.SUCCEEDED: frozenset(),
    S.CANCELED: frozenset(),
}
"""Every legal move from each status (a status may also stay what it is)."""

OPEN = frozenset({S.REQUIRES_PAYMENT_METHOD, S.REQUIRES_CONFIRMATION, S.REQUIRES_ACTION})
"""Confirmable, cancelable, and open to a new customer or payment method."""

AUTOMATIC_TYPES = ["card", "upi"]
"""What `automatic_payment_methods[enabled]` offers: every family PayFlow can set up."""

SETUP_NEEDS_3DS = frozenset({TestBehaviour.AUTHENTICATE, TestBehaviour.AUTHENTICATE_UNLESS_SET_UP})

AUTHENTICATION_FAILED = (
    "The provided payment method has failed authentication. Provide a new payment method to "
    "attempt to fulfill this SetupIntent again."
)


class SetupError(BaseModel):
    """Why the last attempt failed, as Stripe's `last_setup_error` and `setup_error`."""

    type: str
    code: str
    message: str
    decline_code: str | None = None
    payment_method: dict[str, Any] | None = None
    """The PaymentMethod as it was when it failed (Stripe embeds the whole object)."""

    def to_api(self) -> dict[str, Any]:
        # Stripe's api_errors fields are absent rather than null when they do not apply.
        return {k: v for k, v in self.model_dump().items() if v is not None}


class AutomaticPaymentMethods(BaseModel):
    """`automatic_payment_methods`: the methods offered come from the account, not the call."""

    enabled: bool
    allow_redirects: str = "always"


class SetupAttempt(BaseModel):
    """One confirm of a SetupIntent, with the card it tried and how that went."""

    id: str
    merchant_id: str
    setup_intent: str
    created: int
    status: SetupAttemptStatus
    usage: Usage
    payment_method: str
    card: str
    """The test card the method stands for: what `payment_method_details` describes."""
    customer: str | None = None
    setup_error: SetupError | None = None
    three_d_secure: dict[str, Any] | None = None
    version: int = 1

    def to_api(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "setup_attempt",
            "application": None,
            "attach_to_self": False,
            "created": self.created,
            "customer": self.customer,
            "customer_account": None,
            "flow_directions": None,
            "livemode": False,
            "on_behalf_of": None,
            "payment_method": self.payment_method,
            "payment_method_details": self._details(),
            "setup_error": self.setup_error.to_api() if self.setup_error else None,
            "setup_intent": self.setup_intent,
            "status": self.status.value,
            "usage": self.usage.value,
        }

    def _details(self) -> dict[str, Any]:
        card = describe(self.card)
        assert card is not None, "an attempt is only ever made with a known test card"
        if card.type == "upi":
            return {"type": "upi", "upi": {}}
        full = card_details(card)
        return {
            "type": "card",
            "card": {
                "brand": full["brand"],
                "checks": full["checks"],
                "country": full["country"],
                "exp_month": full["exp_month"],
                "exp_year": full["exp_year"],
                "fingerprint": full["fingerprint"],
                "funding": full["funding"],
                "last4": full["last4"],
                "network": full["brand"],
                "three_d_secure": self.three_d_secure,
                "wallet": full["wallet"],
            },
        }


class SetupIntent(BaseModel):
    """A SetupIntent as stored: Stripe's fields plus the version writes are conditional on."""

    id: str
    merchant_id: str
    created: int
    client_secret: str
    status: SetupIntentStatus
    usage: Usage = Usage.OFF_SESSION
    customer: str | None = None
    payment_method: str | None = None
    payment_method_types: list[str] = Field(default_factory=lambda: ["card"])
    types_chosen: bool = False
    """Whether the caller listed the types (shown as `allowed_payment_method_types`)."""
    automatic_payment_methods: AutomaticPaymentMethods | None = None
    description: str | None = None
    metadata: dict[str, str] = Field(default_factory=dict)
    last_setup_error: SetupError | None = None
    latest_attempt: str | None = None
    next_action: dict[str, Any] | None = None
    cancellation_reason: SetupCancellationReason | None = None
    version: int = 1

    def to_api(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "setup_intent",
            "allowed_payment_method_types": (
                list(self.payment_method_types) if self.types_chosen else None
            ),
            "application": None,
            "automatic_payment_methods": (
                self.automatic_payment_methods.model_dump()
                if self.automatic_payment_methods
                else None
            ),
            "cancellation_reason": (
                self.cancellation_reason.value if self.cancellation_reason else None
            ),
            "client_secret": self.client_secret,
            "created": self.created,
            "customer": self.customer,
            "customer_account": None,
            "description": self.description,
            "excluded_payment_method_types": None,
            "flow_directions": None,
            "last_setup_error": self.last_setup_error.to_api() if self.last_setup_error else None,
            "latest_attempt": self.latest_attempt,
            "livemode": False,
            "mandate": None,
            "metadata": dict(self.metadata),
            "next_action": self.next_action,
            "on_behalf_of": None,
            "payment_method": self.payment_method,
            "payment_method_configuration_details": None,
            "payment_method_options": (
                {
                    "card": {
                        "mandate_options": None,
                        "network": None,
                        "request_three_d_secure": "automatic",
                    }
                }
                if "card" in self.payment_method_types
                else {}
            ),
            "payment_method_types": list(self.payment_method_types),
            "single_use_mandate": None,
            "status": self.status.value,
            "usage": self.usage.value,
        }


def _moved(si: SetupIntent, **changes: Any) -> SetupIntent:
    """The next version of `si`; refuses a status change the transition table forbids."""
    target = changes.get("status", si.status)
    if target != si.status and target not in TRANSITIONS[si.status]:
        raise UnexpectedState(
            f"This SetupIntent cannot move from {si.status.value} to {target.value}.",
            code="setup_intent_unexpected_state",
        )
    return si.model_copy(update={**changes, "version": si.version + 1})


_DONE = {"cancel": "canceled", "confirm": "confirmed"}
_OPEN_LIST = ", ".join(s.value for s in S if s in OPEN)


def require_open(si: SetupIntent, action: str) -> None:
    """Stripe's refusal to confirm or cancel a SetupIntent that is finished."""
    if si.status not in OPEN:
        raise _unexpected(
            si,
            f"You cannot {action} this SetupIntent because it has a status of "
            f"{si.status.value}. Only a SetupIntent with one of the following statuses may be "
            f"{_DONE[action]}: {_OPEN_LIST}.",
        )


def _require_updatable(si: SetupIntent, field: str) -> None:
    if si.status not in OPEN:
        raise _unexpected(
            si,
            f"This SetupIntent's {field} could not be updated because it has a status of "
            f"{si.status.value}. You may only update the {field} of a SetupIntent with one of "
            f"the following statuses: {_OPEN_LIST}.",
            param=field,
        )


def _unexpected(si: SetupIntent, message: str, param: str | None = None) -> UnexpectedState:
    return UnexpectedState(
        message,
        code="setup_intent_unexpected_state",
        param=param,
        extra={"setup_intent": si.to_api()},
    )


def create(
    *,
    id: str,
    merchant_id: str,
    created: int,
    client_secret: str,
    usage: Usage,
    customer: str | None,
    payment_method: str | None,
    payment_method_types: list[str] | None,
    automatic: AutomaticPaymentMethods | None,
    description: str | None,
    metadata: dict[str, str] | None,
) -> SetupIntent:
    """A new SetupIntent (not confirmed yet) from the create call's parameters."""
    if payment_method_types and automatic is not None and automatic.enabled:
        raise InvalidRequestError(
            "You may only specify one of these parameters: automatic_payment_methods, "
            "payment_method_types.",
            param="automatic_payment_methods",
        )
    use_automatic = automatic is not None and automatic.enabled
    return SetupIntent(
        id=id,
        merchant_id=merchant_id,
        created=created,
        client_secret=client_secret,
        status=S.REQUIRES_CONFIRMATION if payment_method else S.REQUIRES_PAYMENT_METHOD,
        usage=usage,
        customer=customer,
        payment_method=payment_method,
        payment_method_types=(
            list(AUTOMATIC_TYPES) if use_automatic else list(payment_method_types or ["card"])
        ),
        types_chosen=bool(payment_method_types),
        automatic_payment_methods=automatic if use_automatic else None,
        description=description or None,
        metadata=merge_metadata({}, metadata),
    )


def update(si: SetupIntent, changes: dict[str, Any]) -> SetupIntent:
    """Stripe's update: description and metadata at any time; the customer and the payment
    method only while the SetupIntent is open (a new method waits for confirm again)."""
    fields: dict[str, Any] = {}
    if "description" in changes:
        fields["description"] = changes["description"] or None
    if "metadata" in changes:
        fields["metadata"] = updated_metadata(si.metadata, changes["metadata"])
    if changes.get("customer") is not None and changes["customer"] != si.customer:
        _require_updatable(si, "customer")
        fields["customer"] = changes["customer"]
    if changes.get("payment_method") is not None and changes["payment_method"] != si.payment_method:
        _require_updatable(si, "payment_method")
        fields.update(
            payment_method=changes["payment_method"],
            status=S.REQUIRES_CONFIRMATION,
            next_action=None,
        )
    return _moved(si, **fields)


def check_type(si: SetupIntent, pm: PaymentMethod) -> None:
    """A method of a type the SetupIntent does not take is refused, as Stripe does."""
    if pm.type not in si.payment_method_types:
        accepted = ", ".join(si.payment_method_types)
        raise ParameterInvalid(
            f"The payment method type provided: {pm.type} is invalid. This SetupIntent is "
            f"configured to accept the following payment method types: {accepted}.",
            param="payment_method",
        )


def check_confirm(si: SetupIntent, payment_method: str | None) -> str:
    """The payment method a confirm uses (the one sent, or the one the SetupIntent has)."""
    require_open(si, "confirm")
    chosen = payment_method or si.payment_method
    if not chosen:
        raise InvalidRequestError(
            "You cannot confirm this SetupIntent because it's missing a payment method. You "
            "can either update the SetupIntent with a payment method and then confirm it "
            "again, or confirm it again directly with a payment method.",
            code="setup_intent_unexpected_state",
            param="payment_method",
        )
    return chosen


@dataclass(frozen=True)
class Handover:
    """How a confirm that needs 3-D Secure hands the customer over: `return_url` for a
    redirect back to the merchant, `use_stripe_sdk` when Stripe.js runs the step itself."""

    return_url: str | None = None
    use_stripe_sdk: bool = False

    def check_with(self, confirm: bool) -> None:
        """On create, both only mean something with `confirm=true`: refused otherwise."""
        if confirm:
            return
        for param, value in (
            ("return_url", self.return_url),
            ("use_stripe_sdk", self.use_stripe_sdk),
        ):
            if value:
                raise InvalidRequestError(
                    f"The parameter `{param}` cannot be passed when creating a SetupIntent "
                    "unless `confirm` is set to true.",
                    param=param,
                )


def attempted(
    si: SetupIntent,
    pm: PaymentMethod,
    *,
    attempt_id: str,
    created: int,
    handover: Handover,
    action_url: str,
) -> tuple[SetupIntent, SetupAttempt]:
    """A confirm with `pm`: the SetupIntent and the attempt as the test card decides."""
    card = pm.test_card
    attempt = SetupAttempt(
        id=attempt_id,
        merchant_id=si.merchant_id,
        setup_intent=si.id,
        created=created,
        status=SetupAttemptStatus.SUCCEEDED,
        usage=si.usage,
        payment_method=pm.id,
        card=card.id,
        customer=si.customer,
    )
    moved: dict[str, Any] = {
        "payment_method": pm.id,
        "latest_attempt": attempt_id,
        "last_setup_error": None,
        "next_action": None,
    }
    if card.behaviour == TestBehaviour.DECLINE:
        error = SetupError(
            type="card_error",
            code=card.code or "card_declined",
            decline_code=card.decline_code,
            message=card.message or "Your card was declined.",
            payment_method=pm.to_api(),
        )
        attempt = attempt.model_copy(
            update={"status": SetupAttemptStatus.FAILED, "setup_error": error}
        )
        # Stripe takes a failed method off the SetupIntent: the error still names it.
        moved.update(status=S.REQUIRES_PAYMENT_METHOD, payment_method=None, last_setup_error=error)
    elif card.behaviour in SETUP_NEEDS_3DS:
        attempt = attempt.model_copy(update={"status": SetupAttemptStatus.REQUIRES_ACTION})
        moved.update(
            status=S.REQUIRES_ACTION,
            next_action=_next_action(attempt_id, handover, action_url),
        )
    else:
        moved.update(status=S.SUCCEEDED)
    return _moved(si, **moved), attempt


def _next_action(attempt_id: str, handover: Handover, action_url: str) -> dict[str, Any]:
    """Stripe's `next_action` for 3-D Secure: a redirect when the caller gave a return_url
    (and did not ask for Stripe.js), else the step Stripe.js handles itself."""
    if handover.return_url is not None and not handover.use_stripe_sdk:
        return {
            "type": "redirect_to_url",
            "redirect_to_url": {"return_url": handover.return_url, "url": action_url},
        }
    return {
        "type": "use_stripe_sdk",
        "use_stripe_sdk": {
            "type": "three_d_secure_redirect",
            "source": attempt_id,
            "stripe_js": action_url,
        },
    }


def authenticated(
    si: SetupIntent, attempt: SetupAttempt, pm: PaymentMethod, *, succeeded: bool
) -> tuple[SetupIntent, SetupAttempt]:
    """The customer's 3-D Secure step for the attempt in requires_action, passed or failed."""
    require_action(si)
    if attempt.status != SetupAttemptStatus.REQUIRES_ACTION:
        raise UnexpectedState(
            f"This SetupAttempt has a status of {attempt.status.value}; only one that "
            "requires_action can be authenticated.",
            code="setup_intent_unexpected_state",
        )
    secure = {
        "authentication_flow": "challenge",
        "result": "authenticated" if succeeded else "failed",
        "result_reason": None if succeeded else "rejected",
        "version": "2.2.0",
    }
    if succeeded:
        done = _attempt_moved(attempt, SetupAttemptStatus.SUCCEEDED, three_d_secure=secure)
        return _moved(si, status=S.SUCCEEDED, next_action=None), done
    error = SetupError(
        type="invalid_request_error",
        code="setup_intent_authentication_failure",
        message=AUTHENTICATION_FAILED,
        payment_method=pm.to_api(),
    )
    failed = _attempt_moved(
        attempt, SetupAttemptStatus.FAILED, three_d_secure=secure, setup_error=error
    )
    after = _moved(
        si,
        status=S.REQUIRES_PAYMENT_METHOD,
        payment_method=None,
        next_action=None,
        last_setup_error=error,
    )
    return after, failed


def _attempt_moved(
    attempt: SetupAttempt, status: SetupAttemptStatus, **changes: Any
) -> SetupAttempt:
    return attempt.model_copy(update={**changes, "status": status, "version": attempt.version + 1})


def require_action(si: SetupIntent) -> None:
    """Only a SetupIntent waiting for the customer can be authenticated."""
    if si.status != S.REQUIRES_ACTION:
        raise UnexpectedState(
            f"This SetupIntent has a status of {si.status.value}; only one that requires_action "
            "can be authenticated.",
            code="setup_intent_unexpected_state",
        )


def saved_as(
    si: SetupIntent, attempt: SetupAttempt, pm_id: str
) -> tuple[SetupIntent, SetupAttempt]:
    """Both now name the saved copy a test card's id became (the version already moved)."""
    return (
        si.model_copy(update={"payment_method": pm_id}),
        attempt.model_copy(update={"payment_method": pm_id}),
    )


def abandoned(attempt: SetupAttempt) -> SetupAttempt:
    """An attempt left waiting for the customer when the SetupIntent moved on."""
    return _attempt_moved(attempt, SetupAttemptStatus.ABANDONED)


def canceled(si: SetupIntent, reason: SetupCancellationReason | None) -> SetupIntent:
    require_open(si, "cancel")
    return _moved(si, status=S.CANCELED, cancellation_reason=reason, next_action=None)


EVENT_TYPES = (
    "setup_intent.created",
    "setup_intent.requires_action",
    "setup_intent.succeeded",
    "setup_intent.setup_failed",
    "setup_intent.canceled",
)
"""Every event a SetupIntent announces (Stripe has no setup_intent.updated)."""


def event_type_for(before: SetupIntent | None, after: SetupIntent) -> str | None:
    """The event Stripe sends for a change, or None when the change has none of its own."""
    if before is None:
        return "setup_intent.created"
    if after.status == S.SUCCEEDED and before.status != S.SUCCEEDED:
        return "setup_intent.succeeded"
    if after.status == S.CANCELED and before.status != S.CANCELED:
        return "setup_intent.canceled"
    if after.status == S.REQUIRES_ACTION and after.latest_attempt != before.latest_attempt:
        return "setup_intent.requires_action"
    failed_now = (
        after.last_setup_error != before.last_setup_error
        or after.latest_attempt != before.latest_attempt
    )
    if after.last_setup_error is not None and failed_now:
        return "setup_intent.setup_failed"
    return None
