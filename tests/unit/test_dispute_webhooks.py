"""Each provider's dispute and refund-failure webhooks, read by its connector into PayFlow's
terms (no sandbox): which dispute, which charge, which status, which refund."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from datetime import UTC, datetime
from typing import Any

import pytest

from chalicelib.connectors import adyen_connector, razorpay_connector, stripe_connector
from chalicelib.domain.disputes import DisputeReason, DisputeStatus
from chalicelib.domain.psp_events import PspOutcome
from tests.fakes.adyen_server import HMAC_KEY, MERCHANT_ACCOUNT, notification_body, sign

S = DisputeStatus


def razorpay(name: str, payload: dict[str, Any]) -> Any:
    body = json.dumps({"entity": "event", "event": name, "payload": payload}).encode()
    signature = hmac.new(b"rzp_secret", body, hashlib.sha256).hexdigest()
    headers = {"x-razorpay-signature": signature, "x-razorpay-event-id": f"evt_{name}"}
    (parsed,) = razorpay_connector.webhook_events("rzp_secret", headers, body)
    return parsed


def razorpay_dispute(status: str, phase: str = "chargeback", deducted: int = 0) -> Any:
    entity = {
        "id": "disp_1",
        "entity": "dispute",
        "payment_id": "pay_ABC",
        "amount": 5000,
        "currency": "INR",
        "amount_deducted": deducted,
        "reason_code": "13.1",
        "respond_by": 1_900_000_000,
        "status": status,
        "phase": phase,
    }
    return razorpay(f"payment.dispute.{status}", {"dispute": {"entity": entity}})


@pytest.mark.parametrize(
    ("status", "phase", "deducted", "expected"),
    [
        ("open", "chargeback", 0, S.NEEDS_RESPONSE),
        ("under_review", "pre_arbitration", 0, S.UNDER_REVIEW),
        ("won", "chargeback", 0, S.WON),
        ("lost", "chargeback", 5000, S.LOST),
        ("closed", "chargeback", 5000, S.LOST),
        ("closed", "chargeback", 0, S.WON),
        ("open", "retrieval", 0, S.WARNING_NEEDS_RESPONSE),
        ("closed", "fraud", 0, S.WARNING_CLOSED),
    ],
)
def test_razorpay_disputes_read_in_their_phase(status, phase, deducted, expected):
    event = razorpay_dispute(status, phase, deducted)
    assert event.outcome == PspOutcome.DISPUTE and event.dispute is not None
    report = event.dispute
    assert (report.reference, report.charge_id, report.status) == ("disp_1", "ch_ABC", expected)
    assert (report.amount, report.reason, report.due_by) == (
        5000,
        DisputeReason.PRODUCT_NOT_RECEIVED,
        1_900_000_000,
    )


def test_razorpay_action_required_asks_for_evidence_again():
    entity = {"id": "disp_1", "payment_id": "pay_ABC", "status": "open", "phase": "chargeback"}
    event = razorpay("payment.dispute.action_required", {"dispute": {"entity": entity}})
    assert event.dispute is not None and event.dispute.reopens
    assert not razorpay_dispute("open").dispute.reopens


def test_razorpay_refund_failed_names_the_payflow_refund():
    refund = {"id": "rfnd_1", "payment_id": "pay_ABC", "notes": {"payflow_key": "re_123"}}
    event = razorpay("refund.failed", {"refund": {"entity": refund}})
    assert (event.outcome, event.refund_id, event.id) == (
        PspOutcome.REFUND_FAILED,
        "re_123",
        "evt_refund.failed",
    )


def adyen(code: str, **extra: Any) -> Any:
    item: dict[str, Any] = {
        "amount": {"value": 3000, "currency": "EUR"},
        "eventCode": code,
        "eventDate": "2026-12-01T12:00:00+00:00",
        "merchantAccountCode": MERCHANT_ACCOUNT,
        "merchantReference": extra.pop("merchantReference", "pi_1:1:adyen"),
        "originalReference": "PAYPSP",
        "pspReference": "DISPUTEPSP",
        "reason": "",
        "success": extra.pop("success", "true"),
    }
    item["additionalData"] = {**extra}
    item["additionalData"]["hmacSignature"] = sign(item)
    body = json.dumps(notification_body([item])).encode()
    (parsed,) = adyen_connector.webhook_events(HMAC_KEY, {}, body)
    return parsed


@pytest.mark.parametrize(
    ("code", "dispute_status", "expected"),
    [
        ("REQUEST_FOR_INFORMATION", None, S.WARNING_NEEDS_RESPONSE),
        ("NOTIFICATION_OF_CHARGEBACK", "Undefended", S.NEEDS_RESPONSE),
        ("CHARGEBACK", "Undefended", S.NEEDS_RESPONSE),
        ("CHARGEBACK", "Accepted", S.LOST),
        ("INFORMATION_SUPPLIED", "Pending", S.UNDER_REVIEW),
        ("CHARGEBACK_REVERSED", "Won", S.WON),
        ("SECOND_CHARGEBACK", "Lost", S.LOST),
        ("PREARBITRATION_WON", "Won", S.WON),
    ],
)
def test_adyen_dispute_codes(code, dispute_status, expected):
    extra = {"chargebackReasonCode": "4837", "defensePeriodEndsAt": "2026-12-18T10:15:30+01:00"}
    if dispute_status:
        extra["disputeStatus"] = dispute_status
    event = adyen(code, **extra)
    assert event.outcome == PspOutcome.DISPUTE and event.dispute is not None
    report = event.dispute
    assert (report.reference, report.charge_id, report.status) == (
        "DISPUTEPSP",
        "ch_PAYPSP",
        expected,
    )
    assert report.reason == DisputeReason.FRAUDULENT and report.network_reason_code == "4837"
    assert report.due_by == int(datetime(2026, 12, 18, 9, 15, 30, tzinfo=UTC).timestamp())
    assert event.id == f"{code}:DISPUTEPSP"


def test_adyen_refund_failures():
    failed = adyen("REFUND_FAILED", merchantReference="re_9")
    refused = adyen("REFUND", merchantReference="re_9", success="false")
    accepted = adyen("REFUND", merchantReference="re_9")
    assert (failed.outcome, failed.refund_id, failed.failure_reason) == (
        PspOutcome.REFUND_FAILED,
        "re_9",
        "unknown",
    )
    assert (refused.outcome, refused.failure_reason) == (PspOutcome.REFUND_FAILED, "declined")
    assert accepted.outcome == PspOutcome.OTHER


def stripe_event(event_type: str, obj: dict[str, Any]) -> Any:
    secret = "whsec_unit"
    payload = json.dumps(
        {"id": "evt_1", "object": "event", "type": event_type, "data": {"object": obj}}
    )
    stamp = int(time.time())
    v1 = hmac.new(secret.encode(), f"{stamp}.{payload}".encode(), hashlib.sha256).hexdigest()
    headers = {"stripe-signature": f"t={stamp},v1={v1}"}
    (parsed,) = stripe_connector.webhook_events(secret, headers, payload.encode())
    return parsed


def test_stripe_disputes_and_failed_refunds():
    dispute = stripe_event(
        "charge.dispute.closed",
        {
            "id": "du_1",
            "object": "dispute",
            "charge": "ch_1",
            "amount": 700,
            "status": "lost",
            "reason": "duplicate",
            "payment_intent": "pi_stripe",
        },
    )
    assert dispute.dispute is not None
    assert (dispute.dispute.reference, dispute.dispute.status, dispute.dispute.reason) == (
        "du_1",
        S.LOST,
        DisputeReason.DUPLICATE,
    )
    prevented = stripe_event(
        "charge.dispute.created",
        {"id": "du_2", "object": "dispute", "charge": "ch_1", "status": "prevented"},
    )
    assert prevented.outcome == PspOutcome.OTHER
    refund = stripe_event(
        "charge.refund.updated",
        {
            "id": "re_s",
            "object": "refund",
            "status": "failed",
            "failure_reason": "lost_or_stolen_card",
            "metadata": {"payflow_key": "re_payflow"},
        },
    )
    assert (refund.outcome, refund.refund_id, refund.failure_reason) == (
        PspOutcome.REFUND_FAILED,
        "re_payflow",
        "lost_or_stolen_card",
    )
    succeeded = stripe_event(
        "charge.refund.updated", {"id": "re_s", "object": "refund", "status": "succeeded"}
    )
    assert succeeded.outcome == PspOutcome.OTHER
