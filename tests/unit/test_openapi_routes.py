"""The generated API reference describes exactly the routes the app serves, with the request
models' schemas and Stripe's response schemas."""

from __future__ import annotations

import json
from typing import Any

import openapi_spec_validator
import pytest
from chalice import Blueprint, Chalice

from app import app
from chalicelib.api import openapi
from chalicelib.api import params as p
from chalicelib.api.http import ANY_CONTENT_TYPE, ApiCall, endpoint
from payflow.stripe_spec import SHIPPED_COPY, load_document, shipped_text

HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return openapi.document(app)


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method.upper(), operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in HTTP_METHODS
    ]


def _resolve(document: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    ref = node.get("$ref")
    if ref is None:
        return node
    target: Any = document
    for part in ref.removeprefix("#/").split("/"):
        target = target[part]
    return _resolve(document, target)


def test_documented_routes_are_the_app_routes(document: dict[str, Any]) -> None:
    # Given
    documented = {(path, method) for path, method, _ in _operations(document)}

    # When
    served = {
        (path, method)
        for path, entries in app.routes.items()
        for method in entries
        if method != "OPTIONS"
    }

    # Then
    assert documented == served


def test_the_document_is_valid_openapi_3_0(document: dict[str, Any]) -> None:
    # Then: raises on any violation or dangling $ref (3.0: the Swagger UI served is 4.x)
    assert document["openapi"] == "3.0.3"
    openapi_spec_validator.validate(document)


def test_every_operation_has_a_unique_operation_id(document: dict[str, Any]) -> None:
    # When
    ids = [operation.get("operationId") for _, _, operation in _operations(document)]

    # Then
    assert all(ids), "every operation needs an operationId"
    assert len(ids) == len(set(ids))


def test_every_merchant_post_documents_its_own_idempotency_key(document: dict[str, Any]) -> None:
    examples = []
    for _, method, operation in _operations(document):
        # Admin calls and unauthenticated ones (providers' webhooks) are not a merchant's.
        if method != "POST" or operation["security"] in ([{"adminKey": []}], []):
            continue

        # When
        headers = {
            p["name"]: p for p in map(lambda n: _resolve(document, n), operation["parameters"])
        }

        # Then
        assert headers["Idempotency-Key"]["schema"]["maxLength"] == 255
        examples.append(headers["Idempotency-Key"]["example"])
    # A shared example would make one operation's example replay another's response.
    assert len(examples) == len(set(examples)) > 5


def test_request_bodies_are_the_params_models(document: dict[str, Any]) -> None:
    # When
    create = document["paths"]["/v1/payment_intents"]["post"]["requestBody"]["content"]
    refund = document["paths"]["/v1/refunds"]["post"]["requestBody"]["content"]
    form = refund["application/x-www-form-urlencoded"]
    pi_schema = _resolve(document, create["application/json"]["schema"])
    refund_schema = _resolve(document, form["schema"])

    # Then: every field of the model, its required ones, and the values it really accepts
    assert set(pi_schema["properties"]) == set(p.CreatePaymentIntent.model_fields)
    assert set(pi_schema["required"]) == {"amount", "currency"}
    assert "usd" in pi_schema["properties"]["currency"]["enum"]
    assert pi_schema["additionalProperties"] is False
    assert set(refund_schema["properties"]) == set(p.CreateRefund.model_fields)
    assert refund_schema["properties"]["amount"]["minimum"] >= 1
    # A flat model is a form too (brackets nest one level); shipping[address][line1] is deeper,
    # so the PaymentIntent's create is documented as JSON only.
    assert form["encoding"]["metadata"] == {"style": "deepObject", "explode": True}
    assert "reason" not in form["encoding"]  # an enum is a plain value
    assert "application/x-www-form-urlencoded" not in create


def test_responses_are_stripes_schemas(document: dict[str, Any]) -> None:
    def ok(path: str, method: str) -> dict[str, Any]:
        content = document["paths"][path][method]["responses"]["200"]["content"]
        return content["application/json"]["schema"]

    # Then
    assert ok("/v1/payment_intents/{intent}/confirm", "post") == {
        "$ref": "#/components/schemas/payment_intent"
    }
    assert ok("/v1/refunds", "get") == {"$ref": "#/components/schemas/list.refunds"}
    assert ok("/v1/webhook_endpoints/{id}", "delete") == {
        "$ref": "#/components/schemas/deleted_webhook_endpoint"
    }
    refund = document["components"]["schemas"]["refund"]
    assert refund["properties"]["balance_transaction"]["nullable"] is True
    # PayFlow's own routes say so
    attempts = document["paths"]["/v1/payment_intents/{intent}/attempts"]["get"]
    assert attempts["x-payflow-extension"] is True


def test_admin_routes_document_403(document: dict[str, Any]) -> None:
    operation = document["paths"]["/v1/sandbox/merchants"]["post"]
    assert {"401", "403"} <= set(operation["responses"])
    assert operation["security"] == [{"adminKey": []}]


def test_a_route_the_app_gains_appears_without_any_edit() -> None:
    # Given an app with one new Stripe-shaped route
    class CreateWidget(p.Params):
        amount: p.Amount

    bp = Blueprint(__name__)

    @bp.route("/v1/refunds/{refund}/cancel", methods=["POST"], content_types=ANY_CONTENT_TYPE)
    @endpoint(bp, params=CreateWidget)
    def cancel_widget(call: ApiCall, refund: str) -> dict:
        """Cancel a widget.

        Longer words."""
        return {}

    fresh = Chalice(app_name="fresh")
    fresh.register_blueprint(bp)

    # When
    generated = openapi.document(fresh)

    # Then
    operation = generated["paths"]["/v1/refunds/{refund}/cancel"]["post"]
    assert operation["operationId"] == "cancelWidget"
    assert (
        operation["summary"] == "Cancel a widget." and operation["description"] == "Longer words."
    )
    assert "CreateWidget" in generated["components"]["schemas"]
    assert operation["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/refund"
    }


def test_the_shipped_stripe_schemas_are_the_generators_output() -> None:
    # When
    expected = shipped_text(load_document())

    # Then: regenerate with `python -m payflow.conformance schemas` when this fails
    assert SHIPPED_COPY.read_text(encoding="utf-8") == expected
    assert json.loads(expected)["schemas"]["payment_intent"]["properties"]["object"] == {
        "type": "string",
        "enum": ["payment_intent"],
    }
