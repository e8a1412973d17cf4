"""Parameter coverage against stripe-python's typed params: nothing PayFlow accepts is made up."""

from __future__ import annotations

import pytest
from stripe.params._payment_intent_confirm_params import PaymentIntentConfirmParams

from app import app
from payflow.conformance import Coverage, coverage, sdk_params_class, table


@pytest.fixture(scope="module")
def rows() -> list[Coverage]:
    return coverage(app)


def test_every_parameter_payflow_accepts_is_stripes_or_a_documented_extension(rows):
    # Then: PayFlow invents no parameter on a Stripe operation
    assert {r.operation: r.not_stripe for r in rows if r.not_stripe} == {}


def test_operations_map_onto_stripe_pythons_params():
    assert sdk_params_class("POST", "/v1/payment_intents/{x}/confirm") is PaymentIntentConfirmParams
    assert sdk_params_class("GET", "/v1/balance").__name__ == "BalanceRetrieveParams"
    name = sdk_params_class("GET", "/v1/customers/{c}/payment_methods").__name__
    assert name == "CustomerListPaymentMethodsParams"
    # PayFlow's own routes are not Stripe operations
    assert sdk_params_class("GET", "/v1/payment_intents/{x}/attempts") is None
    assert sdk_params_class("POST", "/v1/sandbox/merchants") is None


def test_the_table_counts_stripes_parameters_without_request_options(rows):
    # When
    create = next(r for r in rows if r.operation == "POST /v1/payment_intents")

    # Then
    assert {"amount", "currency", "customer", "setup_future_usage"} <= set(create.stripe)
    assert "idempotency_key" not in create.stripe and "api_key" not in create.stripe
    assert {"amount", "currency"} <= set(create.accepted)
    assert set(create.accepted) | set(create.unsupported) == set(create.stripe)
    assert "POST /v1/payment_intents" in table(rows)
