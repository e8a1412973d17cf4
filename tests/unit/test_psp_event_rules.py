"""Provider events move a PaymentIntent forward only, and each provider's signature is checked
(pure functions: no sandbox)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import pytest

from chalicelib.connectors import adyen_connector, razorpay_connector, stripe_connector
from chalicelib.domain import payment_intents as rules
from chalicelib.domain.payment_intents import CaptureMethod
from chalicelib.domain.payment_intents import PaymentIntentStatus as S
from chalicelib.domain.psp_events import (
    InvalidWebhook,
    PspEvent,
    PspOutcome,
    connector_of,
    transition,
)
from tests.fakes.adyen_server import HMAC_KEY, notification_body, sign


def processing(capture: CaptureMethod = CaptureMethod.AUTOMATIC):
    pi = rules.create(
        id="pi_1",
        merchant_id="acct_1",
        amount=1000,
        currency="inr",
        created=1,
        client_secret="pi_1_secret_x",
        capture_method=capture,
        payment_method="pm_upi_success",
    )
    ready = rules.prepare_confirm(pi, payment_method=None, capture_method=None)
    return rules.processing(ready, ["razorpay"])


def event(outcome: PspOutcome, **fields) -> PspEvent:
    values = {"attempt_key": "pi_1:1:razorpay", "psp_reference": "pay_1", "charge_id": "ch_1"}
    return PspEvent(
        id="evt", type="x", outcome=outcome, payment_intent_id="pi_1", **{**values, **fields}
    )


def test_an_authorization_answers_the_attempt_waiting_for_it():
    move = transition(processing(), event(PspOutcome.AUTHORIZED), "razorpay")
    assert move is not None and move.result is not None
    assert move.result.psp_reference == "pay_1"


def test_an_event_for_another_attempt_or_connector_changes_nothing():
    pi = processing()
    assert (
        transition(pi, event(PspOutcome.AUTHORIZED, attempt_key="pi_1:0:razorpay"), "razorpay")
        is None
    )
    assert transition(pi, event(PspOutcome.AUTHORIZED), "adyen") is None


def test_a_late_authorization_after_the_capture_changes_nothing():
    pi = processing()
    done = rules.authorized(pi, connector="razorpay", psp_reference="pay_1", charge_id="ch_1")
    assert done.status == S.SUCCEEDED
    assert transition(done, event(PspOutcome.AUTHORIZED), "razorpay") is None
    assert transition(done, event(PspOutcome.CAPTURED), "razorpay") is None
    assert transition(done, event(PspOutcome.FAILED), "razorpay") is None


def test_a_capture_moves_a_held_authorization_once():
    held = rules.authorized(
        processing(CaptureMethod.MANUAL), connector="razorpay", psp_reference="pay_1", charge_id="c"
    )
    move = transition(held, event(PspOutcome.CAPTURED, amount=600), "razorpay")
    assert move is not None and move.captured == 600
    captured = rules.captured(held, 600, None)
    assert transition(captured, event(PspOutcome.CAPTURED, amount=600), "razorpay") is None
    other = event(PspOutcome.CAPTURED, psp_reference="pay_other")
    assert transition(held, other, "razorpay") is None


def test_a_failure_is_applied_only_while_the_customer_is_away():
    pi = processing()
    # During processing the orchestration owns the attempt.
    assert transition(pi, event(PspOutcome.FAILED), "razorpay") is None
    waiting = rules.requires_action(
        pi, connector="razorpay", psp_reference="pay_1", next_action={"type": "x"}
    )
    move = transition(waiting, event(PspOutcome.FAILED), "razorpay")
    assert move is not None and move.result is not None and move.result.decline is not None


def test_razorpay_signature_is_an_hmac_of_the_raw_body():
    body = json.dumps(
        {
            "entity": "event",
            "event": "payment.captured",
            "payload": {
                "payment": {
                    "entity": {
                        "id": "pay_9",
                        "amount": 1000,
                        "notes": {"payflow_payment_intent": "pi_1", "payflow_key": "pi_1:1:r"},
                    }
                }
            },
        }
    ).encode()
    signature = hmac.new(b"rzp_secret", body, hashlib.sha256).hexdigest()
    headers = {"x-razorpay-signature": signature, "x-razorpay-event-id": "evt_9"}
    (parsed,) = razorpay_connector.webhook_events("rzp_secret", headers, body)
    assert (parsed.id, parsed.outcome, parsed.payment_intent_id) == (
        "evt_9",
        PspOutcome.CAPTURED,
        "pi_1",
    )
    assert parsed.attempt_key == "pi_1:1:r" and parsed.charge_id == "ch_9"
    with pytest.raises(InvalidWebhook):
        razorpay_connector.webhook_events("other_secret", headers, body)
    with pytest.raises(InvalidWebhook):
        razorpay_connector.webhook_events("rzp_secret", headers, body + b" ")


def test_adyen_signature_is_checked_on_every_item():
    item = {
        "amount": {"value": 1000, "currency": "EUR"},
        "eventCode": "AUTHORISATION",
        "merchantAccountCode": "PayFlowECOM",
        "merchantReference": "pi_1:1:adyen",
        "pspReference": "PSP1",
        "reason": "Not enough balance",
        "success": "false",
    }
    signed = {**item, "additionalData": {"hmacSignature": sign(item)}}
    body = json.dumps(notification_body([signed])).encode()
    (parsed,) = adyen_connector.webhook_events(HMAC_KEY, {}, body)
    assert (parsed.id, parsed.outcome, parsed.payment_intent_id) == (
        "AUTHORISATION:PSP1",
        PspOutcome.FAILED,
        "pi_1",
    )
    assert parsed.decline is not None and parsed.decline.decline_code == "insufficient_funds"
    tampered = {**signed, "success": "true"}
    with pytest.raises(InvalidWebhook):
        adyen_connector.webhook_events(
            HMAC_KEY, {}, json.dumps(notification_body([tampered])).encode()
        )
    with pytest.raises(InvalidWebhook):
        adyen_connector.webhook_events(HMAC_KEY, {}, b"not json")


def test_stripe_signature_is_checked_by_the_sdk():
    secret = "whsec_test_secret"
    payload = json.dumps(
        {
            "id": "evt_1",
            "object": "event",
            "type": "payment_intent.succeeded",
            "data": {
                "object": {
                    "id": "pi_stripe",
                    "object": "payment_intent",
                    "amount_received": 1000,
                    "latest_charge": "ch_s",
                    "metadata": {"payflow_payment_intent": "pi_1", "payflow_key": "pi_1:1:stripe"},
                }
            },
        }
    )
    timestamp = int(time.time())
    v1 = hmac.new(secret.encode(), f"{timestamp}.{payload}".encode(), hashlib.sha256).hexdigest()
    headers = {"stripe-signature": f"t={timestamp},v1={v1}"}
    (parsed,) = stripe_connector.webhook_events(secret, headers, payload.encode())
    assert (parsed.id, parsed.outcome, parsed.amount) == ("evt_1", PspOutcome.CAPTURED, 1000)
    with pytest.raises(InvalidWebhook):
        stripe_connector.webhook_events("whsec_other", headers, payload.encode())


def test_adyen_hmac_matches_adyens_documented_construction():
    # The fake signs independently of the SDK the connector verifies with.
    item = {
        "pspReference": "A",
        "merchantAccountCode": "M",
        "merchantReference": "R",
        "amount": {"value": 1, "currency": "EUR"},
        "eventCode": "CAPTURE",
        "success": "true",
    }
    expected = base64.b64encode(
        hmac.new(bytes.fromhex(HMAC_KEY), b"A::M:R:1:EUR:CAPTURE:true", hashlib.sha256).digest()
    ).decode()
    assert sign(item) == expected


def test_an_attempt_key_names_its_connector():
    assert connector_of("pi_1:3:razorpay_in") == "razorpay_in"
    assert connector_of("pi_1:capture") is None
    assert connector_of("re_1") is None and connector_of(None) is None
