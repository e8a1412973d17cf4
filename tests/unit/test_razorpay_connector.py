"""The Razorpay connector against a fake Razorpay on 127.0.0.1: orders keyed by PayFlow's
idempotency key, answers, declines and failures mapped onto PayFlow's taxonomy."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from chalicelib.connectors.base import (
    FAILOVER_ERRORS,
    RETRYABLE_ERRORS,
    AuthorizationRequest,
    AuthorizationStatus,
    ConnectorUnavailable,
    PspRateLimited,
    PspTimeout,
    PspUnavailable,
    RefundRefused,
)
from chalicelib.connectors.razorpay_connector import (
    ERRORS,
    RazorpayAccount,
    RazorpayConnector,
    receipt_for,
)
from tests.fakes.razorpay_server import KEY_ID, KEY_SECRET, FakeRazorpay


@pytest.fixture
def fake() -> Iterator[FakeRazorpay]:
    with FakeRazorpay() as server:
        yield server


@pytest.fixture
def connector(fake: FakeRazorpay) -> RazorpayConnector:
    return RazorpayConnector(RazorpayAccount(KEY_ID, KEY_SECRET, fake.url), timeout_ms=1000)


def request(pm: str = "pm_card_visa", key: str = "pi_1:1:razorpay", capture: bool = True):
    return AuthorizationRequest("pi_1", 2000, "inr", pm, capture, key)


def test_success_is_one_paid_order_whose_receipt_is_our_key(connector, fake):
    result = connector.authorize(request())
    assert result.status == AuthorizationStatus.AUTHORIZED
    assert result.psp_reference.startswith("pay_") and result.charge_id.startswith("ch_")
    (order,) = fake.orders.values()
    assert order["receipt"] == "pi_1:1:razorpay" and order["status"] == "paid"
    assert order["notes"]["payflow_key"] == "pi_1:1:razorpay"
    assert fake.payments[result.psp_reference]["captured"] is True


def test_same_key_is_charged_once(connector, fake):
    first = connector.authorize(request())
    second = connector.authorize(request())
    assert first.psp_reference == second.psp_reference
    assert len(fake.orders) == 1 and len(fake.payments) == 1


def test_upi_is_a_collect_request_that_waits_for_the_customer(connector, fake):
    result = connector.authorize(request("pm_upi_success", key="upi"))
    assert result.status == AuthorizationStatus.REQUIRES_ACTION
    assert result.next_action == {"type": "upi_await_notification"}
    created = [r for r in fake.requests if r.path == "/v1/payments/create/upi"]
    assert created[0].json()["upi"] == {"flow": "collect", "vpa": "success@razorpay"}
    # Asked again (a retry, a lookup), it is the same wait, never a second collect request.
    assert connector.lookup("upi") == result
    assert connector.authorize(request("pm_upi_success", key="upi")) == result
    assert len(fake.payments) == 1
    requests.get(f"{fake.url}/_fake/authenticate/{result.psp_reference}", params={"succeeded": "1"})
    assert connector.lookup("upi").status == AuthorizationStatus.AUTHORIZED


def test_decline_is_an_answer_with_stripes_codes(connector, fake):
    result = connector.authorize(request("pm_card_chargeDeclinedInsufficientFunds", key="poor"))
    assert result.status == AuthorizationStatus.DECLINED and result.decline is not None
    assert (result.decline.code, result.decline.decline_code) == (
        "card_declined",
        "insufficient_funds",
    )
    # Asked again with the same key, the answer is the same and nothing more is attempted.
    again = connector.authorize(request("pm_card_chargeDeclinedInsufficientFunds", key="poor"))
    assert again.status == AuthorizationStatus.DECLINED and len(fake.payments) == 1


@pytest.mark.parametrize(
    ("mode", "error"),
    [("timeout", PspTimeout), ("rate_limited", PspRateLimited), ("server_error", PspUnavailable)],
)
def test_failures_map_onto_payflows_taxonomy(connector, fake, mode, error):
    fake.misbehave(mode)
    with pytest.raises(error):
        connector.authorize(request(key=f"k-{mode}"))
    assert error in RETRYABLE_ERRORS


def test_bad_credentials_make_the_connector_unavailable(fake):
    wrong = RazorpayConnector(RazorpayAccount(KEY_ID, "not-the-secret", fake.url), timeout_ms=1000)
    with pytest.raises(ConnectorUnavailable):
        wrong.authorize(request())
    assert ConnectorUnavailable in FAILOVER_ERRORS and ConnectorUnavailable not in RETRYABLE_ERRORS


def test_without_keys_the_connector_is_unavailable():
    with pytest.raises(ConnectorUnavailable):
        RazorpayConnector(RazorpayAccount()).authorize(request())


def test_lookup_finds_a_charge_whose_answer_was_lost(connector, fake):
    fake.misbehave("timeout_after_charge", path="/v1/payments/create")
    with pytest.raises(PspTimeout):
        connector.authorize(request(key="lost-answer"))
    found = connector.lookup("lost-answer")
    assert found is not None and found.status == AuthorizationStatus.AUTHORIZED
    assert connector.lookup("never-sent") is None
    # A retry of the attempt finds the same payment instead of paying the order again.
    assert connector.authorize(request(key="lost-answer")).psp_reference == found.psp_reference
    assert len(fake.payments) == 1


def test_a_long_key_becomes_a_receipt_razorpay_accepts(connector, fake):
    key = "pi_" + "x" * 60 + ":1:razorpay"
    assert len(receipt_for(key)) <= 40 and receipt_for(key) == receipt_for(key)
    connector.authorize(request(key=key))
    assert connector.lookup(key) is not None


def test_manual_capture_then_capture_once(connector, fake):
    held = connector.authorize(request(capture=False, key="held"))
    assert fake.payments[held.psp_reference]["status"] == "authorized"
    connector.capture(held.psp_reference, 2000, idempotency_key="held:capture")
    connector.capture(held.psp_reference, 2000, idempotency_key="held:capture")
    assert fake.payments[held.psp_reference]["status"] == "captured"
    captures = [r for r in fake.requests if r.path.endswith("/capture")]
    assert len(captures) == 1 and captures[0].json() == {"amount": 2000, "currency": "INR"}


def test_void_leaves_the_authorization_for_razorpay_to_release(connector, fake):
    held = connector.authorize(request(capture=False, key="to-void"))
    connector.void(held.psp_reference, idempotency_key="to-void:void")
    assert fake.payments[held.psp_reference]["status"] == "authorized"


def test_three_d_secure_is_a_redirect_then_read_back(connector, fake):
    pending = connector.authorize(request("pm_card_authenticationRequired", key="3ds"))
    assert pending.status == AuthorizationStatus.REQUIRES_ACTION
    assert pending.next_action is not None
    url = pending.next_action["redirect_to_url"]["url"]
    # While the customer is away, the attempt is neither paid again nor failed over.
    with pytest.raises(PspTimeout):
        connector.lookup("3ds")
    requests.get(url, params={"succeeded": "1"}, timeout=5)
    done = connector.complete_action(
        pending.psp_reference, succeeded=True, capture=True, idempotency_key="3ds:auth"
    )
    assert done.status == AuthorizationStatus.AUTHORIZED


def test_failed_authentication_is_a_decline(connector, fake):
    pending = connector.authorize(request("pm_card_authenticationRequired", key="3ds-no"))
    assert pending.next_action is not None
    requests.get(pending.next_action["redirect_to_url"]["url"], params={"succeeded": "0"})
    done = connector.complete_action(
        pending.psp_reference, succeeded=False, capture=True, idempotency_key="3ds-no:auth"
    )
    assert done.status == AuthorizationStatus.DECLINED and done.decline is not None
    assert done.decline.code == "payment_intent_authentication_failure"


def test_refund_is_sent_once_per_key_and_can_be_found(connector, fake):
    paid = connector.authorize(request(key="to-refund"))
    connector.refund(paid.psp_reference, 700, idempotency_key="re_1")
    connector.refund(paid.psp_reference, 700, idempotency_key="re_1")
    assert [r["amount"] for r in fake.refunds.values()] == [700]
    assert connector.refunded(paid.psp_reference, "re_1")
    assert not connector.refunded(paid.psp_reference, "re_other")


def test_refund_of_more_than_was_paid_is_refused(connector):
    paid = connector.authorize(request(key="small"))
    with pytest.raises(RefundRefused):
        connector.refund(paid.psp_reference, 5000, idempotency_key="re_big")


def test_the_error_table_sends_every_class_to_retry_failover_or_decline():
    for key, mapped in ERRORS.items():
        if isinstance(mapped, type):
            assert mapped in FAILOVER_ERRORS, key
        else:
            code, _ = mapped
            assert code, key
