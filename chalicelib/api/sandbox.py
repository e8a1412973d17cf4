"""/v1/sandbox/...: what a sandbox offers beyond Stripe's API (merchants, 3-D Secure outcomes,
the business clock for seeding), and /health."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from chalice import Blueprint, Response

from chalicelib.api.http import ANY_CONTENT_TYPE, ApiCall, endpoint, require_client_secret
from chalicelib.container import services, webhooks
from chalicelib.errors import ParameterInvalid, ResourceMissing
from chalicelib.observability import MetricsAggregate, observability, prometheus_text

# Annotations only: the models and services are imported by the requests that use them.
if TYPE_CHECKING:
    from chalicelib.api import params as p
    from chalicelib.services.context import Outcome

sandbox = Blueprint(__name__)
bp = sandbox


@bp.route("/health", methods=["GET"])
def health() -> dict:
    """For load balancers: answers without touching AWS or checking a key."""
    return {"status": "ok"}


@bp.route("/v1/sandbox/merchants", methods=["POST"], content_types=ANY_CONTENT_TYPE)
@endpoint(bp, params="CreateMerchant", auth="admin")
def create_merchant(call: ApiCall) -> dict:
    return services().merchants.create(name=call.params.name)


@bp.route("/v1/sandbox/merchants/{merchant}", methods=["GET"], content_types=ANY_CONTENT_TYPE)
@endpoint(bp, auth="admin")
def retrieve_merchant(call: ApiCall, merchant: str) -> dict:
    """The merchant and its API keys (never their secrets), deleted or not."""
    return services().merchants.retrieve(merchant)


@bp.route("/v1/sandbox/merchants/{merchant}", methods=["POST"], content_types=ANY_CONTENT_TYPE)
@endpoint(bp, params="UpdateMerchant", auth="admin")
def update_merchant(call: ApiCall, merchant: str) -> dict:
    """Set the merchant's own rate limits (`rate_limits[read]`, `rate_limits[write]`)."""
    limits = call.params.rate_limits
    return services().merchants.set_rate_limits(
        merchant, limits.model_dump() if limits is not None else None
    )


@bp.route("/v1/sandbox/merchants/{merchant}", methods=["DELETE"], content_types=ANY_CONTENT_TYPE)
@endpoint(bp, auth="admin")
def delete_merchant(call: ApiCall, merchant: str) -> dict:
    """Every key of the merchant stops working; its data stays readable to the admin."""
    return services().merchants.delete(merchant)


@bp.route(
    "/v1/sandbox/merchants/{merchant}/api_keys/{key}/roll",
    methods=["POST"],
    content_types=ANY_CONTENT_TYPE,
)
@endpoint(bp, params="RollApiKey", auth="admin")
def roll_api_key(call: ApiCall, merchant: str, key: str) -> dict:
    """A new key (secret shown once); the old one expires as asked (default: now)."""
    return services().merchants.roll_key(
        merchant, key, expires_in=call.params.expires_in, expires_at=call.params.expires_at
    )


@bp.route(
    "/v1/sandbox/merchants/{merchant}/api_keys/{key}/revoke",
    methods=["POST"],
    content_types=ANY_CONTENT_TYPE,
)
@endpoint(bp, params="Params", auth="admin")
def revoke_api_key(call: ApiCall, merchant: str, key: str) -> dict:
    """The key stops working now (everywhere within PAYFLOW_API_KEY_CACHE_SECONDS)."""
    return services().merchants.revoke_key(merchant, key)


@bp.route(
    "/v1/sandbox/payment_intents/{intent}/authenticate",
    methods=["POST"],
    content_types=ANY_CONTENT_TYPE,
)
@endpoint(bp, params="CompleteAuthentication", auth="client", returns="payment_intent")
def authenticate_payment_intent(call: ApiCall, intent: str) -> Outcome:
    """Plays the customer's 3-D Secure step for a PaymentIntent in requires_action: with the
    secret key (tests, scripts), or a publishable key and the client_secret (the challenge
    page payflow.js opens)."""
    if call.publishable or call.params.client_secret is not None:
        pi = services().payment_intents.retrieve(call.merchant_id, intent)
        require_client_secret(call, pi.client_secret, call.params.client_secret)
    return services().payment_intents.complete_authentication(
        call.merchant_id, intent, call.context, succeeded=call.params.outcome == "succeeded"
    )


