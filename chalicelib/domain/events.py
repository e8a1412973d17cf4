"""Stripe-shaped events: what a state change announces, written in the change's own transaction."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

API_VERSION = "2026-10-28.endive"
"""The Stripe API version PayFlow's objects follow (the one stripe-python 16 pins)."""


class Event(BaseModel):
    """An event as stored in the outbox."""

    id: str
    merchant_id: str
    type: str
    created: int
    data_object: dict[str, Any]
    previous_attributes: dict[str, Any] | None = None
    request_id: str | None = None
    idempotency_key: str | None = None
    pending_webhooks: int = 0

    def to_api(self) -> dict[str, Any]:
        data: dict[str, Any] = {"object": self.data_object}
        if self.previous_attributes is not None:
            data["previous_attributes"] = self.previous_attributes
        return {
            "id": self.id,
            "object": "event",
            "api_version": API_VERSION,
            "created": self.created,
            "data": data,
            "livemode": False,
            "pending_webhooks": self.pending_webhooks,
            "request": {"id": self.request_id, "idempotency_key": self.idempotency_key},
            "type": self.type,
        }


def previous_attributes(
    before: dict[str, Any] | None, after: dict[str, Any]
) -> dict[str, Any] | None:
    """The top-level fields that changed, with their old values (None for a new object)."""
    if before is None:
        return None
    return {key: before.get(key) for key in after if before.get(key) != after[key]}
