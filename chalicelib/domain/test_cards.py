"""Stripe's test cards: what each one is, and how a test PSP answers it.

Routing reads a card's type and BIN, the simulator the answer Stripe gives for it, and the
PaymentMethods API the card details Stripe shows (brand, last4, funding...). A card is named by
its test PaymentMethod id (`pm_card_visa`) or its test token (`tok_visa`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import StrEnum


class TestBehaviour(StrEnum):
    """How a PSP in test mode answers a payment method."""

    SUCCEED = "succeed"
    """Authorized (and captured when asked)."""
    DECLINE = "decline"
    """Declined with the method's decline codes."""
    AUTHENTICATE = "authenticate"
    """3-D Secure required on every payment, on or off session (Stripe's 4000 0027 6000 3184)."""
    AUTHENTICATE_UNLESS_SET_UP = "authenticate_unless_set_up"
    """3-D Secure required on session and when set up; off-session payments of a card set up for
    future use go through (Stripe's 4000 0025 0000 3155)."""
    AWAIT_CUSTOMER = "await_customer"
    """The customer approves or refuses away from PayFlow (a UPI app, a wallet's page); the
    PSP's webhook says which, or that they did nothing until the request expired."""


class Funding(StrEnum):
    """What kind of account a card draws on."""

    CREDIT = "credit"
    DEBIT = "debit"
    PREPAID = "prepaid"


@dataclass(frozen=True)
class TestCard:
    id: str
    type: str
    brand: str
    bin: str
    behaviour: TestBehaviour = TestBehaviour.SUCCEED
    code: str | None = None
    decline_code: str | None = None
    message: str | None = None
    number: str = ""
    funding: Funding = Funding.CREDIT
    country: str = "US"

    @property
    def last4(self) -> str:
        return self.number[-4:]

    @property
    def fingerprint(self) -> str:
        """The same card gives the same fingerprint, as Stripe's does within an account."""
        return hashlib.sha256(f"payflow-card:{self.number or self.id}".encode()).hexdigest()[:16]

    @property
    def wallet(self) -> bool:
        return self.type == "wallet"


# Stripe's test cards expire in any future month; PayFlow shows one fixed date.
EXP_MONTH = 12
EXP_YEAR = 2034


def _card(pm: str, brand: str, number: str, funding: Funding = Funding.CREDIT) -> TestCard:
    return TestCard(pm, "card", brand, number[:6], number=number, funding=funding)


def _decline(pm: str, number: str, code: str, decline_code: str, message: str) -> TestCard:
    return TestCard(
        pm,
        "card",
        "visa",
        number[:6],
        TestBehaviour.DECLINE,
        code,
        decline_code,
        message,
        number=number,
    )


_DECLINED = "Your card was declined."

