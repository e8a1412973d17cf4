"""Request parameters of the SetupIntent and SetupAttempt routes (shared types from params)."""

from __future__ import annotations

from typing import Literal

from chalicelib.api.params import (
    Boolean,
    ClientSecret,
    Identifier,
    ListParams,
    Metadata,
    Nested,
    Params,
    PaymentMethodTypes,
    Text,
    Url,
)
from chalicelib.domain.setup_intents import (
    AutomaticPaymentMethods,
    Handover,
    SetupCancellationReason,
    Usage,
)
from chalicelib.errors import InvalidRequestError


class AutomaticPaymentMethodsParams(Nested):
    enabled: Boolean
    allow_redirects: Literal["always", "never"] | None = None

    def model(self) -> AutomaticPaymentMethods:
        return AutomaticPaymentMethods(
            enabled=self.enabled, allow_redirects=self.allow_redirects or "always"
        )


class ConfirmingParams(Params):
    """The parameters of a call that may confirm, for the 3-D Secure step it may need."""

    return_url: Url | None = None
    use_stripe_sdk: Boolean = False

    def handover(self) -> Handover:
        return Handover(return_url=self.return_url, use_stripe_sdk=self.use_stripe_sdk)


class CreateSetupIntent(ConfirmingParams):
    customer: Identifier | None = None
    payment_method: Identifier | None = None
    usage: Usage = Usage.OFF_SESSION
    confirm: Boolean = False
    payment_method_types: PaymentMethodTypes | None = None
    allowed_payment_method_types: PaymentMethodTypes | None = None
    """What stripe-python 16 calls `payment_method_types` (API version 2026-07-29)."""
    automatic_payment_methods: AutomaticPaymentMethodsParams | None = None
    description: Text | None = None
    metadata: Metadata = None

    def types(self) -> list[str] | None:
        """The payment method types asked for, under either of Stripe's names."""
        if self.payment_method_types is not None and self.allowed_payment_method_types is not None:
            raise InvalidRequestError(
                "You may only specify one of these parameters: allowed_payment_method_types, "
                "payment_method_types.",
                param="allowed_payment_method_types",
            )
        chosen = self.allowed_payment_method_types or self.payment_method_types
        return [t.value for t in chosen] if chosen else None


class UpdateSetupIntent(Params):
    customer: Identifier | None = None
    payment_method: Identifier | None = None
    description: Text | None = None
    metadata: Metadata = None


class ConfirmSetupIntent(ConfirmingParams):
    payment_method: Identifier | None = None
    client_secret: ClientSecret | None = None


class CancelSetupIntent(Params):
    cancellation_reason: SetupCancellationReason | None = None


class ListSetupIntents(ListParams):
    customer: Identifier | None = None
    payment_method: Identifier | None = None


class ListSetupAttempts(ListParams):
    setup_intent: Identifier
