"""Named fault-injection points, armed by configuration (never by editing code).

Code calls `faults.check("name")` at the points where a crash would hurt most; an armed point
raises InjectedCrash, which the API layer lets escape like a Lambda dying mid-request (no
response is recorded). Nothing is armed unless PAYFLOW_FAULTS or a test arms it.
"""

from __future__ import annotations

import threading


class InjectedCrash(Exception):
    """A crash injected at a named point."""


class Faults:
    """The set of armed points, each with how many more times it fires (-1: always)."""

    def __init__(self, spec: str = "") -> None:
        self._armed: dict[str, int] = {}
        self._lock = threading.Lock()
        for part in filter(None, (p.strip() for p in spec.split(","))):
            name, _, times = part.partition(":")
            self._armed[name] = int(times) if times else -1

    def arm(self, point: str, times: int = 1) -> None:
        with self._lock:
            self._armed[point] = times

    def disarm(self, point: str | None = None) -> None:
        with self._lock:
            if point is None:
                self._armed.clear()
            else:
                self._armed.pop(point, None)

    def check(self, point: str) -> None:
        """Raise InjectedCrash if `point` is armed."""
        with self._lock:
            remaining = self._armed.get(point)
            if remaining is None or remaining == 0:
                return
            if remaining > 0:
                self._armed[point] = remaining - 1
        raise InjectedCrash(point)
