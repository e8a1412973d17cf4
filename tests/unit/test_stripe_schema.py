"""The Stripe schema validator and the body recorder reject what Stripe would never send."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from payflow.stripe_spec import nullable_to_json_schema
from tests.conformance.recorder import BodyRecorder
from tests.conformance.schemas import Deviation, StripeSchemas, UnknownObject


@pytest.fixture(scope="module")
def schemas() -> StripeSchemas:
    return StripeSchemas.load()


def refund(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": "re_1",
        "object": "refund",
        "amount": 500,
        "balance_transaction": None,
        "charge": "ch_1",
        "created": 1_700_000_000,
        "currency": "usd",
        "metadata": {},
        "payment_intent": "pi_1",
        "reason": None,
        "receipt_number": None,
        "source_transfer_reversal": None,
        "status": "succeeded",
        "transfer_reversal": None,
    }
    body.update(changes)
    return {k: v for k, v in body.items() if v is not ...}


def test_nullable_becomes_a_null_permitting_type():
    # When
    converted = nullable_to_json_schema(
        {
            "properties": {
                "a": {"type": "string", "nullable": True},
                "b": {"type": "string", "enum": ["x"], "nullable": True},
                "c": {"anyOf": [{"type": "string"}], "nullable": True},
                "d": {"$ref": "#/components/schemas/x", "nullable": True},
            }
        }
    )

    # Then
    props = converted["properties"]
    assert props["a"] == {"type": ["string", "null"]}
    assert props["b"] == {"type": ["string", "null"], "enum": ["x", None]}
    assert props["c"] == {"anyOf": [{"type": "string"}, {"type": "null"}]}
    assert props["d"] == {"anyOf": [{"$ref": "#/components/schemas/x"}, {"type": "null"}]}


def test_a_conforming_refund_has_no_deviations(schemas: StripeSchemas):
    assert schemas.deviations(refund()) == []


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (refund(failure_reason=None), ("refund", "failure_reason")),
        (refund(amount="500"), ("refund", "amount")),
        (refund(currency=...), ("refund", "currency")),
        (refund(disabled_reason="x"), ("refund", "disabled_reason")),
        (refund(reason="because"), ("refund", "reason")),
        (
            {"error": {"type": "invalid_request_error", "message": "m", "param": None}},
            ("error", "error.param"),
        ),
        (
            {"object": "list", "url": "/v1/refunds", "has_more": False, "data": [refund(id=1)]},
            ("refund", "id"),
        ),
    ],
    ids=["null", "type", "required", "extra", "enum", "error-param", "list-item"],
)
def test_a_non_conforming_body_is_rejected(
    schemas: StripeSchemas, body: dict[str, Any], expected: tuple[str, str]
):
    # When
    found = schemas.deviations(body)

    # Then
    assert [d.key for d in found] == [expected], found


def test_an_events_object_is_validated_by_its_own_type(schemas: StripeSchemas):
    # Given an event whose data.object is a refund with a field Stripe lacks
    event = {
        "id": "evt_1",
        "object": "event",
        "api_version": "2026-07-29.dahlia",
        "created": 1,
        "data": {"object": refund(extra=1)},
        "livemode": False,
        "pending_webhooks": 0,
        "request": {"id": None, "idempotency_key": None},
        "type": "refund.created",
    }

    # Then
    assert schemas.deviations(event) == [Deviation("refund", "extra", "not in Stripe's schema")]


def test_expandable_fields_report_the_expanded_objects_problem(schemas: StripeSchemas):
    # Given a refund whose payment_intent is expanded but incomplete
    body = refund(payment_intent={"id": "pi_1", "object": "payment_intent", "created": 1})

    # Then the deviation names the embedded object's missing fields, not "anyOf failed"
    assert {d.key for d in schemas.deviations(body)} == {
        ("payment_intent", "livemode"),
        ("payment_intent", "status"),
    }


def test_unknown_objects_and_lists_are_not_silently_accepted(schemas: StripeSchemas):
    with pytest.raises(UnknownObject):
        schemas.deviations({"object": "teapot"})
    with pytest.raises(UnknownObject):
        schemas.deviations({"object": "list", "url": "/v1/teapots", "data": [], "has_more": False})


def test_the_recorder_fails_deviations_and_counts_extensions(schemas: StripeSchemas):
    # Given
    recorder = BodyRecorder(lambda: schemas)
    recorder.current_test = "t"

    # When
    recorder.record(refund(), source="ok")
    recorder.record(refund(failure_reason=None), source="bad")
    recorder.record({"object": "teapot"}, source="unknown")
    recorder.record({"object": "payment_attempt", "attempt": 1}, source="extension")
    recorder.record(
        {
            "id": "pi_1",
            "object": "payment_intent",
            "created": 1,
            "livemode": False,
            "status": "requires_payment_method",
            "last_payment_error": {"type": "card_error", "param": None},
        },
        source="known",
    )

    # Then
    assert recorder.validated == 3 and recorder.extensions == 1
    # (no deviation is tolerated any more: the null param that once was fails like any other)
    assert [(f.source, f.test) for f in recorder.failures] == [
        ("bad", "t"),
        ("unknown", "t"),
        ("known", "t"),
    ]
    assert recorder.known == {}
    assert "3 bodies validated" in recorder.summary()[0]


def test_the_runtimes_own_500_is_counted_not_matched(schemas: StripeSchemas):
    # Given Chalice's answer to a view that raised past PayFlow (a simulated crash)
    recorder = BodyRecorder(lambda: schemas)
    response = requests.Response()
    response.status_code = 500
    response.headers["Content-Type"] = "application/json"
    response._content = b'{"Code": "InternalServerError", "Message": "An internal error."}'
    response.url = "http://127.0.0.1:1/v1/payment_intents"
    response.request = requests.Request("POST", response.url).prepare()

    # When
    recorder.on_response(response)

    # Then
    assert (recorder.crashes, recorder.validated, recorder.failures) == (1, 0, [])
