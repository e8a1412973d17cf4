"""The webhook endpoints API and the delivery log API: what a merchant manages and inspects."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from chalicelib.dal.dynamo import ConditionFailed
from chalicelib.dal.events import EventStore
from chalicelib.dal.webhooks import WebhookStore
from chalicelib.domain.ids import new_id, time_prefix
from chalicelib.domain.webhooks import (
    MAX_ENDPOINTS_PER_MERCHANT,
    MAX_SECRET_GRACE_SECONDS,
    Delivery,
    DeliveryStatus,
    EndpointStatus,
    WebhookEndpoint,
    check_enabled_events,
    check_url,
    parse_delivery_id,
)
from chalicelib.errors import InvalidRequestError, ParameterInvalid, ResourceMissing
from chalicelib.webhooks.relay import Dispatcher
from chalicelib.webhooks.sender import resolve_host
from chalicelib.webhooks.signing import new_secret

MAX_RESEND = 1000
"""The most deliveries one resend call queues again."""


class WebhookEndpointService:
    """Create, read, update, delete and roll endpoints; list, retry and resend deliveries."""

    def __init__(
        self,
        store: WebhookStore,
        events: EventStore,
        dispatcher: Dispatcher,
        *,
        allow_private_urls: bool,
        resolve: Callable[[str], Sequence[str]] = resolve_host,
        clock: Callable[[], float] = time.time,
        secret: Callable[[], str] = new_secret,
    ) -> None:
        self._store = store
        self._events = events
        self._dispatcher = dispatcher
        self._allow_private = allow_private_urls
        self._resolve = resolve
        self._clock = clock
        self._secret = secret

    def check_url(self, url: str) -> str:
        """`url` if endpoints may point at it (see `check_url` in the domain rules)."""
        return check_url(url, allow_private=self._allow_private, resolve=self._resolve)

    # -- endpoints -----------------------------------------------------------------------------

    def create(
        self,
        merchant_id: str,
        *,
        url: str,
        enabled_events: list[str],
        description: str | None,
        metadata: dict[str, str] | None,
        api_version: str | None,
        endpoint_id: str | None = None,
    ) -> dict[str, Any]:
        """A new endpoint; the answer is the only one that shows its secret."""
        existing = self._store.all_endpoints(merchant_id)
        if len(existing) >= MAX_ENDPOINTS_PER_MERCHANT:
            raise InvalidRequestError(
                f"You have reached the maximum of {MAX_ENDPOINTS_PER_MERCHANT} webhook endpoints.",
                code="webhook_endpoint_limit_reached",
            )
        endpoint = WebhookEndpoint(
            id=endpoint_id or new_id("we"),
            merchant_id=merchant_id,
            url=self.check_url(url),
            enabled_events=check_enabled_events(enabled_events),
            description=description,
            metadata=metadata or {},
            api_version=api_version,
            created=int(self._clock()),
            secret=self._secret(),
        )
        try:
            self._store.create_endpoint(endpoint)
        except ConditionFailed:
            # The retry of a request whose first run created the endpoint (same reserved id).
            created = self._store.endpoint(merchant_id, endpoint.id)
            if created is None:
                raise
            return created.to_api(with_secret=True)
        return endpoint.to_api(with_secret=True)

    def retrieve(self, merchant_id: str, endpoint_id: str) -> WebhookEndpoint:
        endpoint = self._store.endpoint(merchant_id, endpoint_id)
        if endpoint is None:
            raise ResourceMissing(
                f"No such webhook endpoint: '{endpoint_id}'", param="webhook_endpoint"
            )
        return endpoint

    def list_page(
        self,
        merchant_id: str,
        *,
        limit: int,
        starting_after: str | None,
        ending_before: str | None,
    ) -> dict[str, Any]:
        endpoints, has_more = self._store.endpoints_page(
            merchant_id, limit=limit, starting_after=starting_after, ending_before=ending_before
        )
        return _list("/v1/webhook_endpoints", [e.to_api() for e in endpoints], has_more)

    def update(self, merchant_id: str, endpoint_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        """Change url, enabled_events, description, metadata or `disabled`."""
        endpoint = self.retrieve(merchant_id, endpoint_id)
        update: dict[str, Any] = {"version": endpoint.version + 1}
        if changes.get("url") is not None:
            update["url"] = self.check_url(changes["url"])
        if changes.get("enabled_events") is not None:
            update["enabled_events"] = check_enabled_events(changes["enabled_events"])
        if "description" in changes:
            update["description"] = changes["description"]
        if "metadata" in changes:
            update["metadata"] = _merged_metadata(endpoint.metadata, changes["metadata"])
        if changes.get("disabled") is not None:
            disabled = bool(changes["disabled"])
            update["status"] = EndpointStatus.DISABLED if disabled else EndpointStatus.ENABLED
            if disabled != (endpoint.status == EndpointStatus.DISABLED):
                update["disabled_reason"] = "disabled by the merchant" if disabled else None
                update["failing_since"] = None
        updated = endpoint.model_copy(update=update)
        self._store.save_endpoint(updated, endpoint.version)
        return updated.to_api()

    def delete(self, merchant_id: str, endpoint_id: str) -> dict[str, Any]:
        endpoint = self.retrieve(merchant_id, endpoint_id)
        self._store.delete_endpoint(endpoint)
        return {"id": endpoint.id, "object": "webhook_endpoint", "deleted": True}

    def roll_secret(self, merchant_id: str, endpoint_id: str, *, expires_in: int) -> dict[str, Any]:
        """A new secret (shown in this answer only); the old one keeps signing for
        `expires_in` seconds, so receivers can switch without dropping events."""
        if not 0 <= expires_in <= MAX_SECRET_GRACE_SECONDS:
            raise ParameterInvalid(
                f"expires_in must be between 0 and {MAX_SECRET_GRACE_SECONDS} seconds.",
                param="expires_in",
            )
        endpoint = self.retrieve(merchant_id, endpoint_id)
        rolled = endpoint.model_copy(
            update={
                "secret": self._secret(),
                "previous_secret": endpoint.secret if expires_in else None,
                "previous_secret_expires_at": int(self._clock()) + expires_in
                if expires_in
                else None,
                "version": endpoint.version + 1,
            }
        )
        self._store.save_endpoint(rolled, endpoint.version)
        return rolled.to_api(with_secret=True)

    # -- deliveries ----------------------------------------------------------------------------

    def delivery(self, merchant_id: str, delivery_id: str) -> Delivery:
        ids = parse_delivery_id(delivery_id)
        delivery = self._store.delivery(*ids) if ids else None
        if delivery is None or delivery.merchant_id != merchant_id:
            raise ResourceMissing(f"No such webhook delivery: '{delivery_id}'", param="delivery")
        return delivery

    def deliveries_of_event(self, merchant_id: str, event_id: str) -> dict[str, Any]:
        if self._events.get(merchant_id, event_id) is None:
            raise ResourceMissing(f"No such event: '{event_id}'", param="id")
        deliveries = sorted(self._store.deliveries_of_event(event_id), key=lambda d: d.id)
        return _list(f"/v1/events/{event_id}/deliveries", [d.to_api() for d in deliveries], False)

    def deliveries_of_endpoint(
        self,
        merchant_id: str,
        endpoint_id: str,
        *,
        limit: int,
        starting_after: str | None,
        ending_before: str | None,
        status: DeliveryStatus | None,
    ) -> dict[str, Any]:
        self.retrieve(merchant_id, endpoint_id)
        deliveries, has_more = self._store.deliveries_of_endpoint(
            endpoint_id,
            limit=limit,
            starting_after=starting_after,
            ending_before=ending_before,
            status=status,
        )
        return _list(
            f"/v1/webhook_endpoints/{endpoint_id}/deliveries",
            [d.to_api() for d in deliveries],
            has_more,
        )

    def retry(self, merchant_id: str, delivery_id: str) -> dict[str, Any]:
        """Queue one attempt of the delivery now, whatever its status; the schedule (if it is
        still running) is not changed."""
        delivery = self.delivery(merchant_id, delivery_id)
        endpoint = self.retrieve(merchant_id, delivery.endpoint_id)
        if endpoint.status == EndpointStatus.DISABLED:
            raise InvalidRequestError(
                "This webhook endpoint is disabled; enable it before retrying its deliveries.",
                code="webhook_endpoint_disabled",
            )
        self._dispatcher.retry_now(delivery)
        return delivery.to_api()

    def resend_failed(self, merchant_id: str, endpoint_id: str, *, since: int) -> dict[str, Any]:
        """Start the schedule again for every failed delivery of the endpoint whose event was
        created at or after `since` (at most MAX_RESEND per call)."""
        endpoint = self.retrieve(merchant_id, endpoint_id)
        if endpoint.status == EndpointStatus.DISABLED:
            raise InvalidRequestError(
                "This webhook endpoint is disabled; enable it before resending to it.",
                code="webhook_endpoint_disabled",
            )
        since_id = "wd_" + time_prefix(max(0, since) * 1000)
        resent: list[str] = []
        cursor: str | None = None
        while len(resent) < MAX_RESEND:
            page, has_more = self._store.deliveries_of_endpoint(
                endpoint_id,
                limit=100,
                starting_after=cursor,
                status=DeliveryStatus.FAILED,
                since_id=since_id,
            )
            for delivery in page:
                if self._dispatcher.requeue(delivery) is not None:
                    resent.append(delivery.id)
            if not has_more or not page:
                break
            cursor = page[-1].id
        return {
            "object": "webhook_endpoint.resend",
            "webhook_endpoint": endpoint_id,
            "since": since,
            "resent": len(resent),
            "deliveries": resent,
        }


def _list(url: str, data: list[dict[str, Any]], has_more: bool) -> dict[str, Any]:
    return {"object": "list", "data": data, "has_more": has_more, "url": url}


def _merged_metadata(current: dict[str, str], changes: dict[str, str] | None) -> dict[str, str]:
    # Stripe's rules: "" for the whole metadata clears it; "" for one key removes that key.
    if not changes:
        return {}
    merged = {**current, **changes}
    return {k: v for k, v in merged.items() if v != ""}
