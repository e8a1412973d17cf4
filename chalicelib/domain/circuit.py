"""Circuit breakers: stop sending payments to a connector that keeps failing.

A connector's circuit is closed (calls flow), open (calls are skipped until a cool-down ends)
or half-open (one probe call is let through; its success closes the circuit, its failure opens
it again). It opens when, over a sliding window, the failure rate reaches a threshold with at
least a minimum number of calls. State lives in DynamoDB so every Lambda instance shares it;
these functions only decide, the data layer makes each move a conditional write.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from chalicelib.domain.routing import CircuitPolicy

BUCKET_SECONDS = 5
"""Width of the counting buckets that make up the sliding window."""


class CircuitState(StrEnum):
    """A connector's circuit."""

    CLOSED = "closed"
    """Healthy: calls flow, outcomes are counted."""
    OPEN = "open"
    """Failing: routing skips the connector until the cool-down ends."""
    HALF_OPEN = "half_open"
    """Cool-down over: one probe call decides whether to close or reopen."""


@dataclass(frozen=True)
class Circuit:
    """One connector's circuit as stored."""

    connector: str
    state: CircuitState = CircuitState.CLOSED
    version: int = 0
    opened_at: float | None = None
    calls: dict[int, int] = field(default_factory=dict)
    """Bucket start (epoch seconds) -> calls in that bucket."""
    failures: dict[int, int] = field(default_factory=dict)

    def window(self, now: float, policy: CircuitPolicy) -> tuple[int, int]:
        """(calls, failures) over the sliding window ending at `now`."""
        oldest = now - policy.window_seconds
        calls = sum(n for start, n in self.calls.items() if start + BUCKET_SECONDS > oldest)
        failures = sum(n for start, n in self.failures.items() if start + BUCKET_SECONDS > oldest)
        return calls, failures

    def cooled_down(self, now: float, policy: CircuitPolicy) -> bool:
        return self.opened_at is not None and now >= self.opened_at + policy.cooldown_seconds


def bucket(now: float) -> int:
    return int(now) // BUCKET_SECONDS * BUCKET_SECONDS


def skips_routing(circuit: Circuit, now: float, policy: CircuitPolicy) -> bool:
    """Routing skips an open circuit until its cool-down ends (then a probe may go through)."""
    return circuit.state == CircuitState.OPEN and not circuit.cooled_down(now, policy)


def should_open(circuit: Circuit, now: float, policy: CircuitPolicy) -> bool:
    """A closed circuit opens once the window holds enough calls failing often enough."""
    if circuit.state != CircuitState.CLOSED:
        return False
    calls, failures = circuit.window(now, policy)
    return calls >= policy.minimum_calls and failures / calls >= policy.failure_rate_threshold


def open_reason(circuit: Circuit, now: float, policy: CircuitPolicy) -> str:
    """Why `circuit` opens now, in words: the window's failures against the policy."""
    calls, failures = circuit.window(now, policy)
    rate = failures / calls if calls else 0.0
    return (
        f"{failures} of {calls} calls failed in {policy.window_seconds} s ({rate:.0%}, "
        f"threshold {policy.failure_rate_threshold:.0%}, at least {policy.minimum_calls} calls)"
    )
