"""Named fault-injection points, armed by configuration (never by editing code).

Code calls `faults.check("name")` at the points where a crash would hurt most; an armed point
raises InjectedCrash, which the API layer lets escape like a Lambda dying mid-request (no
response is recorded). Nothing is armed unless PAYFLOW_FAULTS or a test arms it.
"""

from __future__ import annotations

import threading


class InjectedCrash(Exception):
    """A crash injected at a named point: the process 'dies' and records nothing."""


class InjectedError(Exception):
    """An ordinary unexpected error injected at a named point (the API answers 500)."""


class Faults:
    """The armed points, each with how many more times it fires (-1: always) and whether it
    crashes or raises an ordinary error. Spec: "point[:times][:error],..."."""

    def __init__(self, spec: str = "") -> None:
        self._armed: dict[str, tuple[int, bool]] = {}
        self._lock = threading.Lock()
        for part in filter(None, (p.strip() for p in spec.split(","))):
            name, _, rest = part.partition(":")
            times, _, kind = rest.partition(":")
            self._armed[name] = (int(times) if times else -1, kind != "error")

    def arm(self, point: str, times: int = 1, *, crash: bool = True) -> None:
        with self._lock:
            self._armed[point] = (times, crash)

    def disarm(self, point: str | None = None) -> None:
        with self._lock:
            if point is None:
                self._armed.clear()
            else:
                self._armed.pop(point, None)

    def armed(self, point: str) -> bool:
        """True while `point` would still fire."""
        with self._lock:
            return self._armed.get(point, (0, True))[0] != 0

    def check(self, point: str) -> None:
        """Raise InjectedCrash (or InjectedError) if `point` is armed."""
        with self._lock:
            remaining, crash = self._armed.get(point, (0, True))
            if remaining == 0:
                return
            if remaining > 0:
                self._armed[point] = (remaining - 1, crash)
        raise InjectedCrash(point) if crash else InjectedError(point)
