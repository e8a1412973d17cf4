"""The PaymentIntent state machine, as pure functions."""

from __future__ import annotations

import pytest

from chalicelib.domain import payment_intents as rules
from chalicelib.domain.payment_intents import (
    CancellationReason,
    CaptureMethod,
    PaymentError,
)
from chalicelib.domain.payment_intents import (
    PaymentIntentStatus as S,
)
from chalicelib.errors import ParameterInvalid, UnexpectedState


def new(payment_method: str | None = None, capture: CaptureMethod = CaptureMethod.AUTOMATIC):
    return rules.create(
        id="pi_1",
        merchant_id="acct_1",
        amount=1000,
        currency="usd",
        created=1,
        client_secret="pi_1_secret_x",
        capture_method=capture,
        payment_method=payment_method,
    )


def authorize(pi):
    ready = rules.prepare_confirm(pi, payment_method=None, capture_method=None)
    return rules.authorized(ready, connector="sim", psp_reference="ref", charge_id="ch_1")


def test_every_status_has_a_transition_row_and_terminals_go_nowhere():
    assert set(rules.TRANSITIONS) == set(S)
    assert rules.TRANSITIONS[S.SUCCEEDED] == frozenset()
    assert rules.TRANSITIONS[S.CANCELED] == frozenset()


def test_created_without_payment_method_requires_one():
    assert new().status == S.REQUIRES_PAYMENT_METHOD
    assert new("pm_card_visa").status == S.REQUIRES_CONFIRMATION


def test_automatic_capture_succeeds_with_the_whole_amount_received():
    pi = authorize(new("pm_card_visa"))
    assert (pi.status, pi.amount_received, pi.amount_capturable) == (S.SUCCEEDED, 1000, 0)
    assert pi.version == 2 and pi.attempt_count == 1


def test_manual_capture_holds_then_partial_capture_releases_the_rest():
    held = authorize(new("pm_card_visa", CaptureMethod.MANUAL))
    assert (held.status, held.amount_capturable) == (S.REQUIRES_CAPTURE, 1000)
    amount = rules.check_capture(held, 600)
    done = rules.captured(held, amount, {"k": "v"})
    assert (done.status, done.amount_received, done.amount_capturable) == (S.SUCCEEDED, 600, 0)
    assert done.metadata == {"k": "v"}


def test_capture_more_than_capturable_is_refused():
    held = authorize(new("pm_card_visa", CaptureMethod.MANUAL))
    with pytest.raises(ParameterInvalid) as error:
        rules.check_capture(held, 1001)
    assert error.value.param == "amount_to_capture"


@pytest.mark.parametrize("status", [S.SUCCEEDED, S.CANCELED, S.REQUIRES_CONFIRMATION])
def test_capture_is_only_legal_from_requires_capture(status):
    pi = new("pm_card_visa").model_copy(update={"status": status})
    with pytest.raises(UnexpectedState) as error:
        rules.check_capture(pi, None)
    assert error.value.code == "payment_intent_unexpected_state"
    assert error.value.extra["payment_intent"]["status"] == status.value


def test_confirm_without_a_payment_method_is_refused():
    with pytest.raises(UnexpectedState) as error:
        rules.prepare_confirm(new(), payment_method=None, capture_method=None)
    assert error.value.param == "payment_method"


@pytest.mark.parametrize("status", [S.SUCCEEDED, S.CANCELED, S.PROCESSING, S.REQUIRES_CAPTURE])
def test_confirm_is_refused_once_confirmed(status):
    pi = new("pm_card_visa").model_copy(update={"status": status})
    with pytest.raises(UnexpectedState):
        rules.prepare_confirm(pi, payment_method=None, capture_method=None)


def test_decline_returns_to_requires_payment_method_with_the_error():
    ready = rules.prepare_confirm(new("pm_x"), payment_method=None, capture_method=None)
    error = PaymentError(type="card_error", code="card_declined", message="no")
    declined = rules.declined(ready, error)
    assert declined.status == S.REQUIRES_PAYMENT_METHOD
    assert declined.last_payment_error == error
    assert rules.event_type_for(ready, declined) == "payment_intent.payment_failed"


