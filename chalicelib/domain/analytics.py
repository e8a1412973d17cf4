"""Payment analytics and connector alerts: the rules, with no I/O.

Every PSP call (a payment attempt at one connector) is folded once into counters of time
buckets per merchant, connector and payment method: a minute bucket (for alert windows), an
hour and a day bucket (for charts). A report reads buckets, never payments, so its cost grows
with the range and the number of connectors, not with the number of payments. Latency is kept
as a histogram of fixed bins, so percentiles are the upper edge of the bin they fall in.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

LATENCY_BINS_MS: tuple[int, ...] = (10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000)
"""Upper edges of the latency histogram's bins; slower calls land in the last, open bin."""
OVERFLOW_BIN = "inf"

ALERT_EVENT = "payflow.connector.alert"
"""A connector's success rate fell under the merchant's threshold (PayFlow's own event type)."""
ALERT_RESOLVED_EVENT = "payflow.connector.alert_resolved"
"""The connector's success rate is back at or over the threshold."""
EVENT_TYPES = (ALERT_EVENT, ALERT_RESOLVED_EVENT)


class Granularity(StrEnum):
    """Bucket widths; each PSP call is counted in one bucket of each."""

    MINUTE = "minute"
    """For alert windows (up to an hour)."""
    HOUR = "hour"
    """For charts over up to a week."""
    DAY = "day"
    """For charts over longer ranges."""

    @property
    def seconds(self) -> int:
        return {"minute": 60, "hour": 3600, "day": 86400}[self.value]

    def start(self, at: float) -> int:
        return int(at) // self.seconds * self.seconds


class Outcome(StrEnum):
    """How a PSP call counts."""

    SUCCEEDED = "succeeded"
    """The PSP authorized (or asked for authentication, or had charged after a timeout)."""
    DECLINED = "declined"
    """The PSP answered with a refusal."""
    ERROR = "error"
    """No usable answer: timeout, unavailable, rate limited."""
    SKIPPED = "skipped"
    """Never sent: the circuit was open or the connector unavailable (not in success rates)."""


_SUCCESS = {"authorized", "requires_action", "reconciled"}
_SKIPPED = {"CircuitOpen", "ConnectorUnavailable"}
_NOT_A_CALL = {"not_found"}
"""A lookup after a timeout that found nothing: the timeout itself was already counted."""


def classify(outcome: str) -> Outcome | None:
    """How an attempt record's `outcome` counts (None: not counted at all)."""
    if outcome in _NOT_A_CALL:
        return None
    if outcome in _SUCCESS:
        return Outcome.SUCCEEDED
    if outcome == "declined":
        return Outcome.DECLINED
    if outcome in _SKIPPED:
        return Outcome.SKIPPED
    return Outcome.ERROR


def latency_bin(latency_ms: int) -> str:
    """The histogram bin of a latency: the first upper edge it does not exceed."""
    for edge in LATENCY_BINS_MS:
        if latency_ms <= edge:
            return str(edge)
    return OVERFLOW_BIN


@dataclass(frozen=True)
class CallFact:
    """One PSP call as analytics counts it."""

    merchant_id: str
    payment_intent_id: str
    attempt_key: str
    """Unique per call (the attempt record's sort key): folding is once per key."""
    connector: str
    method: str
    outcome: Outcome
    latency_ms: int
    reason: str | None
    """The decline code, or the error's name, for the reasons chart."""
    created: int
    amount: int
    currency: str


def counters(fact: CallFact) -> dict[str, int]:
    """The counters one call adds to each of its buckets (flat names: DynamoDB ADDs them)."""
    added = {"calls": 1, f"outcome_{fact.outcome.value}": 1}
    if fact.outcome != Outcome.SKIPPED:
        added[f"latency_{latency_bin(fact.latency_ms)}"] = 1
    if fact.reason and fact.outcome in (Outcome.DECLINED, Outcome.ERROR):
        added[f"reason_{fact.reason}"] = 1
    if fact.outcome == Outcome.SUCCEEDED:
        added[f"volume_{fact.currency}"] = fact.amount
    return added


def percentile(histogram: Mapping[str, int], fraction: float) -> int | None:
    """The upper edge of the bin holding the `fraction` quantile (None without calls); the
    open last bin reports its lower edge."""
    total = sum(histogram.values())
    if total == 0:
        return None
    rank = fraction * total
    seen = 0
    for edge in (*map(str, LATENCY_BINS_MS), OVERFLOW_BIN):
        seen += histogram.get(edge, 0)
        if seen >= rank:
            return LATENCY_BINS_MS[-1] if edge == OVERFLOW_BIN else int(edge)
    return LATENCY_BINS_MS[-1]


