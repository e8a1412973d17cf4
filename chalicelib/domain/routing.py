"""Routing: which connectors may take a payment, and in which order.

Order of decisions: eligibility (enabled, payment method type, currency, card BIN pattern,
amount range), then circuit state (open circuits are skipped), then priority (lower first) with
a weighted random split among connectors of equal priority.
"""

from __future__ import annotations

import fnmatch
import random
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from chalicelib.domain.money import MAX_AMOUNT


class ConnectorKind(StrEnum):
    """Which connector implementation serves a configured connector."""

    SIMULATOR = "simulator"
    """PayFlow's built-in PSP simulator."""
    STRIPE = "stripe"
    """Stripe, through the official SDK (needs STRIPE_API_KEY)."""
    RAZORPAY = "razorpay"
    """Razorpay, through the official SDK (needs RAZORPAY_KEY_ID and RAZORPAY_KEY_SECRET)."""
    ADYEN = "adyen"
    """Adyen, through the official SDK (needs ADYEN_API_KEY and ADYEN_MERCHANT_ACCOUNT)."""


class ConnectorConfig(BaseModel):
    """One connector's routing rules."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=64, pattern=r"^[a-z0-9_]+$")
    kind: ConnectorKind
    enabled: bool = True
    payment_method_types: list[str] = Field(default_factory=lambda: ["card"])
    currencies: list[str] = Field(default_factory=lambda: ["*"])
    card_bins: list[str] = Field(default_factory=lambda: ["*"])
    """fnmatch patterns on the card's BIN, such as "51*"."""
    min_amount: int = Field(default=1, ge=1)
    max_amount: int = Field(default=MAX_AMOUNT, ge=1)
    priority: int = Field(default=1, ge=0)
    weight: int = Field(default=1, ge=0)
    """Share of volume among connectors of equal priority (0: only as a fallback)."""
    timeout_ms: int = Field(default=5000, ge=1, le=60_000)


class CircuitPolicy(BaseModel):
    """When a connector's circuit opens and when it may be probed again."""

    model_config = ConfigDict(extra="forbid")

    window_seconds: int = Field(default=60, ge=1)
    failure_rate_threshold: float = Field(default=0.5, gt=0, le=1)
    minimum_calls: int = Field(default=10, ge=1)
    cooldown_seconds: float = Field(default=30, ge=0)


class RoutingConfig(BaseModel):
    """The connectors a merchant routes between, and the circuit-breaker policy."""

    model_config = ConfigDict(extra="forbid")

    connectors: list[ConnectorConfig] = Field(min_length=1)
    circuit_breaker: CircuitPolicy = Field(default_factory=CircuitPolicy)

    def connector(self, connector_id: str) -> ConnectorConfig | None:
        return next((c for c in self.connectors if c.id == connector_id), None)


class PaymentFacts(BaseModel):
    """What routing needs to know about a payment."""

    amount: int
    currency: str
    payment_method_type: str
    card_bin: str | None = None


class Decision(BaseModel):
    """The routing decision, recorded on the PaymentIntent's attempt."""

    candidates: list[str]
    """Connector ids in the order they will be tried."""
    skipped: dict[str, str] = Field(default_factory=dict)
    """Connector id -> why it was not a candidate."""

    def to_api(self) -> dict[str, Any]:
        return self.model_dump()


def ineligibility(connector: ConnectorConfig, payment: PaymentFacts) -> str | None:
    """Why `connector` cannot take `payment`, or None when it can."""
    if not connector.enabled:
        return "disabled"
    if payment.payment_method_type not in connector.payment_method_types:
        return f"payment method type {payment.payment_method_type} not supported"
    if "*" not in connector.currencies and payment.currency not in connector.currencies:
        return f"currency {payment.currency} not supported"
    if payment.card_bin is not None and not any(
        fnmatch.fnmatchcase(payment.card_bin, pattern) for pattern in connector.card_bins
    ):
        return f"card BIN {payment.card_bin} not matched"
    if not connector.min_amount <= payment.amount <= connector.max_amount:
        return f"amount outside {connector.min_amount}..{connector.max_amount}"
    return None


def _weighted_order(connectors: list[ConnectorConfig], rng: random.Random) -> list[str]:
    # Weighted random permutation: each draw picks among the rest in proportion to weight, so
    # the first choice follows the configured split and the rest remain as failover.
    remaining = list(connectors)
    order: list[str] = []
    while remaining:
        total = sum(c.weight for c in remaining)
        if total == 0:
            order.extend(c.id for c in remaining)
            break
        point = rng.uniform(0, total)
        for connector in remaining:
            point -= connector.weight
            if point <= 0:
                break
        order.append(connector.id)
        remaining.remove(connector)
    return order


def route(
    config: RoutingConfig,
    payment: PaymentFacts,
    open_circuits: set[str],
    rng: random.Random,
) -> Decision:
    """Candidates in the order to try them, and why the others were left out."""
    skipped: dict[str, str] = {}
    eligible: list[ConnectorConfig] = []
    for connector in config.connectors:
        reason = ineligibility(connector, payment)
        if reason is None and connector.id in open_circuits:
            reason = "circuit open"
        if reason is None:
            eligible.append(connector)
        else:
            skipped[connector.id] = reason
    candidates: list[str] = []
    for priority in sorted({c.priority for c in eligible}):
        tier = [c for c in eligible if c.priority == priority]
        candidates.extend(_weighted_order(tier, rng))
    return Decision(candidates=candidates, skipped=skipped)
