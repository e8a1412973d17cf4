"""The data layer's guard: nothing DynamoDB (or moto) could not give back is ever written."""

from __future__ import annotations

from decimal import Decimal

import pytest

from chalicelib.dal.dynamo import MAX_ITEM_BYTES, from_attrs, to_attrs
from chalicelib.errors import UnstorableValue


@pytest.mark.parametrize(
    ("data", "param"),
    [
        ({"metadata": {"": "x"}}, "metadata"),
        ({"metadata": {"a": {"": "x"}}}, "metadata"),
        ({"routing": [{"": 1}]}, "routing"),
        ({"description": "\ud800"}, "description"),
        ({"metadata": {"\udcff": "x"}}, "metadata"),
        ({"priority": 10**38}, "priority"),
        ({"priority": -(10**40)}, "priority"),
        ({"rate": float("inf")}, "rate"),
        ({"rate": float("nan")}, "rate"),
        ({"rate": 1e300}, "rate"),
        ({"rate": Decimal("1." + "1" * 40)}, "rate"),
        ({"description": "x" * MAX_ITEM_BYTES}, "description"),
    ],
)
def test_unstorable_values_are_refused_naming_the_parameter(data, param):
    # Given an object as the stores wrap it: `data` holds the API object.
    with pytest.raises(UnstorableValue) as error:
        to_attrs({"pk": "pi_1", "sk": "payment_intent", "data": data})
    assert error.value.http_status == 400 and error.value.param == param


def test_values_at_the_limits_round_trip():
    item = {
        "pk": "pi_1",
        "data": {
            "amount": 10**38 - 1,
            "rate": 0.25,
            "metadata": {"é": "\U0010ffff", " a": ""},
            "description": "x" * (MAX_ITEM_BYTES - 1000),
            "deep": [[[[[[[[[[[[{"a": 1}]]]]]]]]]]]],
        },
    }
    assert from_attrs(to_attrs(item)) == item


def test_a_deep_value_is_checked_without_recursion():
    value: object = "x"
    for _ in range(5000):
        value = {"a": value}
    with pytest.raises(UnstorableValue):
        to_attrs({"data": {"a": value, "b": {"": 1}}})
