"""How an exception reads in the API: both sides of a mismatch with their own currencies."""

from __future__ import annotations

from chalicelib.reconciliation.matching import ExceptionKind
from chalicelib.reconciliation.records import ReconciliationException


def exception(**changes: object) -> ReconciliationException:
    values: dict[str, object] = {
        "id": "rcx_1",
        "merchant_id": "acct_1",
        "run": "rcnrun_1",
        "kind": ExceptionKind.AMOUNT_UNDER,
        "provider": "sim",
        "subject": "ch_1",
        "currency": "usd",
        "provider_amount": 900,
        "payflow_amount": 1000,
        "payflow_currency": "usd",
        "created": 1,
    }
    return ReconciliationException.model_validate({**values, **changes})


def test_a_currency_mismatch_shows_the_currency_payflow_booked():
    shown = exception(
        kind=ExceptionKind.CURRENCY_MISMATCH, currency="eur", payflow_currency="usd"
    ).to_api()
    assert (shown["provider_amount"], shown["currency"]) == (900, "eur")
    assert (shown["payflow_amount"], shown["payflow_currency"]) == (1000, "usd")


def test_without_a_booking_payflows_side_is_in_the_providers_currency():
    # A line PayFlow has no record of: nothing booked, so no currency of its own
    shown = exception(
        kind=ExceptionKind.MISSING_IN_PAYFLOW, payflow_amount=0, payflow_currency=None
    ).to_api()
    assert shown["payflow_currency"] == "usd" and shown["difference"] == 900
