"""Which connectors exist for a merchant, and the Connector object that serves each one.

The default routing configuration is chalicelib/config/connectors.json; a merchant may replace
it (POST /v1/routing); run-time settings (POST /v1/connectors/{id}) turn connectors off and dial
the simulators' faults. All of it lives in DynamoDB, so every Lambda instance sees the same.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chalicelib.connectors.adyen_connector import (
    AdyenAccount,
    AdyenConnector,
    Notifications,
    Owner,
)
from chalicelib.connectors.base import Connector
from chalicelib.connectors.razorpay_connector import RazorpayAccount, RazorpayConnector
from chalicelib.connectors.simulator import SimulatorConnector, SimulatorSettings
from chalicelib.connectors.simulator_customer import SimulatorCustomer
from chalicelib.connectors.stripe_connector import StripeConnector
from chalicelib.dal.connectors import ConnectorStateStore
from chalicelib.dal.psp_events import PspEventStore
from chalicelib.dal.simulator import SimulatorLedger
from chalicelib.domain.circuit import Circuit
from chalicelib.domain.routing import ConnectorConfig, ConnectorKind, RoutingConfig

DEFAULT_CONFIG = Path(__file__).resolve().parents[1] / "config" / "connectors.json"


def load_default_routing(path: Path = DEFAULT_CONFIG) -> RoutingConfig:
    data = json.loads(path.read_text())
    return RoutingConfig.model_validate({k: v for k, v in data.items() if not k.startswith("_")})


@dataclass(frozen=True)
class RoutingState:
    """A merchant's routing as one payment sees it: the configuration (run-time switches
    applied), each connector's run-time settings, and each connector's circuit."""

    config: RoutingConfig
    settings: dict[str, dict[str, Any]]
    circuits: dict[str, Circuit]


class ConnectorRegistry:
    """Resolves routing configuration and connector objects."""

    def __init__(
        self,
        defaults: RoutingConfig,
        state: ConnectorStateStore,
        ledger: SimulatorLedger,
        *,
        stripe_api_key: str | None = None,
        stripe_api_base: str | None = None,
        razorpay: RazorpayAccount | None = None,
        adyen: AdyenAccount | None = None,
        psp_events: PspEventStore | None = None,
        owner: Owner | None = None,
        simulator_customer: SimulatorCustomer | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._simulator_customer = simulator_customer
        self.defaults = defaults
        self._state = state
        self._ledger = ledger
        self._stripe_api_key = stripe_api_key
        self._stripe_api_base = stripe_api_base
        self._razorpay = razorpay or RazorpayAccount()
        self._adyen = adyen or AdyenAccount()
        self._psp_events = psp_events
        self._owner = owner
        self._clock = clock
        self._sleep = sleep

    def routing_for(self, merchant_id: str) -> RoutingConfig:
        """The merchant's routing, with run-time `enabled` switches and unconfigured
        connectors (a PSP without its credentials) applied."""
        return self.routing_state(merchant_id).config

    def routing_state(self, merchant_id: str) -> RoutingState:
        """The merchant's routing with the settings and circuit of each connector, read
        together (one round trip for a merchant on the default connectors)."""
        own, settings, circuits = self._state.snapshot(
            merchant_id, (c.id for c in self.defaults.connectors)
        )
        config = RoutingConfig.model_validate(own) if own else self.defaults
        return RoutingState(self._applied(config, settings), settings, circuits)

    def _applied(self, config: RoutingConfig, settings: dict[str, dict[str, Any]]) -> RoutingConfig:
        connectors = []
        for connector in config.connectors:
            enabled = connector.enabled and settings.get(connector.id, {}).get("enabled", True)
            if not self._configured(connector.kind):
                enabled = False
            connectors.append(connector.model_copy(update={"enabled": enabled}))
        return config.model_copy(update={"connectors": connectors})

    def _configured(self, kind: ConnectorKind) -> bool:
        """Whether PayFlow holds the credentials connectors of this kind need."""
        if kind == ConnectorKind.STRIPE:
            return bool(self._stripe_api_key)
        if kind == ConnectorKind.RAZORPAY:
            return self._razorpay.configured
        if kind == ConnectorKind.ADYEN:
            # Adyen's outcomes arrive by notification only: no event store, no Adyen.
            return self._adyen.configured and self._psp_events is not None
        return True

    def connector(
        self, config: ConnectorConfig, settings: dict[str, Any] | None = None
    ) -> Connector:
        """The Connector that serves `config`; `settings`, when the caller has just read them,
        spare the simulator reading its own again."""
        if config.kind == ConnectorKind.STRIPE:
            return StripeConnector(
                self._stripe_api_key,
                connector_id=config.id,
                api_base=self._stripe_api_base,
                timeout_ms=config.timeout_ms,
            )
        if config.kind == ConnectorKind.RAZORPAY:
            return RazorpayConnector(
                self._razorpay, connector_id=config.id, timeout_ms=config.timeout_ms
            )
        if config.kind == ConnectorKind.ADYEN:
            return AdyenConnector(
                self._adyen,
                self._notifications(config.id),
                connector_id=config.id,
                timeout_ms=config.timeout_ms,
                owner=self._owner,
            )
        return SimulatorConnector(
            self._ledger,
            connector_id=config.id,
            settings=(
                (lambda: SimulatorSettings.model_validate(settings))
                if settings is not None
                else (lambda: self.simulator_settings(config.id))
            ),
            take_scripted_failure=lambda: self._state.take_scripted_failure(config.id),
            timeout_ms=config.timeout_ms,
            clock=self._clock,
            sleep=self._sleep,
            customer=self._simulator_customer,
        )

    def _notifications(self, connector_id: str) -> Notifications:
        """What the Adyen connector `connector_id` reads of the notifications stored for it."""
        events = self._psp_events

        def find(code: str, reference: str) -> dict[str, Any] | None:
            return events.find(connector_id, code, reference) if events else None

        return find

    def connector_for(self, merchant_id: str, connector_id: str) -> Connector:
        """The connector a PaymentIntent was authorized by (capture, cancel, refund go there)."""
        config = self.routing_for(merchant_id).connector(connector_id) or self.defaults.connector(
            connector_id
        )
        if config is None:
            # Routing changed since. A provider's connector named after its kind (razorpay,
            # adyen, stripe) is still that provider; the simulator answers for the rest.
            kinds = {kind.value: kind for kind in ConnectorKind}
            kind = kinds.get(connector_id, ConnectorKind.SIMULATOR)
            config = ConnectorConfig(id=connector_id, kind=kind)
        return self.connector(config)

    def simulator_settings(self, connector_id: str) -> SimulatorSettings:
        stored = self._state.settings([connector_id]).get(connector_id, {})
        return SimulatorSettings.model_validate(stored)

    def update_settings(self, connector_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        """Apply run-time changes to a connector; returns the settings now in force."""
        current = self._state.settings([connector_id]).get(connector_id, {})
        merged = SimulatorSettings.model_validate({**current, **changes}).model_dump()
        self._state.save_settings(connector_id, merged)
        return merged
