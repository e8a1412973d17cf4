"""Stripe's form encoding, JSON bodies and parameter validation."""

from __future__ import annotations

import pytest

from chalicelib.api import params as p
from chalicelib.api.forms import decode_pairs, parse_body
from chalicelib.errors import InvalidRequestError, ParameterMissing, ParameterUnknown


def test_brackets_nest_into_hashes_and_lists():
    decoded = decode_pairs(
        [
            ("amount", "2000"),
            ("metadata[order_id]", "42"),
            ("payment_method_types[0]", "card"),
            ("payment_method_types[1]", "upi"),
            ("expand[]", "a"),
            ("expand[]", "b"),
            ("a[b][c]", "d"),
        ]
    )
    assert decoded == {
        "amount": "2000",
        "metadata": {"order_id": "42"},
        "payment_method_types": ["card", "upi"],
        "expand": ["a", "b"],
        "a": {"b": {"c": "d"}},
    }


def test_list_indexes_sort_numerically():
    pairs = [(f"x[{i}]", str(i)) for i in (10, 2, 1)]
    assert decode_pairs(pairs) == {"x": ["1", "2", "10"]}


def test_a_plain_name_sent_twice_is_a_list_never_its_last_value():
    # OpenAPI's form style sends an array as a repeated name
    pairs = [("enabled_events", "charge.succeeded"), ("enabled_events", "charge.failed")]
    assert decode_pairs(pairs) == {"enabled_events": ["charge.succeeded", "charge.failed"]}
    # and a scalar sent twice is refused by its model, naming it
    raw = decode_pairs([("amount", "100"), ("amount", "200"), ("currency", "usd")])
    with pytest.raises(InvalidRequestError) as refused:
        p.validate(p.CreatePaymentIntent, raw)
    assert refused.value.param == "amount"


def test_blank_metadata_then_keys_is_a_hash():
    assert decode_pairs([("metadata", ""), ("metadata[a]", "1")]) == {"metadata": {"a": "1"}}


@pytest.mark.parametrize("name", ["a]b", "[a]", "a[b", "a[b]c"])
def test_malformed_names_are_400(name):
    with pytest.raises(InvalidRequestError):
        decode_pairs([(name, "1")])


def test_form_and_json_bodies_parse_to_the_same_params():
    form = parse_body("application/x-www-form-urlencoded", b"amount=2000&currency=usd&confirm=true")
    body = parse_body(
        "application/json; charset=utf-8", b'{"amount":2000,"currency":"usd","confirm":true}'
    )
    assert p.validate(p.CreatePaymentIntent, form) == p.validate(p.CreatePaymentIntent, body)


@pytest.mark.parametrize(
    ("content_type", "body", "code"),
    [
        ("application/json", b"{not json", "parameter_invalid_json"),
        ("application/json", b"[1, 2]", "parameter_invalid_json"),
        ("text/plain", b"amount=1", "content_type_unsupported"),
        ("application/x-www-form-urlencoded", b"\xff\xfe", None),
    ],
)
def test_unreadable_bodies_are_400(content_type, body, code):
    with pytest.raises(InvalidRequestError) as error:
        parse_body(content_type, body)
    assert error.value.http_status == 400
    if code:
        assert error.value.code == code


def test_empty_body_is_no_params():
    assert parse_body(None, b"") == {}
    assert parse_body("application/json", b"  ") == {}


@pytest.mark.parametrize(
    ("raw", "code", "param"),
    [
        ({"currency": "usd"}, "parameter_missing", "amount"),
        ({"amount": 100}, "parameter_missing", "currency"),
        ({"amount": "abc", "currency": "usd"}, "parameter_invalid_integer", "amount"),
        ({"amount": 20.5, "currency": "usd"}, "parameter_invalid_integer", "amount"),
        ({"amount": True, "currency": "usd"}, "parameter_invalid_integer", "amount"),
        ({"amount": 0, "currency": "usd"}, "amount_too_small", "amount"),
        ({"amount": -5, "currency": "usd"}, "amount_too_small", "amount"),
        ({"amount": 100_000_000, "currency": "usd"}, "amount_too_large", "amount"),
        ({"amount": 1, "currency": "usdx"}, "parameter_invalid_currency", "currency"),
        ({"amount": 1, "currency": "usd", "bogus": 1}, "parameter_unknown", "bogus"),
        (
            {"amount": 1, "currency": "usd", "capture_method": "later"},
            "parameter_invalid_string",
            "capture_method",
        ),
        (
            {"amount": 1, "currency": "usd", "confirm": "yes"},
            "parameter_invalid_boolean",
            "confirm",
        ),
        (
            {"amount": 1, "currency": "usd", "metadata": {"k" * 41: "v"}},
            "parameter_invalid_metadata",
            "metadata",
        ),
        (
            {"amount": 1, "currency": "usd", "metadata": {"k": "v" * 501}},
            "parameter_invalid_metadata",
            "metadata",
        ),
        (
            {"amount": 1, "currency": "usd", "metadata": {str(i): "v" for i in range(51)}},
            "parameter_invalid_metadata",
            "metadata",
        ),
        (
            {"amount": 1, "currency": "usd", "payment_method_types": ["cheque"]},
            "parameter_invalid_string",
            "payment_method_types[0]",
        ),
    ],
)
def test_invalid_create_params_name_the_parameter(raw, code, param):
    with pytest.raises(InvalidRequestError) as error:
        p.validate(p.CreatePaymentIntent, raw)
    assert (error.value.code, error.value.param) == (code, param)
    assert error.value.to_body()["error"]["type"] == "invalid_request_error"


def test_metadata_at_the_limits_is_accepted():
    metadata = {f"k{i:038d}": "v" * 500 for i in range(50)}
    parsed = p.validate(
        p.CreatePaymentIntent, {"amount": 1, "currency": "USD", "metadata": metadata}
    )
    assert parsed.currency == "usd" and parsed.metadata == metadata


def test_missing_and_unknown_are_their_own_error_classes():
    with pytest.raises(ParameterMissing):
        p.validate(p.CreatePaymentIntent, {})
    with pytest.raises(ParameterUnknown):
        p.validate(p.ListParams, {"limit": "5", "page": "2"})


@pytest.mark.parametrize("limit", ["0", "101", "ten"])
def test_list_limit_must_be_1_to_100(limit):
    with pytest.raises(InvalidRequestError) as error:
        p.validate(p.ListParams, {"limit": limit})
    assert error.value.param == "limit"
