"""/v1/payment_intents: Stripe's PaymentIntents API."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chalice import Blueprint

from chalicelib.api.http import ANY_CONTENT_TYPE, ApiCall, endpoint, require_client_secret
from chalicelib.container import services

# Annotations only: the models and services are imported by the requests that use them.
if TYPE_CHECKING:
    from chalicelib.api import params as p
    from chalicelib.services.context import Outcome

payment_intents = Blueprint(__name__)
bp = payment_intents


@bp.route("/v1/payment_intents", methods=["POST"], content_types=ANY_CONTENT_TYPE)
@endpoint(bp, params="CreatePaymentIntent", creates="pi", returns="payment_intent")
def create_payment_intent(call: ApiCall) -> Outcome:
    params: p.CreatePaymentIntent = call.params
    return services().payment_intents.create(
        call.merchant_id,
        call.context,
        amount=params.amount,
        currency=params.currency,
        capture_method=params.capture_method,
        payment_method=params.payment_method,
        confirm=params.confirm,
        description=params.description,
        metadata=params.metadata,
        payment_method_types=(
            [t.value for t in params.payment_method_types] if params.payment_method_types else None
        ),
        options=params.options(),
    )


@bp.route("/v1/payment_intents", methods=["GET"], content_types=ANY_CONTENT_TYPE)
@endpoint(bp, params="ListPaymentIntents", returns="list:payment_intent")
def list_payment_intents(call: ApiCall) -> dict:
    params: p.ListPaymentIntents = call.params
    return services().payment_intents.list_page(
        call.merchant_id,
        **params.page(),
        customer=params.customer,
        connector=params.connector,
        payment_method_type=(
            params.payment_method_type.value if params.payment_method_type else None
        ),
    )


# A literal segment wins over `{intent}`: API Gateway prefers the literal resource, and
# Chalice's local matcher tries routes in sorted order ('s' sorts before '{').
@bp.route("/v1/payment_intents/search", methods=["GET"], content_types=ANY_CONTENT_TYPE)
@endpoint(bp, params="SearchParams", returns="list:payment_intent")
def search_payment_intents(call: ApiCall) -> dict:
    from chalicelib.domain.payment_intents import PaymentIntent
    from chalicelib.services.payment_intents import KIND
    from chalicelib.services.search import search_body

    params: p.SearchParams = call.params
    return search_body(
        services().objects,
        KIND,
        PaymentIntent,
        call.merchant_id,
        "/v1/payment_intents/search",
        query=params.query,
        limit=params.limit,
        page=params.page,
    )


@bp.route("/v1/payment_intents/{intent}", methods=["GET"], content_types=ANY_CONTENT_TYPE)
@endpoint(bp, params="ClientParams", auth="client", returns="payment_intent")
def retrieve_payment_intent(call: ApiCall, intent: str) -> dict:
    """With a publishable key (Stripe.js), the PaymentIntent's client_secret is required."""
    pi = services().payment_intents.retrieve(call.merchant_id, intent)
    require_client_secret(call, pi.client_secret, call.params.client_secret)
    return pi.to_api()


@bp.route("/v1/payment_intents/{intent}", methods=["POST"], content_types=ANY_CONTENT_TYPE)
@endpoint(bp, params="UpdatePaymentIntent", returns="payment_intent")
def update_payment_intent(call: ApiCall, intent: str) -> Outcome:
    changes = call.params.changes()
    if "payment_method_types" in changes and changes["payment_method_types"] is not None:
        changes["payment_method_types"] = [str(t) for t in changes["payment_method_types"]]
    return services().payment_intents.update(call.merchant_id, intent, call.context, changes)


@bp.route("/v1/payment_intents/{intent}/confirm", methods=["POST"], content_types=ANY_CONTENT_TYPE)
@endpoint(bp, params="ConfirmPaymentIntent", auth="client", returns="payment_intent")
def confirm_payment_intent(call: ApiCall, intent: str) -> Outcome:
    """With a publishable key (Stripe.js), the PaymentIntent's client_secret is required."""
    params: p.ConfirmPaymentIntent = call.params
    if call.publishable or params.client_secret is not None:
        pi = services().payment_intents.retrieve(call.merchant_id, intent)
        require_client_secret(call, pi.client_secret, params.client_secret)
    return services().payment_intents.confirm(
        call.merchant_id,
        intent,
        call.context,
        payment_method=params.payment_method,
        capture_method=params.capture_method,
        options=params.options(),
    )


@bp.route("/v1/payment_intents/{intent}/capture", methods=["POST"], content_types=ANY_CONTENT_TYPE)
@endpoint(bp, params="CapturePaymentIntent", returns="payment_intent")
def capture_payment_intent(call: ApiCall, intent: str) -> Outcome:
    params: p.CapturePaymentIntent = call.params
    return services().payment_intents.capture(
        call.merchant_id,
        intent,
        call.context,
        amount_to_capture=params.amount_to_capture,
        metadata=params.metadata,
        statement_descriptor_suffix=params.statement_descriptor_suffix,
    )


@bp.route("/v1/payment_intents/{intent}/cancel", methods=["POST"], content_types=ANY_CONTENT_TYPE)
@endpoint(bp, params="CancelPaymentIntent", returns="payment_intent")
def cancel_payment_intent(call: ApiCall, intent: str) -> Outcome:
    params: p.CancelPaymentIntent = call.params
    return services().payment_intents.cancel(
        call.merchant_id, intent, call.context, reason=params.cancellation_reason
    )


@bp.route("/v1/payment_intents/{intent}/attempts", methods=["GET"], content_types=ANY_CONTENT_TYPE)
@endpoint(bp, params="Params")
def list_payment_attempts(call: ApiCall, intent: str) -> dict:
    """Every PSP call of the PaymentIntent (connector, outcome, error code, latency) and the
    routing decision of each attempt."""
    return services().payment_intents.attempts(call.merchant_id, intent)


@bp.route(
    "/v1/payment_intents/{intent}/executions", methods=["GET"], content_types=ANY_CONTENT_TYPE
)
@endpoint(bp, params="Params")
def list_payment_executions(call: ApiCall, intent: str) -> dict:
    """The Step Functions execution of each attempt the state machine took over, with its
    state history (empty for a payment the confirm handler answered itself)."""
    return services().payment_intents.executions(call.merchant_id, intent)
