"""/v1/events: the events every state change wrote (Stripe's events API)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chalice import Blueprint

from chalicelib.api.http import ANY_CONTENT_TYPE, ApiCall, endpoint
from chalicelib.container import webhooks

# Annotations only: the models and services are imported by the requests that use them.
if TYPE_CHECKING:
    from chalicelib.api import params as p

events = Blueprint(__name__)
bp = events


@bp.route("/v1/events", methods=["GET"], content_types=ANY_CONTENT_TYPE)
@endpoint(bp, params="ListEvents")
def list_events(call: ApiCall) -> dict:
    from chalicelib.dal.events import EventQuery

    params: p.ListEvents = call.params
    low, high = params.created.bounds() if params.created else (None, None)
    types = tuple(params.types or ()) + ((params.type,) if params.type else ())
    return webhooks().events.list_page(
        call.merchant_id,
        EventQuery(
            types=types,
            created_gte=low,
            created_lte=high,
            related_object=params.related_object,
        ),
        **params.page(),
    )


@bp.route("/v1/events/{id}", methods=["GET"], content_types=ANY_CONTENT_TYPE)
@endpoint(bp, params="Params")
def retrieve_event(call: ApiCall, id: str) -> dict:
    return webhooks().events.retrieve(call.merchant_id, id).to_api()


@bp.route("/v1/events/{id}/deliveries", methods=["GET"], content_types=ANY_CONTENT_TYPE)
@endpoint(bp, params="Params")
def list_event_deliveries(call: ApiCall, id: str) -> dict:
    return webhooks().endpoints.deliveries_of_event(call.merchant_id, id)
