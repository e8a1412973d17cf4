"""/v1/webhook_endpoints and /v1/webhook_deliveries: Stripe-shaped endpoints, the delivery log."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chalice import Blueprint

from chalicelib.api.http import ANY_CONTENT_TYPE, ApiCall, endpoint
from chalicelib.container import webhooks

# Annotations only: the models and services are imported by the requests that use them.
if TYPE_CHECKING:
    from chalicelib.api import params as p

webhook_endpoints = Blueprint(__name__)
bp = webhook_endpoints


@bp.route("/v1/webhook_endpoints", methods=["POST"], content_types=ANY_CONTENT_TYPE)
@endpoint(bp, params="CreateWebhookEndpoint", creates="we")
def create_webhook_endpoint(call: ApiCall) -> dict:
    params: p.CreateWebhookEndpoint = call.params
    return webhooks().endpoints.create(
        call.merchant_id,
        url=params.url,
        enabled_events=params.enabled_events,
        description=params.description,
        metadata=params.metadata,
        api_version=params.api_version,
        endpoint_id=call.context.claim.object_id if call.context.claim else None,
    )


@bp.route("/v1/webhook_endpoints", methods=["GET"], content_types=ANY_CONTENT_TYPE)
@endpoint(bp, params="ListParams")
def list_webhook_endpoints(call: ApiCall) -> dict:
    params: p.ListParams = call.params
    return webhooks().endpoints.list_page(
        call.merchant_id,
        **params.page(),
    )


@bp.route("/v1/webhook_endpoints/{id}", methods=["GET"], content_types=ANY_CONTENT_TYPE)
@endpoint(bp, params="Params")
def retrieve_webhook_endpoint(call: ApiCall, id: str) -> dict:
    return webhooks().endpoints.retrieve(call.merchant_id, id).to_api()


@bp.route("/v1/webhook_endpoints/{id}/health", methods=["GET"], content_types=ANY_CONTENT_TYPE)
@endpoint(bp, params="Params")
def retrieve_webhook_endpoint_health(call: ApiCall, id: str) -> dict:
    """PayFlow's own view of an endpoint: whether and why it was disabled, failing since when."""
    return webhooks().endpoints.retrieve(call.merchant_id, id).health_api()


@bp.route("/v1/webhook_endpoints/{id}", methods=["POST"], content_types=ANY_CONTENT_TYPE)
@endpoint(bp, params="UpdateWebhookEndpoint")
def update_webhook_endpoint(call: ApiCall, id: str) -> dict:
    return webhooks().endpoints.update(call.merchant_id, id, call.params.changes())


@bp.route("/v1/webhook_endpoints/{id}", methods=["DELETE"], content_types=ANY_CONTENT_TYPE)
@endpoint(bp, params="Params")
def delete_webhook_endpoint(call: ApiCall, id: str) -> dict:
    return webhooks().endpoints.delete(call.merchant_id, id)


@bp.route(
    "/v1/webhook_endpoints/{id}/roll_secret", methods=["POST"], content_types=ANY_CONTENT_TYPE
)
@endpoint(bp, params="RollWebhookSecret")
def roll_webhook_endpoint_secret(call: ApiCall, id: str) -> dict:
    return webhooks().endpoints.roll_secret(call.merchant_id, id, expires_in=call.params.expires_in)


@bp.route("/v1/webhook_endpoints/{id}/deliveries", methods=["GET"], content_types=ANY_CONTENT_TYPE)
@endpoint(bp, params="ListWebhookDeliveries")
def list_webhook_endpoint_deliveries(call: ApiCall, id: str) -> dict:
    from chalicelib.domain.webhooks import DeliveryStatus

    params: p.ListWebhookDeliveries = call.params
    return webhooks().endpoints.deliveries_of_endpoint(
        call.merchant_id,
        id,
        **params.page(),
        status=DeliveryStatus(params.status) if params.status else None,
    )


@bp.route("/v1/webhook_endpoints/{id}/resend", methods=["POST"], content_types=ANY_CONTENT_TYPE)
@endpoint(bp, params="ResendWebhookDeliveries")
def resend_webhook_endpoint_deliveries(call: ApiCall, id: str) -> dict:
    return webhooks().endpoints.resend_failed(call.merchant_id, id, since=call.params.since)


@bp.route("/v1/webhook_deliveries/{id}", methods=["GET"], content_types=ANY_CONTENT_TYPE)
@endpoint(bp, params="Params")
def retrieve_webhook_delivery(call: ApiCall, id: str) -> dict:
    return webhooks().endpoints.delivery(call.merchant_id, id).to_api()


@bp.route("/v1/webhook_deliveries/{id}/retry", methods=["POST"], content_types=ANY_CONTENT_TYPE)
@endpoint(bp, params="Params")
def retry_webhook_delivery(call: ApiCall, id: str) -> dict:
    return webhooks().endpoints.retry(call.merchant_id, id)


@bp.route("/v1/sandbox/webhook_dlq", methods=["GET"], content_types=ANY_CONTENT_TYPE)
@endpoint(bp, params="Params", auth="admin")
def retrieve_webhook_dead_letters(call: ApiCall) -> dict:
    """How many webhook messages wait in the dead-letter queue (every merchant's: admin only)."""
    from chalicelib.webhooks.delivery import report_dlq_depth

    queue = webhooks().queue
    return {
        "object": "webhook_dead_letter_queue",
        "dead_lettered": report_dlq_depth(queue),
        "queued": queue.depth(),
    }


@bp.route("/v1/sandbox/webhook_dlq/redrive", methods=["POST"], content_types=ANY_CONTENT_TYPE)
@endpoint(bp, params="RedriveDeadLetters", auth="admin")
def redrive_webhook_dead_letters(call: ApiCall) -> dict:
    """Move up to `limit` dead-lettered messages back to the webhook queue (a fresh schedule
    each), as the redrive_webhooks function does."""
    from chalicelib.webhooks.delivery import report_dlq_depth

    queue = webhooks().queue
    moved = queue.redrive(call.params.limit)
    return {
        "object": "webhook_dead_letter_queue",
        "moved": moved,
        "dead_lettered": report_dlq_depth(queue),
        "queued": queue.depth(),
    }
