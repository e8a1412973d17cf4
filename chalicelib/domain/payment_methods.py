"""Stripe's test payment methods: what each one is, and how a test PSP answers it.

Both the simulator and routing read this table: routing needs the method's type and card BIN,
the simulator needs the answer Stripe gives for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class TestBehaviour(StrEnum):
    """How a PSP in test mode answers a payment method."""

    SUCCEED = "succeed"
    """Authorized (and captured when asked)."""
    DECLINE = "decline"
    """Declined with the method's decline codes."""
    AUTHENTICATE = "authenticate"
    """3-D Secure required before authorization."""


@dataclass(frozen=True)
class PaymentMethod:
    id: str
    type: str
    brand: str
    bin: str
    behaviour: TestBehaviour = TestBehaviour.SUCCEED
    code: str | None = None
    decline_code: str | None = None
    message: str | None = None


def _card(pm: str, brand: str, bin_: str) -> PaymentMethod:
    return PaymentMethod(pm, "card", brand, bin_)


def _decline(pm: str, code: str, decline_code: str, message: str) -> PaymentMethod:
    return PaymentMethod(
        pm, "card", "visa", "400000", TestBehaviour.DECLINE, code, decline_code, message
    )


_DECLINED = "Your card was declined."

TEST_PAYMENT_METHODS: dict[str, PaymentMethod] = {
    pm.id: pm
    for pm in [
        _card("pm_card_visa", "visa", "424242"),
        _card("pm_card_visa_debit", "visa", "400005"),
        _card("pm_card_mastercard", "mastercard", "555555"),
        _card("pm_card_mastercard_debit", "mastercard", "520082"),
        _card("pm_card_mastercard_prepaid", "mastercard", "510510"),
        _card("pm_card_amex", "amex", "378282"),
        _card("pm_card_discover", "discover", "601111"),
        _card("pm_card_diners", "diners", "305693"),
        _card("pm_card_jcb", "jcb", "353011"),
        _card("pm_card_unionpay", "unionpay", "620000"),
        _decline("pm_card_chargeDeclined", "card_declined", "generic_decline", _DECLINED),
        _decline(
            "pm_card_chargeDeclinedInsufficientFunds",
            "card_declined",
            "insufficient_funds",
            "Your card has insufficient funds.",
        ),
        _decline("pm_card_chargeDeclinedFraudulent", "card_declined", "fraudulent", _DECLINED),
        _decline("pm_card_chargeDeclinedLostCard", "card_declined", "lost_card", _DECLINED),
        _decline("pm_card_chargeDeclinedStolenCard", "card_declined", "stolen_card", _DECLINED),
        _decline(
            "pm_card_chargeDeclinedExpiredCard",
            "expired_card",
            "expired_card",
            "Your card has expired.",
        ),
        _decline(
            "pm_card_chargeDeclinedIncorrectCvc",
            "incorrect_cvc",
            "incorrect_cvc",
            "Your card's security code is incorrect.",
        ),
        _decline(
            "pm_card_chargeDeclinedProcessingError",
            "processing_error",
            "processing_error",
            "An error occurred while processing your card. Try again in a little bit.",
        ),
        PaymentMethod(
            "pm_card_authenticationRequired", "card", "visa", "400000", TestBehaviour.AUTHENTICATE
        ),
        PaymentMethod(
            "pm_card_threeDSecure2Required", "card", "visa", "400000", TestBehaviour.AUTHENTICATE
        ),
        PaymentMethod(
            "pm_card_refundFail",
            "card",
            "visa",
            "400000",
            TestBehaviour.SUCCEED,
            code="expired_or_canceled_card",
        ),
        PaymentMethod("pm_upi_success", "upi", "upi", "", TestBehaviour.SUCCEED),
        PaymentMethod("pm_wallet_success", "wallet", "wallet", "", TestBehaviour.SUCCEED),
    ]
}


def describe(payment_method_id: str) -> PaymentMethod | None:
    """The test payment method, or None for an id PayFlow does not know."""
    return TEST_PAYMENT_METHODS.get(payment_method_id)
