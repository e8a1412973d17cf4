"""The Stripe connector against a fake Stripe on 127.0.0.1: answers, declines and failures
map onto PayFlow's taxonomy."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from chalicelib.connectors.base import (
    AuthorizationRequest,
    AuthorizationStatus,
    ConnectorUnavailable,
    PspRateLimited,
    PspTimeout,
    PspUnavailable,
)
from chalicelib.connectors.stripe_connector import StripeConnector
from tests.fakes.stripe_server import FakeStripe


@pytest.fixture
def fake() -> Iterator[FakeStripe]:
    with FakeStripe() as server:
        yield server


@pytest.fixture
def connector(fake: FakeStripe) -> StripeConnector:
    return StripeConnector("sk_test_fake", api_base=fake.url, timeout_ms=1000)


def request(pm: str = "pm_card_visa", key: str = "pi_1:1:stripe", capture: bool = True):
    return AuthorizationRequest("pi_1", 2000, "usd", pm, capture, key)


def test_success_carries_stripe_references_and_our_idempotency_key(connector, fake):
    result = connector.authorize(request())
    assert result.status == AuthorizationStatus.AUTHORIZED
    assert result.psp_reference.startswith("pi_fake") and result.charge_id.startswith("ch_fake")
    sent = fake.requests[-1]
    params = sent.form()
    assert (sent.method, sent.path) == ("POST", "/v1/payment_intents")
    assert params["confirm"] == "true" and params["metadata[payflow_key]"] == "pi_1:1:stripe"


def test_same_key_is_charged_once(connector, fake):
    first = connector.authorize(request())
    second = connector.authorize(request())
    assert first.psp_reference == second.psp_reference and len(fake.intents) == 1


def test_decline_is_an_answer_with_stripes_codes(connector):
    result = connector.authorize(request("pm_card_chargeDeclinedInsufficientFunds"))
    assert result.status == AuthorizationStatus.DECLINED
    assert result.decline is not None
    assert (result.decline.code, result.decline.decline_code) == (
        "card_declined",
        "insufficient_funds",
    )


@pytest.mark.parametrize(
    ("mode", "error"),
    [("timeout", PspTimeout), ("rate_limited", PspRateLimited), ("server_error", PspUnavailable)],
)
def test_failures_map_onto_payflows_taxonomy(connector, fake, mode, error):
    fake.misbehave(mode)
    with pytest.raises(error):
        connector.authorize(request(key=f"k-{mode}"))


def test_lookup_finds_a_charge_whose_answer_was_lost(connector, fake):
    fake.misbehave("timeout_after_charge")
    with pytest.raises(PspTimeout):
        connector.authorize(request(key="lost-answer"))
    found = connector.lookup("lost-answer")
    assert found is not None and found.status == AuthorizationStatus.AUTHORIZED
    assert connector.lookup("never-sent") is None


def test_capture_and_void_reach_stripe(connector, fake):
    held = connector.authorize(request(capture=False, key="held"))
    connector.capture(held.psp_reference, 1500, idempotency_key="held:capture")
    assert fake.intents[held.psp_reference]["amount_received"] == 1500
    other = connector.authorize(request(capture=False, key="other"))
    connector.void(other.psp_reference, idempotency_key="other:void")
    assert fake.intents[other.psp_reference]["status"] == "canceled"


def test_without_a_key_the_connector_is_unavailable():
    with pytest.raises(ConnectorUnavailable):
        StripeConnector(None).authorize(request())


def test_refund_is_sent_once_per_key_and_can_be_found(connector, fake):
    paid = connector.authorize(request(key="to-refund"))
    connector.refund(paid.psp_reference, 700, idempotency_key="re_1")
    connector.refund(paid.psp_reference, 700, idempotency_key="re_1")
    assert [r["amount"] for r in fake.refunds.values()] == [700]
    assert connector.refunded(paid.psp_reference, "re_1")
    assert not connector.refunded(paid.psp_reference, "re_other")


def test_refused_refund_carries_stripes_failure_reason(connector):
    from chalicelib.connectors.base import RefundRefused

    paid = connector.authorize(request("pm_card_refundFail", key="refund-fails"))
    with pytest.raises(RefundRefused) as refused:
        connector.refund(paid.psp_reference, 100, idempotency_key="re_2")
    assert refused.value.reason == "expired_or_canceled_card"