TEST_PAYMENT_METHODS: dict[str, TestCard] = {
    pm.id: pm
    for pm in [
        _card("pm_card_visa", "visa", "4242424242424242"),
        _card("pm_card_visa_debit", "visa", "4000056655665556", Funding.DEBIT),
        _card("pm_card_mastercard", "mastercard", "5555555555554444"),
        _card("pm_card_mastercard_debit", "mastercard", "5200828282828210", Funding.DEBIT),
        _card("pm_card_mastercard_prepaid", "mastercard", "5105105105105100", Funding.PREPAID),
        _card("pm_card_amex", "amex", "378282246310005"),
        _card("pm_card_discover", "discover", "6011111111111117"),
        _card("pm_card_diners", "diners", "3056930009020004"),
        _card("pm_card_jcb", "jcb", "3566002020360505"),
        _card("pm_card_unionpay", "unionpay", "6200000000000005"),
        _decline(
            "pm_card_chargeDeclined",
            "4000000000000002",
            "card_declined",
            "generic_decline",
            _DECLINED,
        ),
        _decline(
            "pm_card_chargeDeclinedInsufficientFunds",
            "4000000000009995",
            "card_declined",
            "insufficient_funds",
            "Your card has insufficient funds.",
        ),
        _decline(
            "pm_card_chargeDeclinedFraudulent",
            "4100000000000019",
            "card_declined",
            "fraudulent",
            _DECLINED,
        ),
        _decline(
            "pm_card_chargeDeclinedLostCard",
            "4000000000009987",
            "card_declined",
            "lost_card",
            _DECLINED,
        ),
        _decline(
            "pm_card_chargeDeclinedStolenCard",
            "4000000000009979",
            "card_declined",
            "stolen_card",
            _DECLINED,
        ),
        _decline(
            "pm_card_chargeDeclinedExpiredCard",
            "4000000000000069",
            "expired_card",
            "expired_card",
            "Your card has expired.",
        ),
        _decline(
            "pm_card_chargeDeclinedIncorrectCvc",
            "4000000000000127",
            "incorrect_cvc",
            "incorrect_cvc",
            "Your card's security code is incorrect.",
        ),
        _decline(
            "pm_card_chargeDeclinedProcessingError",
            "4000000000000119",
            "processing_error",
            "processing_error",
            "An error occurred while processing your card. Try again in a little bit.",
        ),
        TestCard(
            "pm_card_authenticationRequired",
            "card",
            "visa",
            "400000",
            TestBehaviour.AUTHENTICATE,
            number="4000002760003184",
        ),
        TestCard(
            "pm_card_authenticationRequiredOnSetup",
            "card",
            "visa",
            "400000",
            TestBehaviour.AUTHENTICATE_UNLESS_SET_UP,
            number="4000002500003155",
        ),
        TestCard(
            "pm_card_threeDSecure2Required",
            "card",
            "visa",
            "400000",
            TestBehaviour.AUTHENTICATE,
            number="4000000000003220",
        ),
        TestCard(
            "pm_card_refundFail",
            "card",
            "visa",
            "400000",
            TestBehaviour.SUCCEED,
            code="expired_or_canceled_card",
            number="4000000000005126",
        ),
        TestCard("pm_upi_success", "upi", "upi", "", TestBehaviour.SUCCEED),
        TestCard("pm_wallet_success", "wallet", "wallet", "", TestBehaviour.SUCCEED),
        # What `type=upi` PaymentMethods charge: with upi[vpa] a collect request, else an
        # intent (QR code and deep link); and the wallet's approval page, and its decline.
        TestCard("pm_upi_intent", "upi", "upi", "", TestBehaviour.AWAIT_CUSTOMER),
        TestCard("pm_upi_collect", "upi", "upi", "", TestBehaviour.AWAIT_CUSTOMER),
        TestCard("pm_wallet", "wallet", "wallet", "", TestBehaviour.AWAIT_CUSTOMER),
        TestCard(
            "pm_wallet_declined",
            "wallet",
            "wallet",
            "",
            TestBehaviour.DECLINE,
            code="payment_method_provider_decline",
            decline_code="insufficient_funds",
            message="The wallet declined the payment: its balance does not cover it.",
        ),
    ]
}

TOKEN_PREFIX = "tok_"
_CARD_PREFIX = "pm_card_"


TEST_TOKENS: tuple[str, ...] = tuple(
    sorted(
        [
            TOKEN_PREFIX + pm.removeprefix(_CARD_PREFIX)
            for pm in TEST_PAYMENT_METHODS
            if pm.startswith(_CARD_PREFIX)
        ]
        + [pm for pm in TEST_PAYMENT_METHODS if pm.startswith(_CARD_PREFIX)]
    )
)
"""What `card[token]` takes: every test card's token (`tok_visa`) and test id (`pm_card_visa`)."""


def describe(payment_method_id: str) -> TestCard | None:
    """The test card named by a test PaymentMethod id or test token, or None."""
    if payment_method_id.startswith(TOKEN_PREFIX):
        payment_method_id = _CARD_PREFIX + payment_method_id.removeprefix(TOKEN_PREFIX)
    return TEST_PAYMENT_METHODS.get(payment_method_id)


def is_test_id(payment_method_id: str) -> bool:
    """Whether the id names a test card itself rather than a PaymentMethod made from one."""
    return payment_method_id in TEST_PAYMENT_METHODS
