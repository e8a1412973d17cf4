"""POST /v1/psp_webhooks/{connector}: providers' own webhooks (Stripe, Razorpay, Adyen) in."""

from __future__ import annotations

from chalice import Blueprint

from chalicelib.api.http import ANY_CONTENT_TYPE, ApiCall, endpoint
from chalicelib.container import services

psp_webhooks = Blueprint(__name__)
bp = psp_webhooks


@bp.route("/v1/psp_webhooks/{connector}", methods=["POST"], content_types=ANY_CONTENT_TYPE)
@endpoint(bp, auth="none")
def receive_psp_webhook(call: ApiCall, connector: str) -> dict:
    # The provider signs the raw body: verify those bytes, not the parsed parameters.
    request = bp.current_request
    assert request is not None
    raw = request.raw_body
    body = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw
    return services().psp_events.receive(connector, dict(request.headers), body)
