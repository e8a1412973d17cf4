"""Merchants and API-key authentication."""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable
from typing import Any

from chalicelib.dal.merchants import MerchantStore, key_digest
from chalicelib.domain.ids import new_id, new_secret
from chalicelib.errors import AuthenticationError, PermissionDenied


def _masked(key: str) -> str:
    return f"{key[:8]}{'*' * 4}{key[-4:]}" if len(key) > 12 else "****"


class MerchantService:
    """Creates merchants and resolves secret keys, with a short in-process cache so a warm
    Lambda does not spend a DynamoDB round trip on every request."""

    def __init__(
        self,
        store: MerchantStore,
        *,
        admin_key: str,
        cache_seconds: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._admin_key = admin_key
        self._cache_seconds = cache_seconds
        self._clock = clock
        self._wall_clock = wall_clock
        self._cache: dict[str, tuple[str, float]] = {}

    def create(
        self,
        *,
        name: str | None = None,
        merchant_id: str | None = None,
        secret_key: str | None = None,
    ) -> dict[str, Any]:
        """A new merchant and its secret key (returned here once, stored only as a digest).

        With both `merchant_id` and `secret_key` given (the sandbox's demo merchant) an existing
        merchant is kept as it is.
        """
        merchant = {
            "id": merchant_id or new_id("acct"),
            "object": "merchant",
            "name": name,
            "created": int(self._wall_clock()),
            "livemode": False,
        }
        secret = secret_key or new_secret("sk_test_")
        self._store.create(merchant, secret)
        return {**merchant, "secret_key": secret}

    def authenticate(self, secret_key: str | None) -> str:
        """The merchant id a secret key belongs to; 401 when missing or unknown."""
        if not secret_key:
            raise AuthenticationError(
                "You did not provide an API key. Provide it in the Authorization header, "
                "using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY') or HTTP Basic "
                "auth with the key as user name (curl -u YOUR_SECRET_KEY:).",
                code="api_key_missing",
            )
        digest = key_digest(secret_key)
        cached = self._cache.get(digest)
        now = self._clock()
        if cached and cached[1] > now:
            return cached[0]
        merchant_id = self._store.merchant_for_key(secret_key)
        if merchant_id is None:
            raise AuthenticationError(f"Invalid API Key provided: {_masked(secret_key)}")
        self._cache[digest] = (merchant_id, now + self._cache_seconds)
        return merchant_id

    def authenticate_admin(self, secret_key: str | None) -> str:
        """Accepts only the sandbox administrator's key."""
        if not secret_key:
            self.authenticate(secret_key)
        if not hmac.compare_digest(secret_key or "", self._admin_key):
            raise PermissionDenied(
                "This endpoint needs the sandbox administrator key (PAYFLOW_ADMIN_KEY)."
            )
        return "admin"
