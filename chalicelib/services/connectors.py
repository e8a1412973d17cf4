"""Connectors as the API shows them: configuration, live health and circuit state, and the
run-time switches of the simulators."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from chalicelib.connectors.registry import ConnectorRegistry
from chalicelib.dal.connectors import ConnectorStateStore
from chalicelib.domain.circuit import CircuitState
from chalicelib.domain.routing import ConnectorConfig, ConnectorKind, RoutingConfig
from chalicelib.errors import ParameterInvalid, ResourceMissing
from chalicelib.services.circuits import CircuitBreakers


class ConnectorService:
    """Lists connectors with their health, changes run-time settings and merchant routing."""

    def __init__(
        self,
        registry: ConnectorRegistry,
        circuits: CircuitBreakers,
        state: ConnectorStateStore,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._registry = registry
        self._circuits = circuits
        self._state = state
        self._clock = clock

    def list_for(self, merchant_id: str) -> dict[str, Any]:
        routing = self._registry.routing_for(merchant_id)
        ids = [c.id for c in routing.connectors]
        circuits = self._circuits.states(ids)
        settings = self._state.settings(ids)
        now = self._clock()
        data = []
        for config in routing.connectors:
            circuit = circuits[config.id]
            calls, failures = circuit.window(now, routing.circuit_breaker)
            if not config.enabled or circuit.state == CircuitState.OPEN:
                health = "down"
            elif circuit.state == CircuitState.HALF_OPEN or (calls and failures / calls > 0.1):
                health = "degraded"
            else:
                health = "healthy"
            item: dict[str, Any] = {
                "id": config.id,
                "object": "connector",
                **config.model_dump(mode="json", exclude={"id"}),
                "health": health,
                "circuit": {
                    "state": circuit.state.value,
                    "opened_at": int(circuit.opened_at) if circuit.opened_at else None,
                    "window_seconds": routing.circuit_breaker.window_seconds,
                    "calls": calls,
                    "failures": failures,
                    "failure_rate": round(failures / calls, 4) if calls else 0.0,
                },
            }
            if config.kind == ConnectorKind.SIMULATOR:
                item["simulator"] = self._registry.simulator_settings(config.id).model_dump()
                item["simulator"].update(
                    {k: v for k, v in settings.get(config.id, {}).items() if k in item["simulator"]}
                )
            data.append(item)
        return {"object": "list", "data": data, "has_more": False, "url": "/v1/connectors"}

    def circuit_history(self, merchant_id: str, connector_id: str, limit: int) -> dict[str, Any]:
        """The latest moves of the circuit of a connector the merchant routes to, newest
        first; another id is a 404 (circuits are shared, but a merchant sees its own)."""
        routing = self._registry.routing_for(merchant_id)
        if routing.connector(connector_id) is None:
            raise ResourceMissing(f"No such connector: '{connector_id}'", param="connector")
        url = f"/v1/connectors/{connector_id}/circuit_history"
        moves = self._circuits.history(connector_id, limit + 1)
        data = [{"object": "circuit_move", **move} for move in moves[:limit]]
        return {"object": "list", "data": data, "has_more": len(moves) > limit, "url": url}

    def update(self, connector_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        """Change a connector's run-time settings (every merchant sees them at once)."""
        # Settings are kept by connector id: merchants' own simulators are switched here too.
        config = self._registry.defaults.connector(connector_id) or ConnectorConfig(
            id=connector_id, kind=ConnectorKind.SIMULATOR
        )
        if config.kind != ConnectorKind.SIMULATOR and set(changes) - {"enabled"}:
            raise ParameterInvalid(
                f"Only 'enabled' can change on a {config.kind.value} connector.",
                param=sorted(set(changes) - {"enabled"})[0],
            )
        try:
            settings = self._registry.update_settings(connector_id, changes)
        except ValueError as error:
            raise ParameterInvalid(str(error).splitlines()[-1], param="simulator") from error
        return {"id": connector_id, "object": "connector", "kind": config.kind.value, **settings}

    def routing(self, merchant_id: str) -> dict[str, Any]:
        own = self._state.merchant_routing(merchant_id)
        config = RoutingConfig.model_validate(own) if own else self._registry.defaults
        return {"object": "routing", "custom": own is not None, **config.model_dump(mode="json")}

    def set_routing(self, merchant_id: str, config: RoutingConfig | None) -> dict[str, Any]:
        """Replace the merchant's routing (None: back to the defaults)."""
        self._state.save_merchant_routing(
            merchant_id, config.model_dump(mode="json") if config else None
        )
        return self.routing(merchant_id)
