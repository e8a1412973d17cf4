"""The Adyen connector against a fake Adyen Checkout API on 127.0.0.1: payments keyed by
PayFlow's idempotency key, modifications, and what only Adyen's notifications tell."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from chalicelib.connectors.adyen_connector import ERRORS, AdyenAccount, AdyenConnector
from chalicelib.connectors.base import (
    FAILOVER_ERRORS,
    AuthorizationRequest,
    AuthorizationStatus,
    ConnectorUnavailable,
    PspRateLimited,
    PspTimeout,
    PspUnavailable,
)
from tests.fakes.adyen_server import API_KEY, MERCHANT_ACCOUNT, FakeAdyen


@pytest.fixture
def fake() -> Iterator[FakeAdyen]:
    with FakeAdyen() as server:
        yield server


def account(fake: FakeAdyen, api_key: str = API_KEY) -> AdyenAccount:
    return AdyenAccount(api_key, MERCHANT_ACCOUNT, f"{fake.url}/v72")


@pytest.fixture
def connector(fake: FakeAdyen) -> AdyenConnector:
    # What PayFlow stored from Adyen's notifications is, here, what the fake sent.
    return AdyenConnector(account(fake), fake.find_notification, timeout_ms=1000)


def request(pm: str = "pm_card_visa", key: str = "pi_1:1:adyen", capture: bool = True):
    return AuthorizationRequest("pi_1", 2000, "eur", pm, capture, key)


def test_success_carries_our_key_as_reference_and_idempotency_key(connector, fake):
    result = connector.authorize(request())
    assert result.status == AuthorizationStatus.AUTHORIZED
    assert result.charge_id == f"ch_{result.psp_reference}"
    sent = fake.requests[-1]
    assert sent.path == "/v72/payments" and sent.headers["idempotency-key"] == "pi_1:1:adyen"
    body = sent.json()
    assert body["reference"] == "pi_1:1:adyen" and body["amount"] == {
        "value": 2000,
        "currency": "EUR",
    }
    assert body["captureDelayHours"] == 0 and body["paymentMethod"]["type"] == "scheme"


def test_same_key_is_charged_once(connector, fake):
    first = connector.authorize(request())
    second = connector.authorize(request())
    assert first.psp_reference == second.psp_reference and len(fake.payments) == 1


def test_decline_is_an_answer_with_stripes_codes(connector):
    result = connector.authorize(request("pm_card_chargeDeclinedInsufficientFunds", key="poor"))
    assert result.status == AuthorizationStatus.DECLINED and result.decline is not None
    assert (result.decline.code, result.decline.decline_code) == (
        "card_declined",
        "insufficient_funds",
    )
    assert result.decline.message == "Not enough balance"


def test_an_unavailable_issuer_fails_over_rather_than_declines(connector):
    with pytest.raises(PspUnavailable):
        connector.authorize(request("pm_card_chargeDeclinedProcessingError", key="issuer-down"))


@pytest.mark.parametrize(
    ("mode", "error"),
    [("timeout", PspTimeout), ("rate_limited", PspRateLimited), ("server_error", PspUnavailable)],
)
def test_failures_map_onto_payflows_taxonomy(connector, fake, mode, error):
    fake.misbehave(mode)
    with pytest.raises(error):
        connector.authorize(request(key=f"k-{mode}"))


def test_bad_credentials_make_the_connector_unavailable(fake):
    wrong = AdyenConnector(account(fake, "AQE_wrong"), fake.find_notification, timeout_ms=1000)
    with pytest.raises(ConnectorUnavailable):
        wrong.authorize(request())


def test_without_credentials_the_connector_is_unavailable(fake):
    with pytest.raises(ConnectorUnavailable):
        AdyenConnector(AdyenAccount(), fake.find_notification).authorize(request())


def test_lookup_finds_a_charge_whose_answer_was_lost(connector, fake):
    fake.misbehave("timeout_after_charge")
    with pytest.raises(PspTimeout):
        connector.authorize(request(key="lost-answer"))
    found = connector.lookup("lost-answer")
    assert found is not None and found.status == AuthorizationStatus.AUTHORIZED
    assert connector.lookup("never-sent") is None
    # Retrying the attempt with the same key is Adyen's own idempotency: still one payment.
    assert connector.authorize(request(key="lost-answer")).psp_reference == found.psp_reference
    assert len(fake.payments) == 1


def test_lookup_of_a_refusal_is_the_same_decline(connector, fake):
    connector.authorize(request("pm_card_chargeDeclinedInsufficientFunds", key="refused"))
    found = connector.lookup("refused")
    assert found is not None and found.status == AuthorizationStatus.DECLINED
    assert found.decline is not None and found.decline.decline_code == "insufficient_funds"


def test_manual_capture_is_a_capture_modification_in_the_authorised_currency(connector, fake):
    held = connector.authorize(request(capture=False, key="held"))
    assert fake.requests[-1].json()["additionalData"] == {"manualCapture": "true"}
    connector.capture(held.psp_reference, 1500, idempotency_key="held:capture")
    connector.capture(held.psp_reference, 1500, idempotency_key="held:capture")
    assert [m["kind"] for m in fake.modifications] == ["captures"]
    assert fake.payments[held.psp_reference]["captured"] == 1500
    capture = fake.find_notification("CAPTURE", "held:capture")
    assert capture is not None and capture["amount"] == {"value": 1500, "currency": "EUR"}


def test_void_is_a_cancel(connector, fake):
    held = connector.authorize(request(capture=False, key="to-void"))
    connector.void(held.psp_reference, idempotency_key="to-void:void")
    assert fake.payments[held.psp_reference]["status"] == "cancelled"


def test_three_d_secure_is_a_redirect_whose_outcome_adyen_reports(connector, fake):
    pending = connector.authorize(request("pm_card_authenticationRequired", key="3ds"))
    assert pending.status == AuthorizationStatus.REQUIRES_ACTION
    assert pending.next_action is not None
    with pytest.raises(PspTimeout):  # the shopper has not come back yet
        connector.complete_action(
            pending.psp_reference, succeeded=True, capture=True, idempotency_key="3ds:auth"
        )
    requests.get(pending.next_action["redirect_to_url"]["url"], params={"succeeded": "0"})
    done = connector.complete_action(
        pending.psp_reference, succeeded=False, capture=True, idempotency_key="3ds:auth"
    )
    assert done.status == AuthorizationStatus.DECLINED and done.decline is not None
    assert done.decline.code == "payment_intent_authentication_failure"


def test_refund_is_sent_once_per_key_and_found_by_its_notification(connector, fake):
    paid = connector.authorize(request(key="to-refund"))
    connector.refund(paid.psp_reference, 700, idempotency_key="re_1")
    connector.refund(paid.psp_reference, 700, idempotency_key="re_1")
    assert [m["kind"] for m in fake.modifications] == ["refunds"]
    assert connector.refunded(paid.psp_reference, "re_1")
    assert not connector.refunded(paid.psp_reference, "re_other")


def test_a_refund_adyen_refuses_later_is_not_refunded(connector, fake):
    paid = connector.authorize(request(key="small"))
    connector.refund(paid.psp_reference, 5000, idempotency_key="re_big")
    assert not connector.refunded(paid.psp_reference, "re_big")


def test_the_error_table_sends_every_class_to_retry_failover_or_decline():
    for key, mapped in ERRORS.items():
        if isinstance(mapped, type):
            assert mapped in FAILOVER_ERRORS, key
        else:
            assert mapped[0], key
