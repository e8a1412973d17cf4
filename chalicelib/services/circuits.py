"""Circuit breakers shared through DynamoDB: every move is a conditional write, so concurrent
Lambda instances agree on one state."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from chalicelib.connectors.base import CircuitOpen
from chalicelib.dal.connectors import ConnectorStateStore
from chalicelib.domain.circuit import (
    Circuit,
    CircuitState,
    open_reason,
    should_open,
    skips_routing,
)
from chalicelib.domain.routing import CircuitPolicy
from chalicelib.observability import Metric, observability

logger = logging.getLogger("payflow.circuits")


class CircuitBreakers:
    """Decides whether a connector may be called, and learns from every call."""

    def __init__(self, store: ConnectorStateStore, clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._clock = clock

    def states(self, connectors: Iterable[str]) -> dict[str, Circuit]:
        return self._store.circuits(connectors)

    def open_circuits(
        self,
        connectors: Iterable[str],
        policy: CircuitPolicy,
        known: dict[str, Circuit] | None = None,
    ) -> set[str]:
        """The connectors routing must skip right now (`known`: circuits just read)."""
        now = self._clock()
        ids = list(connectors)
        circuits = known if known is not None else self._store.circuits(ids)
        return {c for c in ids if c in circuits and skips_routing(circuits[c], now, policy)}

    def admit(self, connector: str, policy: CircuitPolicy, known: Circuit | None = None) -> bool:
        """May this call go to `connector`? Returns True when the call is the half-open probe;
        raises CircuitOpen when the circuit refuses it. `known`: its circuit, just read."""
        circuit = known or self._store.circuits([connector])[connector]
        now = self._clock()
        if circuit.state == CircuitState.CLOSED:
            return False
        if not circuit.cooled_down(now, policy):
            raise CircuitOpen(f"{connector}: circuit {circuit.state.value}")
        # Cool-down over (for an open circuit, or for a probe that never reported back): one
        # caller wins the move to half-open and becomes the probe.
        reason = f"cool-down of {policy.cooldown_seconds:g} s over: one probe call let through"
        if self._store.move_circuit(circuit, CircuitState.HALF_OPEN, reason=reason):
            logger.info("circuit half-open", extra={"connector": connector})
            _moved(connector, CircuitState.HALF_OPEN)
            return True
        raise CircuitOpen(f"{connector}: another call is probing")

    def record(self, connector: str, *, failed: bool, probe: bool, policy: CircuitPolicy) -> None:
        """Count the call's outcome, and move the circuit if it calls for it."""
        circuit = self._store.record_call(connector, failed, policy.window_seconds)
        now = self._clock()
        if probe:
            target = CircuitState.OPEN if failed else CircuitState.CLOSED
            reason = "the probe call failed" if failed else "the probe call succeeded"
            if self._store.move_circuit(circuit, target, reason=reason, reset_counts=not failed):
                logger.info("circuit %s after probe", target.value, extra={"connector": connector})
                _moved(connector, target)
        elif should_open(circuit, now, policy) and self._store.move_circuit(
            circuit,
            CircuitState.OPEN,
            reason=open_reason(circuit, now, policy),
            window=circuit.window(now, policy),
        ):
            logger.warning("circuit opened", extra={"connector": connector})
            _moved(connector, CircuitState.OPEN)

    def history(self, connector: str, limit: int) -> list[dict[str, Any]]:
        """The circuit's latest moves, newest first (from, to, at_ms, reason)."""
        return self._store.circuit_history(connector, limit)


def _moved(connector: str, state: CircuitState) -> None:
    """Only the instance whose conditional write won counts a move, so each is counted once."""
    observability().count(Metric.CIRCUIT_STATE_CHANGES, connector=connector, state=state.value)