@bp.route("/v1/sandbox/charges/{charge}/dispute", methods=["POST"], content_types=ANY_CONTENT_TYPE)
@endpoint(bp, params="SimulateDispute", returns="dispute")
def simulate_dispute(call: ApiCall, charge: str) -> dict[str, Any]:
    """Plays the cardholder's bank: opens a dispute on one of the merchant's captured charges
    (`outcome=needs_response`, or `warning_needs_response` for an inquiry), or moves it
    (`under_review`, `won`, `lost`, `warning_closed`), through the same provider-event road a
    provider's dispute webhook takes."""
    params: p.SimulateDispute = call.params
    return services().psp_events.simulate_dispute(
        call.merchant_id,
        charge,
        status=params.outcome,
        reason=params.reason,
        amount=params.amount,
    )


@bp.route(
    "/v1/sandbox/payment_intents/{intent}/customer_action",
    methods=["POST"],
    content_types=ANY_CONTENT_TYPE,
)
@endpoint(bp, params="DecideCustomerAction", auth="client")
def decide_customer_action(call: ApiCall, intent: str) -> dict[str, Any]:
    """Plays the customer at the simulator for a PaymentIntent that waits for them (a UPI QR
    code or collect request, a wallet's approval): approve or refuse, with the secret key, or a
    publishable key and the client_secret (PayFlow's page for the customer). The PaymentIntent
    moves when the simulator's webhook arrives."""
    from chalicelib.connectors.simulator_customer import Decision

    if call.publishable or call.params.client_secret is not None:
        pi = services().payment_intents.retrieve(call.merchant_id, intent)
        require_client_secret(call, pi.client_secret, call.params.client_secret)
    decision = Decision.APPROVED if call.params.outcome == "approve" else Decision.REFUSED
    return services().simulator.decide(call.merchant_id, intent, decision)


@bp.route("/v1/sandbox/simulator/sweep", methods=["POST"], content_types=ANY_CONTENT_TYPE)
@endpoint(bp, params="Params", auth="admin")
def sweep_simulator(call: ApiCall) -> dict[str, Any]:
    """Expire now every customer action whose time is up by the business clock (the sandbox's
    poller does this every fraction of a second; this is for scripts)."""
    return {"object": "simulator_sweep", "expired": services().simulator.expire_due()}


@bp.route("/v1/sandbox/clock", methods=["POST"], content_types=ANY_CONTENT_TYPE)
@endpoint(bp, params="SetClock", auth="admin")
def set_clock(call: ApiCall) -> dict[str, Any]:
    """Sets the clock `created` times are read from (admin key, sandbox only): `payflow seed`
    writes a history over past days through the real API. Every request and execution of this
    process reads it, so set it only while nothing else runs."""
    params: p.SetClock = call.params
    clock = services().clock
    if clock is None:
        raise ResourceMissing("The business clock can be set in the sandbox only.")
    if params.reset == (params.now is not None):
        raise ParameterInvalid("Send either now (epoch seconds) or reset=true.", param="now")
    clock.set(None if params.reset else params.now)
    return {"object": "sandbox_clock", "now": int(clock()), "offset": int(clock.offset)}


@bp.route("/v1/sandbox/metrics", methods=["GET"])
@endpoint(bp, auth="admin")
def sandbox_metrics(call: ApiCall) -> dict[str, Any]:
    """This process's metrics, aggregated from the EMF lines it emitted (admin key)."""
    return _aggregate().snapshot()


@bp.route("/metrics", methods=["GET"])
@endpoint(bp, auth="admin")
def prometheus_metrics(call: ApiCall) -> Response:
    """The same aggregate in Prometheus' text format, for scrapers (admin key as bearer)."""
    return Response(
        body=prometheus_text(_aggregate().series()),
        status_code=200,
        headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"},
    )


def _aggregate() -> MetricsAggregate:
    from chalicelib.webhooks.delivery import report_dlq_depth

    aggregate = observability().aggregate
    if aggregate is None:
        raise ResourceMissing(
            "Metrics are not aggregated in this process: PAYFLOW_METRICS_SINK has no 'memory' "
            "(on AWS they are in CloudWatch, namespace PayFlow)."
        )
    # A gauge nothing else refreshes while the queue is quiet.
    report_dlq_depth(webhooks().queue)
    return aggregate
