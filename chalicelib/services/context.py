"""What a service needs to know about the request it serves, and what it hands back."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import BaseModel

from chalicelib.dal.dynamo import ConditionFailed, WriteBatch, commit
from chalicelib.dal.idempotency import IdempotencyStore
from chalicelib.dal.objects import ObjectStore
from chalicelib.domain.events import Event, previous_attributes
from chalicelib.domain.idempotency import Claim, StoredResponse
from chalicelib.domain.ids import new_id
from chalicelib.errors import IdempotencyLeaseLost, ResourceMissing, StaleWrite
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


M = TypeVar("M", bound=BaseModel)


def fetch(
    objects: ObjectStore, kind: str, model: type[M], merchant_id: str, object_id: str, *, param: str
) -> M:
    """The merchant's object, or a 404 that reads the same for unknown and foreign ids."""
    data = objects.get(kind, merchant_id, object_id)
    if data is None:
        raise ResourceMissing(f"No such {kind}: '{object_id}'", param=param)
    return model.model_validate(data)


def list_body(
    objects: ObjectStore,
    kind: str,
    model: type[Any],
    merchant_id: str,
    url: str,
    *,
    limit: int,
    starting_after: str | None,
    ending_before: str | None,
    filters: dict[str, str] | None = None,
    indexed: tuple[str, str] | None = None,
) -> dict[str, Any]:
    """A Stripe list object of the merchant's objects of `kind`, newest first (see
    ObjectStore.list for `filters` and `indexed`)."""
    page = objects.list(
        kind,
        merchant_id,
        limit=limit,
        starting_after=starting_after,
        ending_before=ending_before,
        filters=filters,
        indexed=indexed,
    )
    return {
        "object": "list",
        "data": [model.model_validate(item).to_api() for item in page.items],
        "has_more": page.has_more,
        "url": url,
    }


def add_event(
    objects: ObjectStore,
    batch: WriteBatch,
    ctx: RequestContext,
    *,
    merchant_id: str,
    event_type: str,
    data_object: dict[str, Any],
    created: int,
    before: dict[str, Any] | None = None,
) -> None:
    """Add a Stripe-shaped event to `batch`: the outbox entry of the change it commits with."""
    event = Event(
        id=new_id("evt"),
        merchant_id=merchant_id,
        type=event_type,
        created=created,
        data_object=data_object,
        previous_attributes=previous_attributes(before, data_object),
        request_id=ctx.request_id,
        idempotency_key=ctx.idempotency_key,
    )
    objects.put_new(batch, "event", event, type=event_type)
