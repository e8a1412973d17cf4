"""/v1/reconciliation/...: runs, their exceptions and how a person resolves one, the bank
statements the merchant uploads; and the sandbox's discrepancy injector for the simulator's
book."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chalice import Blueprint

from chalicelib.api.http import ANY_CONTENT_TYPE, ApiCall, endpoint
from chalicelib.container import services

# Annotations only: the models and services are imported by the requests that use them.
if TYPE_CHECKING:
    from chalicelib.api import recon_params as r
    from chalicelib.services.context import Outcome

reconciliation = Blueprint(__name__)
bp = reconciliation


@bp.route("/v1/reconciliation/runs", methods=["POST"], content_types=ANY_CONTENT_TYPE)
@endpoint(bp, params="recon_params.CreateRun", creates="rcnrun")
def create_run(call: ApiCall) -> Outcome:
    """Start reconciling a day; the run answers at once, `running`, and its workflow ends it."""
    params: r.CreateRun = call.params
    return services().reconciliation.start(
        call.merchant_id, call.context, date=params.date, sla_days=params.sla_days
    )


@bp.route("/v1/reconciliation/runs", methods=["GET"], content_types=ANY_CONTENT_TYPE)
@endpoint(bp, params="recon_params.ListRuns")
def list_runs(call: ApiCall) -> dict:
    params: r.ListRuns = call.params
    return services().reconciliation.list_runs(
        call.merchant_id,
        **params.page(),
    )


@bp.route("/v1/reconciliation/runs/{run}", methods=["GET"], content_types=ANY_CONTENT_TYPE)
@endpoint(bp, params="Params")
def retrieve_run(call: ApiCall, run: str) -> dict:
    return services().reconciliation.retrieve_run(call.merchant_id, run).to_api()


@bp.route("/v1/reconciliation/bank_statements", methods=["POST"], content_types=ANY_CONTENT_TYPE)
@endpoint(bp, params="recon_params.UploadBankStatement", creates="bstmt")
def upload_bank_statement(call: ApiCall) -> Outcome:
    """Upload the merchant's bank statement (camt.053 or PayFlow's CSV) for three-way matching.

    `file` is the file's text. The same statement uploaded again answers the one kept; a file
    PayFlow cannot read is a 400 naming `file`, and nothing of it is kept. Runs of the days
    whose payouts may arrive in the statement's period (its first day less 3 to its last)
    match their payouts with its credits.
    """
    params: r.UploadBankStatement = call.params
    return services().reconciliation.upload_statement(
        call.merchant_id, call.context, file=params.file, fmt=params.format
    )


@bp.route("/v1/reconciliation/bank_statements", methods=["GET"], content_types=ANY_CONTENT_TYPE)
@endpoint(bp, params="recon_params.ListBankStatements")
def list_bank_statements(call: ApiCall) -> dict:
    """The merchant's uploaded bank statements, newest first."""
    params: r.ListBankStatements = call.params
    return services().reconciliation.list_statements(
        call.merchant_id,
        **params.page(),
    )


@bp.route(
    "/v1/reconciliation/bank_statements/{statement}",
    methods=["GET"],
    content_types=ANY_CONTENT_TYPE,
)
@endpoint(bp, params="Params")
def retrieve_bank_statement(call: ApiCall, statement: str) -> dict:
    """One uploaded bank statement, with its first 100 entries (credits and debits)."""
    return services().reconciliation.retrieve_statement(call.merchant_id, statement).to_api()


@bp.route(
    "/v1/reconciliation/bank_statements/{statement}/entries",
    methods=["GET"],
    content_types=ANY_CONTENT_TYPE,
)
@endpoint(bp, params="recon_params.ListBankStatements")
def list_bank_statement_entries(call: ApiCall, statement: str) -> dict:
    """A statement's entries in its order, credits and debits (cursors are entry ids)."""
    params: r.ListBankStatements = call.params
    return services().reconciliation.list_statement_entries(
        call.merchant_id,
        statement,
        **params.page(),
    )


@bp.route("/v1/reconciliation/exceptions", methods=["GET"], content_types=ANY_CONTENT_TYPE)
@endpoint(bp, params="recon_params.ListExceptions")
def list_exceptions(call: ApiCall) -> dict:
    params: r.ListExceptions = call.params
    return services().reconciliation.list_exceptions(
        call.merchant_id,
        status=params.status,
        kind=params.kind,
        run=params.run,
        **params.page(),
    )


@bp.route(
    "/v1/reconciliation/exceptions/{exception}", methods=["GET"], content_types=ANY_CONTENT_TYPE
)
@endpoint(bp, params="Params")
def retrieve_exception(call: ApiCall, exception: str) -> dict:
    return services().reconciliation.retrieve_exception(call.merchant_id, exception).to_api()


@bp.route(
    "/v1/reconciliation/exceptions/{exception}/resolve",
    methods=["POST"],
    content_types=ANY_CONTENT_TYPE,
)
@endpoint(bp, params="recon_params.ResolveException")
def resolve_exception(call: ApiCall, exception: str) -> Outcome:
    """Settle an open exception: `accept_provider` or `write_off`, each a ledger entry."""
    return services().reconciliation.resolve(
        call.merchant_id, exception, call.context, resolution=call.params.resolution
    )


@bp.route(
    "/v1/sandbox/reconciliation/discrepancies", methods=["POST"], content_types=ANY_CONTENT_TYPE
)
@endpoint(bp, params="recon_params.InjectDiscrepancies")
def inject_discrepancies(call: ApiCall) -> dict:
    """Make the simulator's book differ from what it answered, under a seed (sandbox only)."""
    params: r.InjectDiscrepancies = call.params
    return services().reconciliation.inject(
        call.merchant_id,
        connector=params.connector,
        date=params.date,
        seed=params.seed,
        count=params.count,
        kinds=params.kinds,
    )
