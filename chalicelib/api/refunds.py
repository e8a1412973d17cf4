"""/v1/refunds, /v1/balance and /v1/balance_transactions: Stripe's refunds and balances."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chalice import Blueprint

from chalicelib.api.http import ANY_CONTENT_TYPE, ApiCall, endpoint
from chalicelib.container import services

# Annotations only: the models and services are imported by the requests that use them.
if TYPE_CHECKING:
    from chalicelib.api import params as p
    from chalicelib.services.context import Outcome

refunds = Blueprint(__name__)
bp = refunds


@bp.route("/v1/refunds", methods=["POST"], content_types=ANY_CONTENT_TYPE)
@endpoint(bp, params="CreateRefund", creates="re", returns="refund")
def create_refund(call: ApiCall) -> Outcome:
    params: p.CreateRefund = call.params
    return services().refunds.create(
        call.merchant_id,
        call.context,
        payment_intent=params.payment_intent,
        amount=params.amount,
        reason=params.reason,
        metadata=params.metadata,
        charge=params.charge,
        instructions_email=params.instructions_email,
    )


@bp.route("/v1/refunds", methods=["GET"], content_types=ANY_CONTENT_TYPE)
@endpoint(bp, params="ListRefunds", returns="list:refund")
def list_refunds(call: ApiCall) -> dict:
    params: p.ListRefunds = call.params
    return services().refunds.list_page(
        call.merchant_id,
        **params.page(),
        payment_intent=params.payment_intent,
        charge=params.charge,
    )


@bp.route("/v1/refunds/{refund}", methods=["GET"], content_types=ANY_CONTENT_TYPE)
@endpoint(bp, params="Params", returns="refund")
def retrieve_refund(call: ApiCall, refund: str) -> dict:
    return services().refunds.retrieve(call.merchant_id, refund).to_api()


@bp.route("/v1/refunds/{refund}", methods=["POST"], content_types=ANY_CONTENT_TYPE)
@endpoint(bp, params="UpdateRefund", returns="refund")
def update_refund(call: ApiCall, refund: str) -> Outcome:
    return services().refunds.update(call.merchant_id, refund, call.context, call.params.metadata)


@bp.route("/v1/refunds/{refund}/cancel", methods=["POST"], content_types=ANY_CONTENT_TYPE)
@endpoint(bp, params="Params", returns="refund")
def cancel_refund(call: ApiCall, refund: str) -> Outcome:
    return services().refunds.cancel(call.merchant_id, refund, call.context)


@bp.route("/v1/balance", methods=["GET"], content_types=ANY_CONTENT_TYPE)
@endpoint(bp, params="Params")
def retrieve_balance(call: ApiCall) -> dict:
    return services().ledger.balance(call.merchant_id)


@bp.route("/v1/balance_transactions", methods=["GET"], content_types=ANY_CONTENT_TYPE)
@endpoint(bp, params="ListBalanceTransactions")
def list_balance_transactions(call: ApiCall) -> dict:
    params: p.ListBalanceTransactions = call.params
    return services().ledger.transactions(
        call.merchant_id,
        **params.page(),
        type=params.type,
        source=params.source,
    )


@bp.route("/v1/balance_transactions/{txn}", methods=["GET"], content_types=ANY_CONTENT_TYPE)
@endpoint(bp, params="Params", returns="balance_transaction")
def retrieve_balance_transaction(call: ApiCall, txn: str) -> dict:
    return services().ledger.transaction(call.merchant_id, txn)


@bp.route("/v1/sandbox/balance/release", methods=["POST"], content_types=ANY_CONTENT_TYPE)
@endpoint(bp, params="Params")
def release_balance(call: ApiCall) -> dict:
    """Make pending funds whose available_on has passed available (what a payout schedule
    does on AWS; the release_funds entry point runs it for every merchant)."""
    return services().ledger.release_due(call.merchant_id)
