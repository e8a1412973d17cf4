"""The PaymentMethod: a card (or other method) a customer pays with, made from a test card.

Two kinds of id name one: a test card's own id (`pm_card_visa`), which stands for the card
itself and is never stored, and the id of a PaymentMethod made from a test token or test card
(`pm_...`), which is stored and can be attached to one customer. Both answer the same API.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

from chalicelib.domain.contact import BillingDetails
from chalicelib.domain.test_cards import EXP_MONTH, EXP_YEAR, TestCard, describe
from chalicelib.errors import InvalidRequestError

EVENT_TYPES = ("payment_method.attached", "payment_method.detached", "payment_method.updated")
"""What PaymentMethod changes announce."""

# Test cards are never created: they show this creation time (2020-01-01).
TEST_CARD_CREATED = 1577836800


class AllowRedisplay(StrEnum):
    """Whether a saved method may be shown to its customer again in a checkout."""

    ALWAYS = "always"
    LIMITED = "limited"
    UNSPECIFIED = "unspecified"


class PaymentMethod(BaseModel):
    """A PaymentMethod as stored (or as a test card stands for one)."""

    id: str
    merchant_id: str
    card: str
    """The test card (`pm_card_visa`) this method charges: what a PSP is sent."""
    created: int
    customer: str | None = None
    billing_details: BillingDetails = BillingDetails()
    metadata: dict[str, str] = Field(default_factory=dict)
    allow_redisplay: AllowRedisplay = AllowRedisplay.UNSPECIFIED
    set_up: bool = False
    """Authenticated for future off-session use (a SetupIntent or setup_future_usage did)."""
    exp_month: int | None = None
    exp_year: int | None = None
    """The expiry the customer typed (payflow.js); None for a test token: the fixed date."""
    vpa: str | None = None
    """A UPI method's virtual payment address (a collect request goes there); None for an
    intent, paid from whichever UPI app scans the QR code."""
    version: int = 1

    @property
    def test_card(self) -> TestCard:
        card = describe(self.card)
        assert card is not None, "a PaymentMethod is only ever made from a known test card"
        return card

    @property
    def type(self) -> str:
        return "upi" if self.test_card.type == "upi" else "card"

    def to_api(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": self.id,
            "object": "payment_method",
            "allow_redisplay": self.allow_redisplay.value,
            "billing_details": self.billing_details.to_api(),
            "created": self.created,
            "customer": self.customer,
            "livemode": False,
            "metadata": dict(self.metadata),
            "type": self.type,
        }
        if self.type == "card":
            body["card"] = card_details(self.test_card, self.exp_month, self.exp_year)
        elif self.card == "pm_upi_success":
            body["upi"] = {"vpa": "success@upi"}
        else:
            body["upi"] = {"vpa": self.vpa}
        return body


def card_details(
    card: TestCard, exp_month: int | None = None, exp_year: int | None = None
) -> dict[str, Any]:
    """A PaymentMethod's `card` hash for a test card (with the expiry typed, if any)."""
    return {
        "brand": _brand(card),
        "checks": {
            "address_line1_check": None,
            "address_postal_code_check": None,
            "cvc_check": "pass",
        },
        "country": card.country,
        "display_brand": _brand(card),
        "exp_month": exp_month or EXP_MONTH,
        "exp_year": exp_year or EXP_YEAR,
        "fingerprint": card.fingerprint,
        "funding": card.funding.value,
        "generated_from": None,
        "last4": card.last4 or "0000",
        "networks": {"available": [_brand(card)], "preferred": None},
        "regulated_status": "unregulated",
        "three_d_secure_usage": {"supported": True},
        "wallet": {"dynamic_last4": None, "google_pay": {}, "type": "google_pay"}
        if card.wallet
        else None,
    }