@dataclass
class Tally:
    """Counters summed over buckets, read back by prefix."""

    values: dict[str, int] = field(default_factory=dict)

    def add(self, counts: Mapping[str, Any]) -> None:
        for name, value in counts.items():
            if isinstance(value, int) and not isinstance(value, bool):
                self.values[name] = self.values.get(name, 0) + value

    def group(self, prefix: str) -> dict[str, int]:
        return {
            name.removeprefix(prefix): value
            for name, value in self.values.items()
            if name.startswith(prefix)
        }

    @property
    def attempted(self) -> int:
        """Calls that reached the PSP (the denominator of the success rate)."""
        outcomes = self.group("outcome_")
        return sum(n for name, n in outcomes.items() if name != Outcome.SKIPPED.value)

    @property
    def succeeded(self) -> int:
        return self.group("outcome_").get(Outcome.SUCCEEDED.value, 0)

    def success_rate(self) -> float | None:
        return round(self.succeeded / self.attempted, 4) if self.attempted else None

    def summary(self) -> dict[str, Any]:
        """The tally as the analytics API shows it."""
        latency = self.group("latency_")
        return {
            "calls": self.values.get("calls", 0),
            "attempted": self.attempted,
            "succeeded": self.succeeded,
            "success_rate": self.success_rate(),
            "outcomes": self.group("outcome_"),
            "latency_ms": {
                "p50": percentile(latency, 0.5),
                "p90": percentile(latency, 0.9),
                "p99": percentile(latency, 0.99),
            },
            "reasons": dict(sorted(self.group("reason_").items(), key=lambda kv: -kv[1])),
            "volume": self.group("volume_"),
        }


def tally(buckets: Iterable[Mapping[str, Any]]) -> Tally:
    total = Tally()
    for bucket in buckets:
        total.add(bucket)
    return total


# -- alerts ------------------------------------------------------------------------------------


class AlertSettings(BaseModel):
    """A merchant's failure-spike rule, one for all its connectors."""

    enabled: bool = True
    threshold: float = Field(default=0.8, ge=0, le=1)
    """Alert when a connector's success rate over the window falls under this."""
    window_seconds: int = Field(default=300, ge=60, le=3600)
    """The sliding window, in whole minutes (the minute buckets)."""
    minimum_calls: int = Field(default=20, ge=1, le=10_000)
    """Calls the window must hold before its rate means anything."""

    def to_api(self) -> dict[str, Any]:
        return {"object": "alert_settings", **self.model_dump()}


class AlertStatus(StrEnum):
    """A connector alert's state."""

    FIRING = "firing"
    """The success rate is under the threshold."""
    RESOLVED = "resolved"
    """It recovered; the alert stays listed with when it ended."""


class Alert(BaseModel):
    """One failure spike of one connector for one merchant."""

    id: str
    merchant_id: str
    connector: str
    status: AlertStatus
    created: int
    resolved_at: int | None = None
    success_rate: float
    """At the time it was raised (or resolved)."""
    attempted: int
    threshold: float
    window_seconds: int
    version: int = 0

    def to_api(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "connector_alert",
            "connector": self.connector,
            "status": self.status.value,
            "created": self.created,
            "resolved_at": self.resolved_at,
            "success_rate": self.success_rate,
            "attempted": self.attempted,
            "threshold": self.threshold,
            "window_seconds": self.window_seconds,
            "livemode": False,
        }


class AlertMove(StrEnum):
    """What an evaluation decides."""

    RAISE = "raise"
    RESOLVE = "resolve"
    NONE = "none"


def evaluate(window: Tally, settings: AlertSettings, firing: bool) -> AlertMove:
    """Raise when the window holds enough calls failing too often and nothing is firing;
    resolve a firing alert once the rate is back (with enough calls to say so)."""
    rate = window.success_rate()
    if not settings.enabled or rate is None or window.attempted < settings.minimum_calls:
        return AlertMove.NONE
    if rate < settings.threshold and not firing:
        return AlertMove.RAISE
    if rate >= settings.threshold and firing:
        return AlertMove.RESOLVE
    return AlertMove.NONE
