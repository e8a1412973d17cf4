"""/v1/disputes: Stripe's Disputes API (providers open disputes; merchants answer them)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chalice import Blueprint

from chalicelib.api.http import ANY_CONTENT_TYPE, ApiCall, endpoint
from chalicelib.container import services

# Annotations only: the models and services are imported by the requests that use them.
if TYPE_CHECKING:
    from chalicelib.api import params as p
    from chalicelib.services.context import Outcome

disputes = Blueprint(__name__)
bp = disputes


@bp.route("/v1/disputes", methods=["GET"], content_types=ANY_CONTENT_TYPE)
@endpoint(bp, params="ListDisputes", returns="list:dispute")
def list_disputes(call: ApiCall) -> dict:
    params: p.ListDisputes = call.params
    return services().disputes.list_page(
        call.merchant_id,
        **params.page(),
        charge=params.charge,
        payment_intent=params.payment_intent,
    )


@bp.route("/v1/disputes/{dispute}", methods=["GET"], content_types=ANY_CONTENT_TYPE)
@endpoint(bp, params="Params", returns="dispute")
def retrieve_dispute(call: ApiCall, dispute: str) -> dict:
    return services().disputes.retrieve(call.merchant_id, dispute).to_api()


@bp.route("/v1/disputes/{dispute}", methods=["POST"], content_types=ANY_CONTENT_TYPE)
@endpoint(bp, params="UpdateDispute", returns="dispute")
def update_dispute(call: ApiCall, dispute: str) -> Outcome:
    params: p.UpdateDispute = call.params
    return services().disputes.update(
        call.merchant_id,
        dispute,
        call.context,
        evidence=params.evidence.given() if params.evidence is not None else None,
        submit=params.submit,
        metadata=params.metadata,
        metadata_sent="metadata" in params.model_fields_set,
    )


@bp.route("/v1/disputes/{dispute}/close", methods=["POST"], content_types=ANY_CONTENT_TYPE)
@endpoint(bp, params="Params", returns="dispute")
def close_dispute(call: ApiCall, dispute: str) -> Outcome:
    return services().disputes.close(call.merchant_id, dispute, call.context)
