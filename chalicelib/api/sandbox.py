"""/v1/sandbox/...: what a sandbox offers beyond Stripe's API (merchants, 3-D Secure outcomes),
and /health."""

from __future__ import annotations

from chalice import Blueprint

from chalicelib.api import params as p
from chalicelib.api.http import ANY_CONTENT_TYPE, ApiCall, endpoint
from chalicelib.container import services
from chalicelib.services.context import Outcome

sandbox = Blueprint(__name__)
bp = sandbox


@bp.route("/health", methods=["GET"])
def health() -> dict:
    """For load balancers: answers without touching AWS or checking a key."""
    return {"status": "ok"}


@bp.route("/v1/sandbox/merchants", methods=["POST"], content_types=ANY_CONTENT_TYPE)
@endpoint(bp, params=p.CreateMerchant, auth="admin")
def create_merchant(call: ApiCall) -> dict:
    return services().merchants.create(name=call.params.name)


@bp.route(
    "/v1/sandbox/payment_intents/{intent}/authenticate",
    methods=["POST"],
    content_types=ANY_CONTENT_TYPE,
)
@endpoint(bp, params=p.CompleteAuthentication)
def authenticate_payment_intent(call: ApiCall, intent: str) -> Outcome:
    """Plays the customer's 3-D Secure step for a PaymentIntent in requires_action."""
    return services().payment_intents.complete_authentication(
        call.merchant_id, intent, call.context, succeeded=call.params.outcome == "succeeded"
    )
