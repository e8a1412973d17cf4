"""Lambda's FilterCriteria as the sandbox's pollers apply them (sandbox/event_filters.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from payflow.sandbox.event_filters import FilterPatternError, record_filter

ROOT = Path(__file__).resolve().parents[2]

INSERTED_EVENT = {
    "eventName": "INSERT",
    "dynamodb": {
        "Keys": {"pk": {"S": "evt_1"}},
        "NewImage": {"kind": {"S": "event"}, "sk": {"S": "attempt#1"}, "tags": {"SS": ["a", "b"]}},
    },
}
MODIFIED_INTENT = {
    "eventName": "MODIFY",
    "dynamodb": {"NewImage": {"sk": {"S": "payment_intent"}, "status": {"S": "processing"}}},
}
REMOVED = {"eventName": "REMOVE", "dynamodb": {"OldImage": {"sk": {"S": "refund"}}}}


def matching(patterns: list[Any], *records: dict[str, Any]) -> list[bool]:
    test = record_filter([json.dumps(p) for p in patterns])
    assert test is not None
    return [test(r) for r in records]


def test_no_patterns_pass_everything() -> None:
    assert record_filter([]) is None


def template_patterns(function: str) -> list[str]:
    """The FilterCriteria patterns of `function`'s event source in infra/resources.json."""
    template = json.loads((ROOT / "infra" / "resources.json").read_text())
    (source,) = template["Resources"][function]["Properties"]["Events"].values()
    return [f["Pattern"] for f in source["Properties"]["FilterCriteria"]["Filters"]]


ROUTING_DECISION = {
    "eventName": "INSERT",
    "dynamodb": {"NewImage": {"sk": {"S": "routing#0001"}, "kind": {"S": "routing"}}},
}


def test_the_templates_patterns_pick_the_records_their_functions_read() -> None:
    records = (INSERTED_EVENT, MODIFIED_INTENT, REMOVED, ROUTING_DECISION)

    def matches(function: str) -> list[bool]:
        test = record_filter(template_patterns(function))
        assert test is not None
        return [test(r) for r in records]

    # The relay reads inserted events; the resume road PaymentIntents entering processing;
    # the rollup inserted attempts and routing decisions (the confirm handler's calls) and
    # refunds. A REMOVE has no NewImage: nothing under it matches.
    assert matches("RelayEvents") == [True, False, False, False]
    assert matches("ResumePayments") == [False, True, False, False]
    assert matches("RollupPayments") == [True, False, False, True]


@pytest.mark.parametrize(
    ("leaf", "expected"),
    [
        (["event"], True),
        (["EVENT"], False),
        ([{"equals-ignore-case": "EVENT"}], True),
        ([{"prefix": "ev"}], True),
        ([{"suffix": "ent"}], True),
        ([{"suffix": "x"}, "event"], True),
        ([{"anything-but": ["event", "other"]}], False),
        ([{"anything-but": "other"}], True),
        ([{"exists": True}], True),
        ([{"exists": False}], False),
        ([1], False),
    ],
)
def test_a_leaf_matches_by_any_of_its_values(leaf: list[Any], expected: bool) -> None:
    pattern = {"dynamodb": {"NewImage": {"kind": {"S": leaf}}}}

    assert matching([pattern], INSERTED_EVENT) == [expected]


def test_a_missing_field_matches_only_exists_false() -> None:
    absent = {"dynamodb": {"NewImage": {"status": {"S": [{"exists": False}]}}}}
    anything_but = {"dynamodb": {"NewImage": {"status": {"S": [{"anything-but": "x"}]}}}}

    assert matching([absent], INSERTED_EVENT, MODIFIED_INTENT) == [True, False]
    assert matching([anything_but], INSERTED_EVENT) == [False]


def test_a_list_value_matches_when_any_element_does() -> None:
    pattern = {"dynamodb": {"NewImage": {"tags": {"SS": ["b"]}}}}

    assert matching([pattern], INSERTED_EVENT) == [True]


def test_an_sqs_body_is_matched_as_json_when_it_is_an_object() -> None:
    pattern = {"body": {"type": ["charge.succeeded"]}}
    json_body = {"messageId": "1", "body": json.dumps({"type": "charge.succeeded"})}
    text_body = {"messageId": "2", "body": "charge.succeeded"}
    as_text = {"body": ["charge.succeeded"]}

    assert matching([pattern], json_body, text_body) == [True, False]
    assert matching([as_text], json_body, text_body) == [False, True]


def test_numbers_match_numbers_only() -> None:
    pattern = {"body": {"amount": [1099]}}

    assert matching(
        [pattern],
        {"body": json.dumps({"amount": 1099})},
        {"body": json.dumps({"amount": "1099"})},
        {"body": json.dumps({"amount": True})},
    ) == [True, False, False]


@pytest.mark.parametrize(
    "pattern",
    [
        "not json",
        "[1]",
        json.dumps({"body": "x"}),
        json.dumps({"body": []}),
        json.dumps({"body": [{"numeric": [">", 0]}]}),
        json.dumps({"body": [{"wildcard": "a*"}]}),
        json.dumps({"body": [{"prefix": "a", "suffix": "b"}]}),
        json.dumps({"body": [{"anything-but": [{"prefix": "a"}]}]}),
    ],
)
def test_a_pattern_the_sandbox_cannot_evaluate_as_lambda_does_is_refused(pattern: str) -> None:
    with pytest.raises(FilterPatternError):
        record_filter([pattern])
