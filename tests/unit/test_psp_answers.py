"""What is kept of a PSP's raw answer, and what of a Step Functions history a page shows."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from chalicelib.domain.executions import CONNECTOR_STATES, event_row, execution_view
from chalicelib.domain.psp_answers import MAX_BYTES, REDACTED, excerpt

ROOT = Path(__file__).resolve().parents[2]


def test_secrets_and_card_data_are_dropped_by_key():
    # Given: a Stripe-like answer with a client secret and card details
    answer = {
        "id": "pi_123",
        "client_secret": "pi_123_secret_abc",
        "status": "succeeded",
        "payment_method": {"card": {"number": "4242424242424242", "cvc": "123", "last4": "4242"}},
        "additionalData": {"cardNumber": "4111111111111111", "expiryMonth": "03"},
        "headers": {"Authorization": "Bearer sk_live_x", "X-API-Key": "k"},
    }

    # When
    kept = excerpt(answer)

    # Then
    text = json.dumps(kept)
    assert kept is not None and kept["id"] == "pi_123" and kept["status"] == "succeeded"
    assert kept["payment_method"] == {"card": {"last4": "4242"}}
    assert kept["additionalData"] == {}
    assert "secret" not in text and "sk_live" not in text and "X-API-Key" not in text
    assert "4242424242424242" not in text and "4111111111111111" not in text


def test_a_card_number_inside_a_message_is_masked_but_a_reference_of_digits_is_kept():
    # 4242424242424242 passes the card checksum; Adyen-style pspReference 8815658961765251
    # does not
    kept = excerpt({"message": "card 4242424242424242 refused", "pspReference": "8815658961765251"})
    assert kept == {"message": f"card {REDACTED} refused", "pspReference": "8815658961765251"}
    assert excerpt({"pan_like": 4242424242424242}) == {"pan_like": REDACTED}


def test_an_answer_is_bounded_and_says_what_it_left_out():
    # Given: an answer far over the bound
    answer = {f"field_{i}": "x" * 150 for i in range(100)}
    answer["items"] = list(range(50))  # type: ignore[assignment]

    # When
    kept = excerpt(answer)

    # Then
    assert kept is not None
    assert len(json.dumps(kept, separators=(",", ":")).encode()) <= MAX_BYTES
    assert kept["field_0"] == "x" * 150
    assert "field_99" not in kept
    assert kept["_omitted"] == 101 - (len(kept) - 1) and kept["_omitted"] > 80
    long_text = excerpt({"m": "y" * 1000})
    assert long_text is not None and len(long_text["m"]) == 200
    deep = excerpt({"a": {"b": {"c": {"d": {"e": 1}}}}, "l": list(range(12))})
    assert deep == {"a": {"b": {"c": {"d": "{…}"}}}, "l": [*range(10), "… 2 more"]}
    assert excerpt(None) is None and excerpt("plain text") == {"answer": "plain text"}


def test_a_history_event_names_its_state_connector_and_error():
    at = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    entered = {
        "id": 3,
        "type": "TaskStateEntered",
        "timestamp": at,
        "stateEnteredEventDetails": {
            "name": "Authorize",
            "input": json.dumps({"candidates": ["sim_a", "sim_b"], "index": 1}),
        },
    }
    failed = {
        "id": 5,
        "type": "TaskFailed",
        "timestamp": at,
        "taskFailedEventDetails": {"error": "PspTimeout", "cause": "c" * 1000},
    }
    assert event_row(entered) == {
        "id": 3,
        "type": "TaskStateEntered",
        "timestamp_ms": 1_796_126_400_000,
        "state": "Authorize",
        "connector": "sim_b",
    }
    row = event_row(failed)
    assert row["error"] == "PspTimeout" and len(row["cause"]) == 300
    bad_input = {"id": 1, "type": "PassStateEntered", "stateEnteredEventDetails": {"input": "{"}}
    assert "connector" not in event_row(bad_input)
    # Finalize's input points at a candidate too, but it calls no connector
    finalize = {**entered, "stateEnteredEventDetails": {**entered["stateEnteredEventDetails"]}}
    finalize["stateEnteredEventDetails"]["name"] = "Finalize"
    assert "connector" not in event_row(finalize)


def test_the_states_that_call_a_connector_are_the_state_machines():
    definition = (ROOT / "statemachines" / "payment.asl.json").read_text()
    for state in CONNECTOR_STATES:
        assert f'"{state}": {{' in definition
        assert '"Type": "Task"' in definition.split(f'"{state}": {{')[1][:40]


def test_an_execution_step_functions_no_longer_has_says_so():
    assert execution_view("pi_1-attempt-1", 1, None)["status"] == "not_found"
    view = execution_view(
        "pi_1-attempt-1",
        1,
        {
            "execution": {"executionArn": "arn:x", "status": "SUCCEEDED", "startDate": 1.5},
            "events": [],
        },
    )
    assert view["status"] == "succeeded" and view["started_ms"] == 1500
    assert view["stopped_ms"] is None
