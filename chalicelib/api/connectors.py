"""/v1/connectors and /v1/routing: which PSPs a merchant routes to, and how they are doing."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chalice import Blueprint

from chalicelib.api.http import ANY_CONTENT_TYPE, ApiCall, endpoint
from chalicelib.container import services
from chalicelib.errors import ParameterMissing

# Annotations only: the models and services are imported by the requests that use them.
if TYPE_CHECKING:
    from chalicelib.api import params as p

connectors = Blueprint(__name__)
bp = connectors


@bp.route("/v1/connectors", methods=["GET"], content_types=ANY_CONTENT_TYPE)
@endpoint(bp, params="Params")
def list_connectors(call: ApiCall) -> dict:
    return services().connector_admin.list_for(call.merchant_id)


@bp.route(
    "/v1/connectors/{connector}/circuit_history", methods=["GET"], content_types=ANY_CONTENT_TYPE
)
@endpoint(bp, params="ListCircuitHistory")
def list_circuit_history(call: ApiCall, connector: str) -> dict:
    """When the connector's circuit opened, half-opened and closed, and why; newest first."""
    params: p.ListCircuitHistory = call.params
    return services().connector_admin.circuit_history(call.merchant_id, connector, params.limit)


@bp.route("/v1/connectors/{connector}", methods=["POST"], content_types=ANY_CONTENT_TYPE)
@endpoint(bp, params="UpdateConnector", auth="admin")
def update_connector(call: ApiCall, connector: str) -> dict:
    return services().connector_admin.update(connector, call.params.changes())


@bp.route("/v1/routing", methods=["GET"], content_types=ANY_CONTENT_TYPE)
@endpoint(bp, params="Params")
def retrieve_routing(call: ApiCall) -> dict:
    return services().connector_admin.routing(call.merchant_id)


@bp.route("/v1/routing", methods=["POST"], content_types=ANY_CONTENT_TYPE)
@endpoint(bp, params="SetRouting")
def set_routing(call: ApiCall) -> dict:
    from chalicelib.domain.routing import CircuitPolicy, RoutingConfig

    params: p.SetRouting = call.params
    if params.use_defaults:
        return services().connector_admin.set_routing(call.merchant_id, None)
    if not params.connectors:
        raise ParameterMissing("Missing required param: connectors.", param="connectors")
    config = RoutingConfig(
        connectors=params.connectors, circuit_breaker=params.circuit_breaker or CircuitPolicy()
    )
    return services().connector_admin.set_routing(call.merchant_id, config)
