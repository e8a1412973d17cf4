"""One way to keep any Stripe object family in the payments table: read, list, write, announce.

A `Resource` names a family (kind, model, the attributes its lists filter on); `Resources` does
for every family what the PaymentIntent code once did for itself alone: fetch with a 404 that
reads the same for unknown and foreign ids, Stripe-cursor lists, conditional writes into a
batch, and the event that commits with each change. New families (Customers, PaymentMethods,
Charges, SetupIntents) are a Resource each, not a copy of this code.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from chalicelib.dal.dynamo import WriteBatch
from chalicelib.dal.objects import ObjectStore
from chalicelib.errors import ResourceMissing
from chalicelib.services.context import Committer, RequestContext, add_event
from chalicelib.services.search import search_body


class Model(Protocol):
    id: str
    merchant_id: str
    version: int

    def to_api(self) -> dict[str, Any]: ...

    def model_dump(self, *, mode: str = ..., exclude_defaults: bool = ...) -> dict[str, Any]: ...


M = TypeVar("M", bound=Model)


@dataclass(frozen=True)
class Resource(Generic[M]):
    """A family of objects: its stored kind, its model, and how it shows in the API."""

    kind: str
    """The `sk` of its items (`customer`); also the `object` of its API bodies."""
    model: type[M]
    url: str
    """Its list's URL (`/v1/customers`)."""
    noun: str
    """How a 404 names it (`customer` in "No such customer: 'cus_...'")."""
    top_level: Callable[[M], dict[str, str]] = field(default=lambda obj: {})
    """The attributes stored beside `data` that list filters and conditions read."""


class Resources:
    """Reads and writes of every family, through one ObjectStore and one Committer."""

    def __init__(self, objects: ObjectStore, committer: Committer) -> None:
        self.objects = objects
        self.committer = committer

    def now(self) -> int:
        return int(self.committer.clock())

    def find(self, resource: Resource[M], merchant_id: str, object_id: str) -> M | None:
        data = self.objects.get(resource.kind, merchant_id, object_id)
        return None if data is None else resource.model.model_validate(data)  # type: ignore[attr-defined,no-any-return]

    def get(self, resource: Resource[M], merchant_id: str, object_id: str, *, param: str) -> M:
        """The merchant's object, or the 404 Stripe gives for an unknown id."""
        found = self.find(resource, merchant_id, object_id)
        if found is None:
            raise ResourceMissing(f"No such {resource.noun}: '{object_id}'", param=param)
        return found

    def list_body(
        self,
        resource: Resource[M],
        merchant_id: str,
        *,
        limit: int,
        starting_after: str | None,
        ending_before: str | None,
        filters: dict[str, str | None] | None = None,
        url: str | None = None,
    ) -> dict[str, Any]:
        """A Stripe list object of the merchant's objects, newest first; `filters` match
        stored attributes exactly, and one without a value (not asked for) is left out."""
        given = {name: value for name, value in (filters or {}).items() if value}
        page = self.objects.list(
            resource.kind,
            merchant_id,
            limit=limit,
            starting_after=starting_after,
            ending_before=ending_before,
            filters=given or None,
        )
        return {
            "object": "list",
            "data": [resource.model.model_validate(item).to_api() for item in page.items],  # type: ignore[attr-defined]
            "has_more": page.has_more,
            "url": url or resource.url,
        }

    def search_body(
        self, resource: Resource[M], merchant_id: str, *, query: str, limit: int, page: str | None
    ) -> dict[str, Any]:
        """A Stripe search result of the merchant's objects matching `query` (newest first)."""
        return search_body(
            self.objects,
            resource.kind,
            resource.model,
            merchant_id,
            f"{resource.url}/search",
            query=query,
            limit=limit,
            page=page,
        )

    def add_new(self, batch: WriteBatch, resource: Resource[M], obj: M) -> None:
        self.objects.put_new(batch, resource.kind, obj, **resource.top_level(obj))

    def add_version(self, batch: WriteBatch, resource: Resource[M], obj: M, expected: int) -> None:
        """`obj` replaces the version `expected` read (fails if anyone wrote it since)."""
        self.objects.put_version(batch, resource.kind, obj, expected, **resource.top_level(obj))

    def add_event(
        self,
        batch: WriteBatch,
        ctx: RequestContext,
        event_type: str,
        after: Model,
        before: Model | None = None,
    ) -> None:
        """The event announcing a change, written in the change's own transaction."""
        add_event(
            self.objects,
            batch,
            ctx,
            merchant_id=after.merchant_id,
            event_type=event_type,
            data_object=after.to_api(),
            created=self.now(),
            before=before.to_api() if before is not None else None,
        )
