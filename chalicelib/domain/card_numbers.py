"""Card details as a customer typed them (payflow.js's payment element sends them with the
publishable key): checked as Stripe checks them, then mapped to the test card they name.

Only the test card's id and the expiry are kept from here on: never the number or the CVC.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from chalicelib.domain.test_cards import TEST_PAYMENT_METHODS, TestCard
from chalicelib.errors import CardError

_BY_NUMBER: dict[str, TestCard] = {
    card.number: card for card in TEST_PAYMENT_METHODS.values() if card.number
}
_LENGTHS = range(12, 20)
_YEARS_AHEAD = 50


@dataclass(frozen=True)
class EnteredCard:
    """What a typed card becomes: the test card it is, and its expiry."""

    card: TestCard
    exp_month: int
    exp_year: int


def luhn_valid(number: str) -> bool:
    """The checksum every card number carries in its last digit."""
    total = 0
    for position, char in enumerate(reversed(number)):
        digit = int(char)
        if position % 2 == 1:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


def entered_card(
    number: str, exp_month: str | None, exp_year: str | None, cvc: str | None, *, now: float
) -> EnteredCard:
    """The test card behind typed details, or Stripe's card_error for the first bad field
    (`invalid_number`, `incorrect_number`, `invalid_expiry_month`, `invalid_expiry_year`,
    `invalid_cvc`; a number that is valid but no test card is declined, as in test mode)."""
    digits = number.replace(" ", "")
    if not digits.isascii() or not digits.isdigit() or len(digits) not in _LENGTHS:
        raise _error(
            "invalid_number", "The card number is not a valid credit card number.", "number"
        )
    if not luhn_valid(digits):
        raise _error("incorrect_number", "Your card number is incorrect.", "number")
    today = datetime.fromtimestamp(now, UTC)
    month = _integer(exp_month)
    if month is None or not 1 <= month <= 12:
        raise _error(
            "invalid_expiry_month", "Your card's expiration month is invalid.", "exp_month"
        )
    year = _integer(exp_year)
    if year is not None and year < 100:
        year += 2000
    if year is None or not today.year <= year <= today.year + _YEARS_AHEAD:
        raise _error("invalid_expiry_year", "Your card's expiration year is invalid.", "exp_year")
    if year == today.year and month < today.month:
        raise _error(
            "invalid_expiry_month", "Your card's expiration month is invalid.", "exp_month"
        )
    card = _BY_NUMBER.get(digits)
    expected = 4 if card is not None and card.brand == "amex" else 3
    if cvc is None or not cvc.isascii() or not cvc.isdigit() or len(cvc) != expected:
        raise _error("invalid_cvc", "Your card's security code is invalid.", "cvc")
    if card is None:
        raise CardError(
            "Your card was declined. Your request was in test mode, but used a non test (live) "
            "card. Use one of Stripe's test card numbers, such as 4242 4242 4242 4242.",
            code="card_declined",
            param="card[number]",
            extra={"decline_code": "test_mode_live_card"},
        )
    return EnteredCard(card, month, year)


def _integer(value: str | None) -> int | None:
    if value is None or not value.isascii() or not value.isdigit() or len(value) > 4:
        return None
    return int(value)


def _error(code: str, message: str, field: str) -> CardError:
    return CardError(message, code=code, param=f"card[{field}]")
