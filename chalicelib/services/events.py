"""GET /v1/events: the outbox as Stripe's events API shows it."""

from __future__ import annotations

from typing import Any

from chalicelib.dal.events import EventQuery, EventStore
from chalicelib.domain.events import Event
from chalicelib.errors import ResourceMissing


class EventService:
    """Reads a merchant's events."""

    def __init__(self, store: EventStore) -> None:
        self._store = store

    def retrieve(self, merchant_id: str, event_id: str) -> Event:
        event = self._store.get(merchant_id, event_id)
        if event is None:
            raise ResourceMissing(f"No such event: '{event_id}'", param="id")
        return event

    def list_page(
        self,
        merchant_id: str,
        query: EventQuery,
        *,
        limit: int,
        starting_after: str | None,
        ending_before: str | None,
    ) -> dict[str, Any]:
        events, has_more = self._store.list(
            merchant_id,
            query,
            limit=limit,
            starting_after=starting_after,
            ending_before=ending_before,
        )
        return {
            "object": "list",
            "data": [event.to_api() for event in events],
            "has_more": has_more,
            "url": "/v1/events",
        }
