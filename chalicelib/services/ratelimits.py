"""Per-key rate limits with Stripe's semantics, shared by every instance.

Each API key has a budget of requests per second for reads (GET) and for writes (every other
method). Instances take leases from one shared counter per key, kind and second
(chalicelib/dal/ratelimit.py): a conditional write grants `lease` tokens, which the instance then
spends locally. The counter never grants more than the limit in a second, so all instances
together never serve more; the cost is one DynamoDB write per lease instead of one per request.
Tokens an instance leased and did not spend are lost when their second ends: near the limit an
instance may refuse a request another instance's lease could have served, never the reverse.

Past the limit the answer is Stripe's: 429, `rate_limit`, with `Stripe-Should-Retry: true`
(stripe-python then retries with its backoff, if it was given retries) and `Retry-After: 1`.
If the counter table cannot be reached the request is served: limits protect the service, and
an unreachable counter must not take the API down with it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from chalicelib.dal.ratelimit import RateLimitStore
from chalicelib.errors import RateLimited

logger = logging.getLogger("payflow.ratelimits")

Kind = Literal["read", "write"]
_MAX_LEASES = 10_000


@dataclass
class _Lease:
    second: int
    left: int
    exhausted: bool = False
    """The shared counter was full: it only grows within its second, so refuse locally."""


@dataclass
class LimiterStats:
    """What the limiter did in this process: checks made and shared-counter writes spent."""

    checks: int = 0
    round_trips: int = 0
    refused: int = 0


class RateLimiter:
    """Refuses a key's request past its per-second limit; `check` before doing any work."""

    def __init__(
        self,
        store: RateLimitStore | None,
        *,
        lease: float = 0.1,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._lease = lease
        self._clock = clock
        self._leases: dict[tuple[str, Kind], _Lease] = {}
        self._lock = threading.Lock()
        self.stats = LimiterStats()

    def check(self, bucket: str, kind: Kind, limit: int) -> None:
        """Spend one request of `bucket`'s `kind` budget; RateLimited (429) when none is left.
        `limit` is requests per second; 0 means unlimited."""
        if limit <= 0 or self._store is None:
            return
        second = int(self._clock())
        with self._lock:
            self.stats.checks += 1
            lease = self._leases.get((bucket, kind))
            if lease is not None and lease.second == second:
                if lease.left > 0:
                    lease.left -= 1
                    return
                if lease.exhausted:
                    self.stats.refused += 1
                    raise _refusal(limit, kind)
        tokens = self._take(bucket, kind, second, limit)
        with self._lock:
            if not tokens:
                self.stats.refused += 1
                self._leases[(bucket, kind)] = _Lease(second, 0, exhausted=True)
                raise _refusal(limit, kind)
            if len(self._leases) >= _MAX_LEASES:
                self._leases.clear()
            current = self._leases.get((bucket, kind))
            left = tokens - 1
            if current is not None and current.second == second:
                left += current.left
            self._leases[(bucket, kind)] = _Lease(second, left)

    def _take(self, bucket: str, kind: Kind, second: int, limit: int) -> int:
        assert self._store is not None
        size = max(1, min(limit, round(limit * self._lease)))
        counter = f"{bucket}:{kind}"
        try:
            self._count_round_trip()
            grant = self._store.grant(counter, second, size, limit)
            left = limit - (grant.count if grant.count is not None else limit)
            if not grant.tokens and left > 0:
                # Less than a lease is left in this second: take exactly that (once a second).
                self._count_round_trip()
                grant = self._store.grant(counter, second, min(size, left), limit)
        except Exception:
            logger.exception("rate-limit counter unavailable; serving the request")
            return 1
        return grant.tokens

    def _count_round_trip(self) -> None:
        with self._lock:
            self.stats.round_trips += 1


def _refusal(limit: int, kind: Kind) -> RateLimited:
    return RateLimited(
        f"Request rate limit exceeded. You can send at most {limit} {kind} requests per second "
        "with this API key. Learn more about rate limits at https://stripe.com/docs/rate-limits.",
        headers={"Stripe-Should-Retry": "true", "Retry-After": "1"},
        extra={"doc_url": "https://stripe.com/docs/error-codes/rate-limit"},
    )
