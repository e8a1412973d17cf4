"""What a service needs to know about the request it serves, and what it hands back."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from chalicelib.dal.dynamo import ConditionFailed, WriteBatch, commit
from chalicelib.dal.idempotency import IdempotencyStore
from chalicelib.domain.idempotency import Claim, StoredResponse
from chalicelib.errors import IdempotencyLeaseLost, StaleWrite
from chalicelib.faults import Faults


@dataclass
class RequestContext:
    """The request on whose behalf a service acts."""

    request_id: str | None
    idempotency_key: str | None = None
    claim: Claim | None = None


@dataclass(frozen=True)
class Outcome:
    """A result to send back: HTTP status and Stripe-shaped body."""

    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


class Committer:
    """Commits a batch of writes together with the request's idempotency completion, so the
    object, its events and the stored response exist together or not at all."""

    def __init__(
        self,
        client: Any,
        idempotency: IdempotencyStore,
        faults: Faults,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._client = client
        self._idempotency = idempotency
        self._faults = faults
        self.clock = clock

    def commit(
        self, ctx: RequestContext, batch: WriteBatch, outcome: Outcome, *, complete: bool = True
    ) -> Outcome:
        """Commit `batch`; with `complete`, the request's idempotency record is completed with
        `outcome` in the same transaction (without, the caller completes it later)."""
        if complete and ctx.claim is not None:
            self._idempotency.add_completion(
                batch, ctx.claim, StoredResponse(outcome.status, outcome.body)
            )
        self._faults.check("before_commit")
        try:
            commit(self._client, batch)
        except ConditionFailed as failure:
            if failure.label == "idempotency":
                raise IdempotencyLeaseLost(
                    "This request took longer than its Idempotency-Key lease and another request "
                    "with the same key took over. Retry to get that request's result.",
                    headers={"Stripe-Should-Retry": "true"},
                ) from failure
            raise StaleWrite(
                "The object was changed by a concurrent request. Retry the request.",
                headers={"Stripe-Should-Retry": "true"},
            ) from failure
        self._faults.check("after_commit")
        return outcome