def charge_details(card: TestCard) -> dict[str, Any]:
    """A Charge's `payment_method_details` for a test card."""
    if card.type == "upi":
        return {"type": "upi", "upi": {"vpa": "success@upi"}}
    details = card_details(card)
    return {
        "type": "card",
        "card": {
            "amount_authorized": None,
            "authorization_code": None,
            "brand": details["brand"],
            "checks": details["checks"],
            "country": details["country"],
            "exp_month": details["exp_month"],
            "exp_year": details["exp_year"],
            "fingerprint": details["fingerprint"],
            "funding": details["funding"],
            "installments": None,
            "last4": details["last4"],
            "mandate": None,
            "network": details["brand"],
            "network_token": {"used": False},
            "network_transaction_id": None,
            "regulated_status": "unregulated",
            "three_d_secure": None,
            "wallet": details["wallet"],
        },
    }


def _brand(card: TestCard) -> str:
    return "visa" if card.wallet else card.brand


def from_test_card(merchant_id: str, card: TestCard) -> PaymentMethod:
    """The PaymentMethod a test card's own id stands for (never stored, owned by nobody)."""
    return PaymentMethod(
        id=card.id, merchant_id=merchant_id, card=card.id, created=TEST_CARD_CREATED
    )


def made_from(
    *,
    id: str,
    merchant_id: str,
    card: TestCard,
    created: int,
    billing_details: BillingDetails | None = None,
    metadata: dict[str, str] | None = None,
    allow_redisplay: AllowRedisplay | None = None,
    expiry: tuple[int, int] | None = None,
    vpa: str | None = None,
) -> PaymentMethod:
    """A new PaymentMethod for a test card or token, or for card details typed into
    payflow.js (`expiry`: their month and year), or a UPI method (`vpa` for a collect
    request) (`POST /v1/payment_methods`)."""
    return PaymentMethod(
        id=id,
        merchant_id=merchant_id,
        card=card.id,
        created=created,
        billing_details=billing_details or BillingDetails(),
        metadata=metadata or {},
        allow_redisplay=allow_redisplay or AllowRedisplay.UNSPECIFIED,
        exp_month=expiry[0] if expiry else None,
        exp_year=expiry[1] if expiry else None,
        vpa=vpa,
    )


VPA = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{1,255}@[A-Za-z][A-Za-z0-9]{1,63}")
"""A virtual payment address as NPCI forms them: a handle, `@`, the payment service's name."""


def checked_vpa(vpa: str) -> str:
    """`vpa` if it is a well-formed VPA; Stripe's error for a malformed one otherwise."""
    if not VPA.fullmatch(vpa):
        raise InvalidRequestError(
            f"'{vpa[:64]}' is not a valid UPI VPA: it looks like name@bank (for example "
            "customer@okaxis).",
            code="payment_method_invalid_parameter",
            param="upi[vpa]",
        )
    return vpa


def attached(pm: PaymentMethod, customer: str) -> PaymentMethod:
    """`pm` saved to `customer`; a method belongs to one customer at most, as in Stripe."""
    if pm.customer == customer:
        return pm
    if pm.customer is not None:
        raise InvalidRequestError(
            "The payment method you provided has already been attached to a customer.",
            code="payment_method_unexpected_state",
            param="payment_method",
        )
    return pm.model_copy(update={"customer": customer, "version": pm.version + 1})


def detached(pm: PaymentMethod) -> PaymentMethod:
    if pm.customer is None:
        raise InvalidRequestError(
            "The payment method you provided is not attached to a customer so detachment is "
            "impossible.",
            code="payment_method_unexpected_state",
        )
    return pm.model_copy(update={"customer": None, "set_up": False, "version": pm.version + 1})


def usable_by(pm: PaymentMethod, customer: str | None) -> None:
    """Stripe's rule: a saved method is used only with its own customer."""
    if pm.customer is not None and pm.customer != customer:
        if customer is None:
            message = (
                "The provided PaymentMethod belongs to a Customer, but you did not provide the "
                "Customer's id. Include the `customer` parameter with this request."
            )
        else:
            message = "The provided PaymentMethod belongs to another Customer."
        raise InvalidRequestError(
            message, code="payment_method_unexpected_state", param="payment_method"
        )
