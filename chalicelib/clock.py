"""The clock business timestamps (`created`, ledger entries, `available_on`) are read from.

On AWS it is the wall clock, full stop. In the sandbox it is the wall clock plus an offset that
the admin-only hook ``POST /v1/sandbox/clock`` sets, so that `payflow seed` can write a history
spread over past days through the real API. Idempotency leases, circuit windows and webhook
schedules keep the real time: they govern what happens now, not what a record says.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class SandboxClock:
    """`time()` shifted by a settable offset (one per process, shared by every service)."""

    def __init__(self, source: Callable[[], float] = time.time) -> None:
        self._source = source
        self._offset = 0.0

    def __call__(self) -> float:
        return self._source() + self._offset

    @property
    def offset(self) -> float:
        """Seconds added to the real time (0 when the clock is real)."""
        return self._offset

    def set(self, now: float | None) -> None:
        """Make the clock read `now` from here on (and run on from there); None: real time."""
        # One float assignment: readers on other threads see the old or the new offset.
        self._offset = 0.0 if now is None else now - self._source()
