"""The payment state machine's tasks: call one connector, and ask it what happened.

Each function takes the execution's state (see domain.payment_intents.workflow_input) and either
returns an authorization for the state machine to carry, or raises one of the connector errors
whose class names the ASL's Retry and Catch name (connectors.base.FAILOVER_ERRORS).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from chalicelib.connectors.base import (
    AuthorizationRequest,
    AuthorizationResult,
    CircuitOpen,
    ConnectorError,
    ConnectorUnavailable,
    TransientConnectorError,
)
from chalicelib.connectors.registry import ConnectorRegistry, RoutingState
from chalicelib.dal.connectors import ConnectorStateStore
from chalicelib.domain.payment_intents import psp_idempotency_key
from chalicelib.domain.psp_answers import excerpt
from chalicelib.observability import Metric, observability
from chalicelib.services.circuits import CircuitBreakers

logger = logging.getLogger("payflow.orchestration")


def carried(result: AuthorizationResult, connector: str) -> dict[str, Any]:
    """An authorization as JSON the state machine carries to the Finalize step."""
    return {
        "connector": connector,
        "status": result.status.value,
        "psp_reference": result.psp_reference,
        "charge_id": result.charge_id,
        "decline": asdict(result.decline) if result.decline else None,
        "next_action": result.next_action,
    }


class PaymentOrchestrator:
    """What the Authorize and Reconcile states run."""

    def __init__(
        self,
        registry: ConnectorRegistry,
        breakers: CircuitBreakers,
        state: ConnectorStateStore,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._registry = registry
        self._breakers = breakers
        self._state = state
        self._clock = clock

    def authorize(
        self,
        task: dict[str, Any],
        state: RoutingState | None = None,
        log: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """Call the candidate at `task["index"]` once. Transient failures raise (the state
        machine retries them with backoff); an open circuit or an unavailable connector raises
        for failover; any answer (authorized, declined, requires_action) is returned.

        The confirm handler makes the first call itself with the `state` its routing just read
        (nothing is read twice) and a `log` that collects the call's record for its own commit;
        the state machine's task passes neither, so it reads the state and writes the record.
        """
        connector_id = task["candidates"][task["index"]]
        state = state or self._registry.routing_state(task["merchant_id"])
        routing = state.config
        config = routing.connector(connector_id)
        started = self._clock()
        try:
            if config is None or not config.enabled:
                raise ConnectorUnavailable(f"{connector_id} is not enabled for this merchant")
            probe = self._breakers.admit(
                connector_id, routing.circuit_breaker, state.circuits.get(connector_id)
            )
        except ConnectorError as error:
            self._record(task, connector_id, type(error).__name__, None, started, log)
            raise
        connector = self._registry.connector(config, state.settings.get(connector_id, {}))
        key = psp_idempotency_key(task["payment_intent_id"], task["attempt"], connector_id)
        try:
            with observability().trace("psp.authorize", connector=connector_id):
                result = connector.authorize(
                    AuthorizationRequest(
                        payment_intent_id=task["payment_intent_id"],
                        amount=task["amount"],
                        currency=task["currency"],
                        payment_method=task["payment_method"],
                        capture=task["capture"],
                        idempotency_key=key,
                        off_session=bool(task.get("off_session")),
                        set_up=bool(task.get("set_up")),
                        merchant_id=task["merchant_id"],
                    )
                )
        except ConnectorError as error:
            transient = isinstance(error, TransientConnectorError)
            self._breakers.record(
                connector_id, failed=transient, probe=probe, policy=routing.circuit_breaker
            )
            # No answer to keep: what the connector said of the failure is the call's answer.
            answer = excerpt({"error": type(error).__name__, "message": str(error)})
            self._record(task, connector_id, type(error).__name__, None, started, log, answer)
            raise
        self._breakers.record(
            connector_id, failed=False, probe=probe, policy=routing.circuit_breaker
        )
        code = result.decline.decline_code or result.decline.code if result.decline else None
        self._record(task, connector_id, result.status.value, code, started, log, result.answer)
        return carried(result, connector_id)

    def find_charged(self, task: dict[str, Any], state: RoutingState) -> dict[str, Any] | None:
        """What any of the merchant's connectors holds under this attempt's key: for a request
        that takes over one which died after a PSP call and before its commit. A connector that
        cannot answer counts as holding nothing (its own key still guards it)."""
        for config in state.config.connectors:
            if not config.enabled:
                continue
            key = psp_idempotency_key(task["payment_intent_id"], task["attempt"], config.id)
            try:
                found = self._registry.connector(config).lookup(key)
            except ConnectorError:
                continue
            if found is not None:
                return carried(found, config.id)
        return None

    def reconcile(self, task: dict[str, Any]) -> dict[str, Any]:
        """After a timeout: did the connector charge anyway? Its answer (found) ends the attempt
        there instead of charging a second connector; {} means nothing happened there."""
        connector_id = task["candidates"][task["index"]]
        connector = self._registry.connector_for(task["merchant_id"], connector_id)
        key = psp_idempotency_key(task["payment_intent_id"], task["attempt"], connector_id)
        started = self._clock()
        with observability().trace("psp.lookup", connector=connector_id):
            found = connector.lookup(key)
        outcome = "reconciled" if found else "not_found"
        self._record(
            task, connector_id, outcome, None, started, answer=found.answer if found else None
        )
        return carried(found, connector_id) if found else {}

    def _record(
        self,
        task: dict[str, Any],
        connector: str,
        outcome: str,
        error_code: str | None,
        started: float,
        log: list[dict[str, Any]] | None = None,
        answer: dict[str, Any] | None = None,
    ) -> None:
        latency_ms = int((self._clock() - started) * 1000)
        record: dict[str, Any] = {
            "object": "payment_attempt",
            "attempt": task["attempt"],
            "connector": connector,
            "outcome": outcome,
            "error_code": error_code,
            "latency_ms": latency_ms,
            "created": int(self._clock()),
        }
        if answer is not None:
            record["answer"] = answer
        if log is not None:
            log.append(record)
        else:
            self._state.record_attempt(task["payment_intent_id"], task["attempt"], record)
        obs = observability()
        if outcome not in _NOT_CALLED:
            obs.emit({Metric.PSP_LATENCY: latency_ms}, connector=connector)
        failed = outcome in _PSP_ERRORS
        if failed:
            obs.emit({Metric.PSP_ERRORS: 1}, connector=connector, code=outcome)
            logger.info("psp call failed", extra={"connector": connector, "outcome": outcome})


_NOT_CALLED = {CircuitOpen.__name__, ConnectorUnavailable.__name__}
"""Outcomes decided before any call reached the PSP (no latency to measure)."""
_PSP_ERRORS = {
    "PspTimeout",
    "PspUnavailable",
    "PspRateLimited",
    CircuitOpen.__name__,
    ConnectorUnavailable.__name__,
}
"""Outcomes of a PSP call that are errors (declines are answers; see connectors.base)."""
