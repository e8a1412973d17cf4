"""Typed card details: Stripe's checks, and the test card each number stands for."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from chalicelib.domain.card_numbers import entered_card, luhn_valid
from chalicelib.domain.test_cards import TEST_PAYMENT_METHODS
from chalicelib.errors import CardError

NOW = datetime(2026, 12, 1, tzinfo=UTC).timestamp()


def test_every_test_card_number_passes_luhn_and_maps_to_its_card() -> None:
    for card in TEST_PAYMENT_METHODS.values():
        if not card.number:
            continue
        cvc = "1234" if card.brand == "amex" else "123"
        # When
        entered = entered_card(card.number, "12", "30", cvc, now=NOW)
        # Then
        assert luhn_valid(card.number)
        assert entered.card == card
        assert (entered.exp_month, entered.exp_year) == (12, 2030)


def test_spaces_are_allowed_and_four_digit_years_kept() -> None:
    entered = entered_card("4000 0025 0000 3155", "1", "2031", "123", now=NOW)
    assert entered.card.id == "pm_card_authenticationRequiredOnSetup"
    assert (entered.exp_month, entered.exp_year) == (1, 2031)


@pytest.mark.parametrize(
    ("number", "month", "year", "cvc", "code", "param"),
    [
        ("4242x42424242424", "12", "30", "123", "invalid_number", "card[number]"),
        ("42424242", "12", "30", "123", "invalid_number", "card[number]"),
        ("4242424242424241", "12", "30", "123", "incorrect_number", "card[number]"),
        ("4242424242424242", "13", "30", "123", "invalid_expiry_month", "card[exp_month]"),
        ("4242424242424242", None, "30", "123", "invalid_expiry_month", "card[exp_month]"),
        ("4242424242424242", "11", "2026", "123", "invalid_expiry_month", "card[exp_month]"),
        ("4242424242424242", "12", "25", "123", "invalid_expiry_year", "card[exp_year]"),
        ("4242424242424242", "12", "2099", "123", "invalid_expiry_year", "card[exp_year]"),
        ("4242424242424242", "12", "thirty", "123", "invalid_expiry_year", "card[exp_year]"),
        ("4242424242424242", "12", "30", "12", "invalid_cvc", "card[cvc]"),
        ("4242424242424242", "12", "30", "1234", "invalid_cvc", "card[cvc]"),
        ("378282246310005", "12", "30", "123", "invalid_cvc", "card[cvc]"),
        ("4242424242424242", "12", "30", "١٢٣", "invalid_cvc", "card[cvc]"),
    ],
)
def test_bad_details_are_stripe_card_errors(
    number: str, month: str | None, year: str, cvc: str, code: str, param: str
) -> None:
    with pytest.raises(CardError) as raised:
        entered_card(number, month, year, cvc, now=NOW)
    body = raised.value.to_body()["error"]
    assert (body["type"], body["code"], body["param"]) == ("card_error", code, param)
    assert raised.value.http_status == 402


def test_this_month_is_not_expired() -> None:
    assert entered_card("4242424242424242", "12", "26", "123", now=NOW).exp_year == 2026


def test_a_valid_number_that_is_no_test_card_is_declined_as_in_test_mode() -> None:
    with pytest.raises(CardError) as raised:
        entered_card("4111111111111111", "12", "30", "123", now=NOW)
    body = raised.value.to_body()["error"]
    assert body["code"] == "card_declined" and body["decline_code"] == "test_mode_live_card"
