"""Stripe's search query language: what the parser accepts, what it refuses, how clauses match."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.domain.search import (
    MAX_CLAUSES,
    SEARCHABLE,
    FieldType,
    Operator,
    matches,
    parse,
    required_value,
)
from chalicelib.errors import ParameterInvalid


def payment_intent(**changes: Any) -> dict[str, Any]:
    body = {
        "id": "pi_1",
        "object": "payment_intent",
        "amount": 2000,
        "created": 1_700_000_000,
        "currency": "usd",
        "customer": None,
        "metadata": {"order_id": "6735", "channel": "web"},
        "status": "succeeded",
    }
    return {**body, **changes}


def hits(query: str, obj: dict[str, Any], kind: str = "payment_intent") -> bool:
    return matches(parse(query, kind), obj)


def refusal(query: str, kind: str = "payment_intent") -> str:
    with pytest.raises(ParameterInvalid) as raised:
        parse(query, kind)
    assert raised.value.param == "query"
    assert raised.value.to_body()["error"]["type"] == "invalid_request_error"
    return raised.value.message


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ('status:"succeeded"', True),
        ("status:'succeeded'", True),
        ('status:"SUCCEEDED"', True),  # token exact match is case-insensitive
        ('status:"canceled"', False),
        ('currency:"usd"', True),
        ("amount:2000", True),
        ('amount:"2000"', True),  # quotes are optional on numbers
        ("amount>1999", True),
        ("amount>2000", False),
        ("amount>=2000", True),
        ("amount<2000", False),
        ("amount<=2000", True),
        ("created>1699999999", True),
        ("created<1700000000", False),
        ("metadata['order_id']:'6735'", True),
        ('metadata["order_id"]:"6735"', True),
        ("metadata['order_id']:'6736'", False),
        ("metadata['missing']:'x'", False),
        ("metadata['missing']:null", True),
        ("-metadata['order_id']:null", True),  # Stripe's "the key is present"
        ("-metadata['missing']:null", False),
        ("customer:null", True),
        ("-customer:null", False),
        ('-currency:"usd"', False),
        ('-currency:"jpy"', True),
        ("-amount>5000", True),
    ],
)
def test_a_single_clause_matches_as_stripe_documents(query: str, expected: bool):
    # Given a succeeded 20.00 USD PaymentIntent with order metadata
    obj = payment_intent()

    # When / Then
    assert hits(query, obj) is expected


def test_a_space_joins_with_and_and_the_keywords_are_case_insensitive():
    # Given
    obj = payment_intent()

    # When / Then
    assert hits('status:"succeeded" amount>1000', obj)
    assert hits('status:"succeeded" and amount>1000', obj)
    assert not hits('status:"succeeded" AND amount>5000', obj)
    assert hits('status:"canceled" or amount>1000', obj)
    assert not hits('status:"canceled" OR amount>5000', obj)


def test_quotes_escape_with_a_backslash():
    # Given a metadata value holding both quote characters
    obj = payment_intent(metadata={"title": "the \"Sky\" and 'Sea'"})

    # When / Then
    assert hits(r"""metadata['title']:"the \"Sky\" and 'Sea'" """, obj)
    assert hits(r"""metadata['title']:'the "Sky" and \'Sea\''""", obj)


def test_an_expanded_object_compares_by_its_id():
    # Given a PaymentIntent whose customer was expanded into an object
    obj = payment_intent(customer={"id": "cus_1", "object": "customer"})

    # When / Then
    assert hits('customer:"cus_1"', obj)
    assert not hits("customer:null", obj)


def customer(**changes: Any) -> dict[str, Any]:
    body = {
        "id": "cus_1",
        "created": 1_700_000_000,
        "email": "Amy.Rider@RocketRides.io",
        "name": "one two three four",
        "phone": "+1 555 0100",
        "metadata": {},
    }
    return {**body, **changes}


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ('name:"one two three"', True),  # the words, in order
        ('name:"ONE two"', True),
        ('name:"two one"', False),
        ('name:"one three"', False),  # consecutive, not just in order
        ('name:"thr"', False),  # a word, not a prefix
        ('name~"thr"', True),
        ('email~"rocketrides"', True),
        ('email~"ROCKET"', True),
        ('email:"amy.rider@rocketrides.io"', True),
        ('email:"bob@rocketrides.io"', False),
        ('phone:"+1 555 0100"', True),
        ("email:null", False),
    ],
)
def test_string_fields_match_words_in_order_or_a_substring(query: str, expected: bool):
    # Given / When / Then
    assert hits(query, customer(), "customer") is expected


def test_an_empty_string_counts_as_null():
    assert hits("email:null", customer(email=""), "customer")
    assert hits("email:null", customer(email=None), "customer")


def charge(**changes: Any) -> dict[str, Any]:
    body = {
        "id": "ch_1",
        "amount": 1000,
        "amount_refunded": 0,
        "refunded": False,
        "disputed": False,
        "created": 1_700_000_000,
        "currency": "eur",
        "customer": "cus_1",
        "metadata": {},
        "status": "succeeded",
        "billing_details": {"address": {"postal_code": "10115"}},
        "payment_method_details": {
            "type": "card",
            "card": {"last4": "4242", "brand": "visa", "exp_month": 12, "exp_year": 2034},
        },
    }
    return {**body, **changes}


def test_charge_refunded_follows_stripes_three_way_rule():
    # Given a charge not refunded, one partly refunded, one fully refunded
    untouched = charge()
    partly = charge(amount_refunded=400)
    fully = charge(amount_refunded=1000, refunded=True)

    # When / Then: "true" fully, "false" partly, null not at all
    assert [hits('refunded:"true"', c, "charge") for c in (untouched, partly, fully)] == [
        False,
        False,
        True,
    ]
    assert [hits('refunded:"false"', c, "charge") for c in (untouched, partly, fully)] == [
        False,
        True,
        False,
    ]
    assert [hits("refunded:null", c, "charge") for c in (untouched, partly, fully)] == [
        True,
        False,
        False,
    ]


def test_charge_card_details_and_booleans_are_tokens():
    obj = charge()
    assert hits("payment_method_details.card.last4:4242", obj, "charge")
    assert hits('payment_method_details.card.brand:"VISA"', obj, "charge")
    assert hits("payment_method_details.card.exp_month:12", obj, "charge")
    assert not hits("payment_method_details.card_present.last4:4242", obj, "charge")
    assert hits("billing_details.address.postal_code:10115", obj, "charge")
    assert hits('disputed:"false"', obj, "charge")
    assert not hits('disputed:"true"', obj, "charge")


def test_disputed_accepts_only_true_and_false():
    assert "accepts only" in refusal('disputed:"maybe"', "charge")


def test_an_unknown_field_names_the_resource_and_the_supported_fields():
    message = refusal('foo:"bar"')
    assert "Field 'foo' is an unsupported search field for payment_intents" in message
    supported = "amount, connector, created, currency, customer, metadata, payment_method_type"
    assert f"Supported: {supported}, status." in message


def test_each_kind_has_its_own_fields():
    assert "unsupported search field for customers" in refusal('status:"active"', "customer")
    assert hits('email~"amy"', customer(), "customer")
    assert "unsupported search field for payment_intents" in refusal('email~"amy"')
    assert "the string field 'email' does not support '>'" in refusal('email>"a"', "customer")


@pytest.mark.parametrize(
    ("query", "fragment"),
    [
        ("", "the query is empty"),
        ("   ", "the query is empty"),
        ("status:succeeded", 'must be in quotation marks: status:"succeeded"'),
        ('status>"x"', "the token field 'status' does not support '>'"),
        ('status~"succ"', "does not support '~'"),
        ('amount~"200"', "the numeric field 'amount' does not support '~'"),
        ('amount>"lots"', "'amount' is numeric; 'lots' is not an integer"),
        ("amount>12.5", "'amount' is numeric; '12.5' is not an integer"),
        ("amount>" + "9" * 40, "too large"),
        ("amount>null", "null only works with ':'"),
        ("amount=5", "use ':' for an exact match"),
        ("amount", "expected an operator after 'amount'"),
        ("amount>", "expected a value after 'amount>'"),
        ('status:"succeeded', 'has no closing "'),
        ("metadata['k:'v'", "expected ] after the metadata key"),
        ("metadata:'v'", "metadata['key']:'value'"),
        ("metadata.k:'v'", "metadata['key']:'value'"),
        ("metadata['']:'v'", "the metadata key is empty"),
        ('status:""', "use status:null"),
        ('amount>1 AND status:"x" OR amount<5', "can't combine AND and OR"),
        ('amount>1 status:"x" OR amount<5', "can't combine AND and OR"),
        ('(status:"x" OR status:"y")', "parentheses are not supported"),
        ('status:"x" AND', "expected a clause after AND"),
        ('OR status:"x"', "expected a clause before OR"),
        ('status:"x"amount>1', "must be separated by a space, AND or OR"),
        ("-", "expected a field name"),
        (" ".join(["amount>1"] * (MAX_CLAUSES + 1)), f"at most {MAX_CLAUSES} clauses"),
    ],
)
def test_a_query_stripe_would_refuse_is_a_400_on_query_saying_why(query: str, fragment: str):
    assert fragment in refusal(query)


def test_the_refusal_says_where_in_the_query():
    assert "(at character 20)" in refusal('status:"succeeded" x:1')


def test_a_substring_needs_three_characters():
    message = refusal('email~"am"', "customer")
    assert "at least 3 characters; 'am' has 2" in message
    assert hits('email~"amy"', customer(), "customer")


def test_the_most_clauses_still_parse():
    query = " OR ".join([f"amount:{n}" for n in range(MAX_CLAUSES)])
    parsed = parse(query, "payment_intent")
    assert len(parsed.clauses) == MAX_CLAUSES and parsed.any_of
    assert matches(parsed, payment_intent(amount=MAX_CLAUSES - 1))


def test_every_declared_field_parses_an_exact_match_and_reads_an_empty_object():
    # Given every declared field of every searchable kind
    for kind, table in SEARCHABLE.items():
        for name, searched in table.fields.items():
            value = "1" if searched.type is FieldType.NUMERIC else '"true"'
            prefix = "metadata['k']" if name == "metadata" else name

            # When
            parsed = parse(f"{prefix}:{value}", kind)

            # Then: the clause is what was written, and an object without the field is null
            assert searched.name == name
            assert parsed.clauses[0].field is searched
            assert parsed.clauses[0].operator is Operator.EQUALS
            assert not matches(parsed, {})
            assert matches(parse(f"{prefix}:null", kind), {})


_ALPHABET = st.sampled_from(list("statusamountcreatedmetadata[]'\"\\:~<>=-() ANDORnul0123456789.x"))
# Clauses built from real fields, operators and values, so many generated queries are valid.
_CLAUSE = st.tuples(
    st.sampled_from(["", "-"]),
    st.sampled_from(["status", "amount", "created", "currency", "metadata['k']", "email", "x"]),
    st.sampled_from([":", ">", "<", ">=", "<=", "~", "="]),
    st.sampled_from(["'x'", '"succeeded"', "'abcd'", "100", '"7"', "-5", "null", "abc", "'"]),
).map("".join)
_QUERY = st.tuples(
    st.lists(_CLAUSE, min_size=1, max_size=4), st.sampled_from([" ", " AND ", " OR ", " or "])
).map(lambda parts: parts[1].join(parts[0]))


@settings(max_examples=500, deadline=None)
@given(
    st.one_of(
        st.text(max_size=60),
        st.text(_ALPHABET, max_size=60),
        _QUERY,
    ),
    st.sampled_from(sorted(SEARCHABLE)),
)
def test_the_parser_raises_nothing_but_parameter_invalid(query: str, kind: str):
    # Given any string at all, for any searchable kind / When parsed
    try:
        parsed = parse(query, kind)
    except ParameterInvalid as error:
        # Then a refusal is a Stripe-shaped 400 on `query`
        assert error.param == "query" and error.http_status == 400
        return
    # ... and an accepted query evaluates on objects of every shape without raising
    for obj in (payment_intent(), charge(), customer(), {}):
        assert matches(parsed, obj) in (True, False)


@settings(max_examples=200, deadline=None)
@given(
    st.integers(min_value=0, max_value=10**9),
    st.integers(min_value=0, max_value=10**9),
)
def test_numeric_comparisons_agree_with_integer_arithmetic(amount: int, bound: int):
    obj = payment_intent(amount=amount)
    assert hits(f"amount>{bound}", obj) is (amount > bound)
    assert hits(f"amount>={bound}", obj) is (amount >= bound)
    assert hits(f"amount<{bound}", obj) is (amount < bound)
    assert hits(f"amount<={bound}", obj) is (amount <= bound)
    assert hits(f"amount:{bound}", obj) is (amount == bound)
    assert hits(f"-amount:{bound}", obj) is (amount != bound)


@settings(max_examples=200, deadline=None)
@given(st.text(min_size=1, max_size=30))
def test_any_metadata_value_round_trips_through_quoting(value: str):
    # Given a metadata value with any characters, quoted with escapes
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    obj = payment_intent(metadata={"k": value})

    # When / Then: the exact value matches, case aside
    assert hits(f'metadata["k"]:"{escaped}"', obj)


def test_a_query_pins_a_connector_only_when_every_match_must_have_it():
    # The search reads a connector's index only when the query requires that connector
    pinned = parse("connector:'Sim_A' AND status:'succeeded'", "payment_intent")
    assert required_value(pinned, "connector") == "sim_a"
    assert required_value(pinned, "payment_method_type") is None
    alone = parse("payment_method_type:'card'", "payment_intent")
    assert required_value(alone, "payment_method_type") == "card"
    for query in ("connector:'a' OR status:'succeeded'", "-connector:'a'", "connector:null"):
        assert required_value(parse(query, "payment_intent"), "connector") is None
