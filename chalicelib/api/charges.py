"""/v1/charges: Stripe's Charges API (read and update; payments make charges)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chalice import Blueprint

from chalicelib.api.http import ANY_CONTENT_TYPE, ApiCall, endpoint
from chalicelib.container import services

# Annotations only: the models and services are imported by the requests that use them.
if TYPE_CHECKING:
    from chalicelib.api import params as p
    from chalicelib.services.context import Outcome

charges = Blueprint(__name__)
bp = charges


@bp.route("/v1/charges", methods=["GET"], content_types=ANY_CONTENT_TYPE)
@endpoint(bp, params="ListCharges", returns="list:charge")
def list_charges(call: ApiCall) -> dict:
    params: p.ListCharges = call.params
    return services().charges.list_page(
        call.merchant_id,
        **params.page(),
        payment_intent=params.payment_intent,
        customer=params.customer,
    )


@bp.route("/v1/charges/search", methods=["GET"], content_types=ANY_CONTENT_TYPE)
@endpoint(bp, params="SearchParams", returns="list:charge")
def search_charges(call: ApiCall) -> dict:
    params: p.SearchParams = call.params
    return services().charges.search(
        call.merchant_id, query=params.query, limit=params.limit, page=params.page
    )


@bp.route("/v1/charges/{charge}", methods=["GET"], content_types=ANY_CONTENT_TYPE)
@endpoint(bp, params="Params", returns="charge")
def retrieve_charge(call: ApiCall, charge: str) -> dict:
    return services().charges.retrieve(call.merchant_id, charge).to_api()


@bp.route("/v1/charges/{charge}", methods=["POST"], content_types=ANY_CONTENT_TYPE)
@endpoint(bp, params="UpdateCharge", returns="charge")
def update_charge(call: ApiCall, charge: str) -> Outcome:
    return services().charges.update(call.merchant_id, charge, call.context, call.params.changes())