def test_cancel_from_requires_capture_and_not_from_succeeded():
    held = authorize(new("pm_card_visa", CaptureMethod.MANUAL))
    rules.check_cancel(held)
    canceled = rules.canceled(held, CancellationReason.DUPLICATE, 5)
    assert (canceled.status, canceled.amount_capturable, canceled.canceled_at) == (
        S.CANCELED,
        0,
        5,
    )
    with pytest.raises(UnexpectedState):
        rules.check_cancel(authorize(new("pm_card_visa")))


def test_update_of_amount_after_confirmation_is_refused_but_metadata_is_not():
    done = authorize(new("pm_card_visa"))
    with pytest.raises(UnexpectedState):
        rules.update(done, {"amount": 5})
    assert rules.update(done, {"metadata": {"a": "1"}}).metadata == {"a": "1"}


def test_metadata_updates_merge_unset_and_clear():
    pi = rules.update(new(), {"metadata": {"a": "1", "b": "2"}})
    assert rules.update(pi, {"metadata": {"a": "", "c": "3"}}).metadata == {"b": "2", "c": "3"}
    assert rules.update(pi, {"metadata": None}).metadata == {}


def test_update_with_payment_method_moves_to_requires_confirmation():
    assert rules.update(new(), {"payment_method": "pm_card_visa"}).status == (
        S.REQUIRES_CONFIRMATION
    )


def test_illegal_status_move_is_refused():
    with pytest.raises(UnexpectedState):
        rules._moved(authorize(new("pm_card_visa")), status=S.REQUIRES_CAPTURE)


@pytest.mark.parametrize(
    ("before", "after", "event"),
    [
        (None, S.REQUIRES_PAYMENT_METHOD, "payment_intent.created"),
        (S.REQUIRES_CONFIRMATION, S.SUCCEEDED, "payment_intent.succeeded"),
        (S.REQUIRES_CONFIRMATION, S.REQUIRES_CAPTURE, "payment_intent.amount_capturable_updated"),
        (S.REQUIRES_CONFIRMATION, S.REQUIRES_ACTION, "payment_intent.requires_action"),
        (S.REQUIRES_CONFIRMATION, S.PROCESSING, "payment_intent.processing"),
        (S.REQUIRES_CAPTURE, S.CANCELED, "payment_intent.canceled"),
        (S.REQUIRES_CONFIRMATION, S.REQUIRES_CONFIRMATION, None),
    ],
)
def test_event_types(before, after, event):
    pi = new("pm_card_visa")
    previous = None if before is None else pi.model_copy(update={"status": before})
    assert rules.event_type_for(previous, pi.model_copy(update={"status": after})) == event


def test_a_payment_is_listed_under_the_connector_that_holds_answered_or_was_chosen():
    # Given: a payment confirmed and routed to sim_a then sim_b
    ready = rules.prepare_confirm(new("pm_card_visa"), payment_method=None, capture_method=None)
    routed = rules.processing(ready, ["sim_a", "sim_b"])
    # a payment never confirmed is under no connector
    assert new("pm_card_visa").attributes() == {
        "status": "requires_confirmation",
        "payment_method_type": "card",
    }
    # Then: before any answer, under routing's first choice
    assert routed.attributes()["connector"] == "sim_a"
    # A decline at sim_b clears `connector`, and the payment stays under the one that answered
    declined = rules.declined(
        routed.model_copy(update={"answered_by": "sim_b"}),
        PaymentError(type="card_error", code="card_declined", message="Declined."),
    )
    assert declined.connector is None and declined.attributes()["connector"] == "sim_b"
    # A new attempt forgets the old answer; an authorization is where the payment is
    again = rules.processing(
        rules.prepare_confirm(declined, payment_method=None, capture_method=None), ["sim_b"]
    )
    assert again.answered_by is None and again.attributes()["connector"] == "sim_b"
    held = rules.authorized(again, connector="sim_b", psp_reference="r", charge_id="ch_2")
    assert held.attributes() == {
        "status": "succeeded",
        "connector": "sim_b",
        "payment_method_type": "card",
    }
