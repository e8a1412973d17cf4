"""/graphql: a read-only GraphQL API over payments, charges, refunds, events, deliveries,
connectors and analytics, with the same keys and tenant isolation as REST.

The schema and graphql-core are imported inside the view, on the first query: no other route
or Lambda function pays for them (chalicelib/api/graphql_schema.py holds the schema, its
resolvers and its depth and cost limits).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from chalice import Blueprint

from chalicelib.api.http import ANY_CONTENT_TYPE, ApiCall, endpoint

# Annotations only: the models are imported by the requests that use them.
if TYPE_CHECKING:
    from chalicelib.api import params as p

graphql = Blueprint(__name__)
bp = graphql


@bp.route("/graphql", methods=["POST"], content_types=ANY_CONTENT_TYPE)
@endpoint(bp, params="GraphQLRequest")
def graphql_query(call: ApiCall) -> dict:
    """Run one read-only query; GraphQL errors come back in `errors` with HTTP 200, as the
    GraphQL-over-HTTP spec has it for application/json."""
    from chalicelib.api import graphql_schema

    params: p.GraphQLRequest = call.params
    return graphql_schema.run(
        call.merchant_id, params.query, params.variables, params.operationName
    )
