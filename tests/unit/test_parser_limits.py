"""The request parser's limits: sizes, counts and depths are refused before anything is built,
and no input makes it recurse past its bound or raise anything but a Stripe-shaped error."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.api import params as p
from chalicelib.api.forms import (
    MAX_BODY_BYTES,
    MAX_DEPTH,
    MAX_PARAMETERS,
    check_size,
    decode_pairs,
    parse_body,
    parse_query,
)
from chalicelib.api.http import check_path_ids
from chalicelib.errors import InvalidRequestError, PayFlowError, RequestTooLarge, ResourceMissing

FORM = "application/x-www-form-urlencoded"
JSON = "application/json"


def test_a_declared_length_over_the_limit_is_413_without_reading_the_body():
    with pytest.raises(RequestTooLarge) as error:
        check_size(str(MAX_BODY_BYTES + 1), None)
    assert error.value.http_status == 413
    assert error.value.to_body()["error"]["type"] == "invalid_request_error"


def test_a_body_over_the_limit_is_413_whatever_it_declares():
    with pytest.raises(RequestTooLarge):
        parse_body(FORM, b"a=" + b"x" * MAX_BODY_BYTES)


@pytest.mark.parametrize("depth", [MAX_DEPTH, 500, 100_000])
def test_deep_form_names_are_400(depth):
    name = "a" + "[b]" * depth
    with pytest.raises(InvalidRequestError) as error:
        parse_body(FORM, f"{name}=1".encode())
    assert error.value.code == "parameters_exceed_max_depth"


def test_the_deepest_allowed_form_name_parses():
    name = "a" + "[b]" * (MAX_DEPTH - 1)
    node = parse_body(FORM, f"{name}=1".encode())
    for _ in range(MAX_DEPTH - 1):
        node = node["a" if "a" in node else "b"]
    assert node == {"b": "1"} or node == "1"


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 2000, 200_000])
def test_deep_json_is_400_not_a_recursion_error(depth):
    body = ("[" * depth + "]" * depth).encode()
    with pytest.raises(InvalidRequestError) as error:
        parse_body(JSON, b'{"a":' + body + b"}")
    assert error.value.code == "parameters_exceed_max_depth"


def test_brackets_inside_json_strings_do_not_count():
    body = {"description": "[" * 5000 + "{" * 5000}
    assert parse_body(JSON, json.dumps(body).encode()) == body


def test_too_many_form_fields_are_400_before_parsing():
    body = "&".join(f"k{i}=v" for i in range(MAX_PARAMETERS + 1)).encode()
    with pytest.raises(InvalidRequestError) as error:
        parse_body(FORM, body)
    assert error.value.code == "parameters_exceed_max"


def test_too_many_json_values_are_400():
    body = json.dumps({"a": list(range(MAX_PARAMETERS + 1))}).encode()
    with pytest.raises(InvalidRequestError) as error:
        parse_body(JSON, body)
    assert error.value.code == "parameters_exceed_max"


def test_deep_and_many_query_parameters_are_400():
    with pytest.raises(InvalidRequestError):
        parse_query({"a" + "[b]" * 600: ["1"]})
    with pytest.raises(InvalidRequestError):
        parse_query({f"k{i}": ["1"] for i in range(MAX_PARAMETERS + 1)})


@pytest.mark.parametrize(
    "body",
    [
        '{"amount": 1}'.encode("utf-16"),
        '{"amount": 1}'.encode("utf-32"),
        '{"amount": 1}'.encode("utf-16-le"),
        b'\xef\xbb\xbf{"amount": 1}',
        b'{"description": "\\ud800"}',
    ],
)
def test_json_is_utf8_and_valid_unicode_only(body):
    with pytest.raises(InvalidRequestError) as error:
        parse_body(JSON, body)
    assert error.value.http_status == 400


def test_percent_escapes_that_are_not_utf8_are_400():
    with pytest.raises(InvalidRequestError) as error:
        parse_body(FORM, b"description=%ff%fe")
    assert error.value.code == "parameter_invalid_encoding"


@pytest.mark.parametrize("digit_index", ["\u00b2", "\u0663", "\uff11"])
def test_only_ascii_digits_make_a_list_index(digit_index):
    assert decode_pairs([(f"a[{digit_index}]", "x")]) == {"a": {digit_index: "x"}}


@pytest.mark.parametrize(
    "amount", ["\u0661\u0660\u0660", "\uff11\uff10\uff10", "1\u00b2", "+100", "1_000", "10" * 20]
)
def test_amounts_are_ascii_digits_only(amount):
    with pytest.raises(InvalidRequestError) as error:
        p.validate(p.CreatePaymentIntent, {"amount": amount, "currency": "usd"})
    assert (error.value.code, error.value.param) == ("parameter_invalid_integer", "amount")


@pytest.mark.parametrize("value", [2**63, -(2**63), 10**40])
def test_integers_are_64_bit(value):
    with pytest.raises(InvalidRequestError) as error:
        p.validate(p.ResendWebhookDeliveries, {"since": value})
    assert error.value.param == "since"


@pytest.mark.parametrize("key", ["", " ", "\x00", "a\nb", "\u200b", "a[b]", "tab\t"])
def test_metadata_keys_are_printable_and_non_empty(key):
    with pytest.raises(InvalidRequestError) as error:
        p.validate(p.CreatePaymentIntent, {"amount": 1, "currency": "usd", "metadata": {key: "v"}})
    assert (error.value.code, error.value.param) == ("parameter_invalid_metadata", "metadata")


def test_printable_unicode_metadata_keys_are_fine():
    parsed = p.validate(
        p.CreatePaymentIntent, {"amount": 1, "currency": "usd", "metadata": {"clé": "é"}}
    )
    assert parsed.metadata == {"clé": "é"}


_NAMES = st.text(alphabet="ab[]0%&=\u0663\x00", max_size=40)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(_NAMES, st.text(max_size=10)), max_size=30))
def test_any_pairs_decode_or_raise_a_stripe_error(pairs):
    try:
        decode_pairs(pairs)
    except PayFlowError as error:
        assert 400 <= error.http_status < 500


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=300) | st.text(alphabet='[]{}":,0a\\ ', max_size=300).map(str.encode))
def test_any_body_parses_or_raises_a_stripe_error(body):
    for content_type in (FORM, JSON, None):
        try:
            parse_body(content_type, body)
        except PayFlowError as error:
            assert 400 <= error.http_status < 500


@pytest.mark.parametrize(
    "value", ["pi_x/cancel", "?", "pi_x%2Fcancel", "pi x", "..", "pi_\u0663", "a" * 256, ""]
)
def test_path_parameters_no_id_can_hold_are_unknown_ids(value):
    # As API Gateway hands them over: `%2F` arrives decoded inside one path parameter.
    with pytest.raises(ResourceMissing) as error:
        check_path_ids("/v1/payment_intents/{intent}/cancel", {"intent": value})
    assert error.value.http_status == 404 and error.value.code == "resource_missing"
    assert "No such payment_intent" in error.value.message


def test_real_ids_and_names_pass_the_path_check():
    check_path_ids(
        "/v1/webhook_deliveries/{id}",
        {"id": "wd_0VcXdJNL3Nckwtqwm7QX0lOT0VcXdJNL3Nckwtqwm7QX0lOT"},
    )
    check_path_ids("/v1/connectors/{connector}", {"connector": "stripe_eu-1"})
