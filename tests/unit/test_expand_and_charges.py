"""expand[] planning and the Charge's derivation from its PaymentIntent: pure rules."""

from __future__ import annotations

import pytest

from chalicelib.domain import charges
from chalicelib.domain import payment_intents as pis
from chalicelib.domain.payment_intents import CaptureMethod, PaymentError, PaymentIntentStatus
from chalicelib.errors import InvalidRequestError
from chalicelib.services.expand import Expander, check


def test_expand_paths_are_checked_against_the_response_type() -> None:
    check("payment_intent", ["latest_charge.balance_transaction", "customer"])
    check("list:payment_intent", ["data.latest_charge"])
    check("customer", ["invoice_settings.default_payment_method"])
    for returns, path in [
        ("payment_intent", "amount"),
        ("payment_intent", "latest_charge.nothing"),
        ("list:payment_intent", "latest_charge"),
        ("customer", "invoice_settings"),
        (None, "customer"),
    ]:
        with pytest.raises(InvalidRequestError):
            check(returns, [path])


def test_expand_refuses_more_than_four_levels() -> None:
    four = "latest_charge.payment_intent.latest_charge.payment_intent"
    check("payment_intent", [four])
    with pytest.raises(InvalidRequestError, match="4 levels"):
        check("payment_intent", [four + ".customer"])


def test_expander_replaces_ids_and_leaves_unknown_ones() -> None:
    # Given loaders for charges and balance transactions, one charge missing
    objects = {
        "ch_1": {"id": "ch_1", "object": "charge", "balance_transaction": "txn_1"},
        "txn_1": {"id": "txn_1", "object": "balance_transaction"},
    }
    loaders = {p: (lambda m, i: objects.get(i)) for p in ("ch_", "txn_")}
    expander = Expander(loaders)
    body = {
        "object": "list",
        "data": [
            {"object": "payment_intent", "latest_charge": "ch_1"},
            {"object": "payment_intent", "latest_charge": "ch_gone"},
            {"object": "payment_intent", "latest_charge": None},
        ],
    }
    # When a nested path is expanded on the list
    expander.expand("m", "list:payment_intent", body, ["data.latest_charge.balance_transaction"])
    # Then the known ids became objects, the rest stayed as they were
    first, second, third = body["data"]
    assert first["latest_charge"]["balance_transaction"] == {
        "id": "txn_1",
        "object": "balance_transaction",
    }
    assert second["latest_charge"] == "ch_gone" and third["latest_charge"] is None


def _pi(**changes: object) -> pis.PaymentIntent:
    base = pis.create(
        id="pi_1",
        merchant_id="m",
        amount=2000,
        currency="usd",
        created=1,
        client_secret="s",
        payment_method="pm_card_visa",
        capture_method=CaptureMethod.MANUAL,
    )
    return base.model_copy(update=changes)


def test_an_authorization_makes_an_uncaptured_charge_that_capture_moves() -> None:
    held = _pi(
        status=PaymentIntentStatus.REQUIRES_CAPTURE, latest_charge="ch_1", amount_capturable=2000
    )
    charge = charges.made_by(held, "ch_1", 5, None)
    assert charge.status == charges.ChargeStatus.SUCCEEDED and not charge.captured
    assert charges.event_for(None, charge) == "charge.succeeded"
    captured = pis.captured(held, 1500, None)
    moved = charges.moved_by(charge, held, captured)
    assert moved is not None and moved.captured and moved.amount_captured == 1500
    assert moved.amount_refunded == 500 and not moved.refunded
    assert moved.balance_transaction == "txn_charge_ch_1"
    assert charges.event_for(charge, moved) == "charge.captured"


def test_a_decline_makes_a_failed_charge_nothing_moves() -> None:
    declined = pis.declined(
        _pi(status=PaymentIntentStatus.PROCESSING),
        PaymentError(
            type="card_error",
            code="card_declined",
            decline_code="fraudulent",
            message="no",
            charge="ch_2",
        ),
    )
    assert declined.latest_charge == "ch_2"
    charge = charges.made_by(declined, "ch_2", 5, None)
    assert charge.status == charges.ChargeStatus.FAILED and charge.failure_code == "card_declined"
    assert charge.to_api()["outcome"]["type"] == "blocked"
    assert charges.event_for(None, charge) == "charge.failed"
    assert not charges.may_move(declined, declined)
