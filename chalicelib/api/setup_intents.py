"""/v1/setup_intents and /v1/setup_attempts: Stripe's SetupIntents API, and the sandbox's
3-D Secure step for a SetupIntent in requires_action."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chalice import Blueprint
from chalice.app import Request

from chalicelib.api.http import ANY_CONTENT_TYPE, ApiCall, endpoint, require_client_secret
from chalicelib.container import services

# Annotations only: the models and services are imported by the requests that use them.
if TYPE_CHECKING:
    from chalicelib.api import setup_params as sp
    from chalicelib.services.context import Outcome

setup_intents = Blueprint(__name__)
bp = setup_intents


def _origin(request: Request | None) -> str:
    """This API's own address as the caller reached it (API Gateway says https by header).
    It only ever goes back to the same caller, in the next_action it is answered with."""
    headers = request.headers if request is not None else {}
    scheme = headers.get("x-forwarded-proto", "http")
    return f"{scheme}://{headers.get('host', 'localhost')}"


@bp.route("/v1/setup_intents", methods=["POST"], content_types=ANY_CONTENT_TYPE)
@endpoint(bp, params="setup_params.CreateSetupIntent", creates="seti", returns="setup_intent")
def create_setup_intent(call: ApiCall) -> Outcome:
    params: sp.CreateSetupIntent = call.params
    return services().setup_intents.create(
        call.merchant_id,
        call.context,
        origin=_origin(bp.current_request),
        customer=params.customer,
        payment_method=params.payment_method,
        usage=params.usage,
        confirm=params.confirm,
        handover=params.handover(),
        payment_method_types=params.types(),
        automatic=params.automatic_payment_methods.model()
        if params.automatic_payment_methods
        else None,
        description=params.description,
        metadata=params.metadata,
    )


@bp.route("/v1/setup_intents", methods=["GET"], content_types=ANY_CONTENT_TYPE)
@endpoint(bp, params="setup_params.ListSetupIntents", returns="list:setup_intent")
def list_setup_intents(call: ApiCall) -> dict:
    params: sp.ListSetupIntents = call.params
    return services().setup_intents.list_page(
        call.merchant_id,
        **params.page(),
        customer=params.customer,
        payment_method=params.payment_method,
    )


@bp.route("/v1/setup_intents/{intent}", methods=["GET"], content_types=ANY_CONTENT_TYPE)
@endpoint(bp, params="ClientParams", auth="client", returns="setup_intent")
def retrieve_setup_intent(call: ApiCall, intent: str) -> dict:
    """With a publishable key (Stripe.js), the SetupIntent's client_secret is required."""
    si = services().setup_intents.retrieve(call.merchant_id, intent)
    require_client_secret(call, si.client_secret, call.params.client_secret)
    return si.to_api()


@bp.route("/v1/setup_intents/{intent}", methods=["POST"], content_types=ANY_CONTENT_TYPE)
@endpoint(bp, params="setup_params.UpdateSetupIntent", returns="setup_intent")
def update_setup_intent(call: ApiCall, intent: str) -> Outcome:
    return services().setup_intents.update(
        call.merchant_id, intent, call.context, call.params.changes()
    )


@bp.route("/v1/setup_intents/{intent}/confirm", methods=["POST"], content_types=ANY_CONTENT_TYPE)
@endpoint(
    bp,
    params="setup_params.ConfirmSetupIntent",
    auth="client",
    creates="setatt",
    returns="setup_intent",
)
def confirm_setup_intent(call: ApiCall, intent: str) -> Outcome:
    """With a publishable key (Stripe.js), the SetupIntent's client_secret is required."""
    params: sp.ConfirmSetupIntent = call.params
    if call.publishable or params.client_secret is not None:
        si = services().setup_intents.retrieve(call.merchant_id, intent)
        require_client_secret(call, si.client_secret, params.client_secret)
    return services().setup_intents.confirm(
        call.merchant_id,
        intent,
        call.context,
        origin=_origin(bp.current_request),
        payment_method=params.payment_method,
        handover=params.handover(),
    )


@bp.route("/v1/setup_intents/{intent}/cancel", methods=["POST"], content_types=ANY_CONTENT_TYPE)
@endpoint(bp, params="setup_params.CancelSetupIntent", returns="setup_intent")
def cancel_setup_intent(call: ApiCall, intent: str) -> Outcome:
    return services().setup_intents.cancel(
        call.merchant_id, intent, call.context, call.params.cancellation_reason
    )


@bp.route("/v1/setup_attempts", methods=["GET"], content_types=ANY_CONTENT_TYPE)
@endpoint(bp, params="setup_params.ListSetupAttempts", returns="list:setup_attempt")
def list_setup_attempts(call: ApiCall) -> dict:
    params: sp.ListSetupAttempts = call.params
    return services().setup_intents.list_attempts(
        call.merchant_id,
        params.setup_intent,
        **params.page(),
    )


@bp.route(
    "/v1/sandbox/setup_intents/{intent}/authenticate",
    methods=["POST"],
    content_types=ANY_CONTENT_TYPE,
)
@endpoint(bp, params="CompleteAuthentication", auth="client", returns="setup_intent")
def authenticate_setup_intent(call: ApiCall, intent: str) -> Outcome:
    """Plays the customer's 3-D Secure step for a SetupIntent in requires_action (a publishable
    key needs the client_secret, as on the challenge page payflow.js opens)."""
    if call.publishable or call.params.client_secret is not None:
        si = services().setup_intents.retrieve(call.merchant_id, intent)
        require_client_secret(call, si.client_secret, call.params.client_secret)
    return services().setup_intents.complete_authentication(
        call.merchant_id, intent, call.context, succeeded=call.params.outcome == "succeeded"
    )
