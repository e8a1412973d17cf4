"""Merchants and API keys: authentication, rolling, revocation, deletion.

A warm instance caches what a key resolved to for `cache_seconds` (PAYFLOW_API_KEY_CACHE_SECONDS,
default 5 s), so a revocation or a deletion made elsewhere takes effect on every instance within
that time; on the instance that made it, at once. An expiry set by a roll is exact everywhere:
the cached record carries `expires_at` and is checked against the clock on every request.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable
from typing import Any

from chalicelib.dal.dynamo import ConditionFailed
from chalicelib.dal.merchants import MerchantStore, key_digest
from chalicelib.domain.ids import new_id, new_secret
from chalicelib.errors import (
    AuthenticationError,
    InvalidRequestError,
    ParameterInvalid,
    PermissionDenied,
    ResourceMissing,
    StaleWrite,
)

KEY_PREFIXES = {"secret": "sk_test_", "publishable": "pk_test_"}
"""The prefix of each kind of key: secret keys for servers, publishable keys for browsers
(which, with an intent's client_secret, may do only what Stripe.js does)."""
PUBLISHABLE_KEY_REFUSED = (
    "This API call cannot be made with a publishable API key. Please use a secret API key."
)
MAX_ROLL_EXPIRY_SECONDS = 7 * 86_400
"""The longest an old key may keep working after a roll (the longest choice Stripe offers)."""
_CACHE_ENTRIES = 10_000


def _masked(key: str) -> str:
    return f"{key[:8]}{'*' * 4}{key[-4:]}" if len(key) > 12 else "****"


def derived_publishable(secret: str) -> str:
    """The demo merchant's publishable key: a one-way function of its secret key."""
    digest = hmac.new(secret.encode(), b"payflow publishable key", hashlib.sha256).hexdigest()
    return KEY_PREFIXES["publishable"] + digest[:24]


def _public(key: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in key.items() if not k.startswith("_") and k != "merchant"}


class MerchantService:
    """Creates merchants and resolves keys, with a short in-process cache so a warm Lambda does
    not spend a DynamoDB round trip on every request."""

    def __init__(
        self,
        store: MerchantStore,
        *,
        admin_key: str,
        cache_seconds: float = 5.0,
        default_rate_limits: tuple[int, int] = (0, 0),
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._admin_key = admin_key
        self._cache_seconds = cache_seconds
        self._default_limits = default_rate_limits
        self._clock = clock
        self._wall_clock = wall_clock
        self._cache: dict[str, tuple[dict[str, Any], float]] = {}
        self._limits: dict[str, tuple[tuple[int, int], float]] = {}

    def create(
        self,
        *,
        name: str | None = None,
        merchant_id: str | None = None,
        secret_key: str | None = None,
    ) -> dict[str, Any]:
        """A new merchant with its secret and publishable keys (returned here once, stored only
        as digests).

        With both `merchant_id` and `secret_key` given (the sandbox's demo merchant) an existing
        merchant is kept as it is; its publishable key is derived from the secret key, so it is
        the same on every start.
        """
        created = int(self._wall_clock())
        merchant = {
            "id": merchant_id or new_id("acct"),
            "object": "merchant",
            "name": name,
            "created": created,
            "livemode": False,
        }
        secret = secret_key or new_secret(KEY_PREFIXES["secret"])
        publishable = (
            derived_publishable(secret) if secret_key else new_secret(KEY_PREFIXES["publishable"])
        )
        self._store.create(
            merchant,
            [
                (secret, self._key_record("secret", secret)),
                (publishable, self._key_record("publishable", publishable)),
            ],
        )
        return {**merchant, "secret_key": secret, "publishable_key": publishable}

    def authenticate(self, secret_key: str | None) -> str:
        """The merchant id a secret key belongs to; 401 when missing, unknown or expired, 403
        for a publishable key."""
        merchant, publishable = self.authenticate_client(secret_key)
        if publishable:
            raise PermissionDenied(PUBLISHABLE_KEY_REFUSED, code="secret_key_required")
        return merchant

    def authenticate_client(self, secret_key: str | None) -> tuple[str, bool]:
        """The merchant a secret or publishable key belongs to, and whether it is publishable
        (what a browser holds: the route then also needs the object's client_secret)."""
        if not secret_key:
            raise AuthenticationError(
                "You did not provide an API key. Provide it in the Authorization header, "
                "using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY') or HTTP Basic "
                "auth with the key as user name (curl -u YOUR_SECRET_KEY:).",
                code="api_key_missing",
            )
        record = self._key(secret_key)
        if record is None or record.get("kind", "secret") not in KEY_PREFIXES:
            raise AuthenticationError(f"Invalid API Key provided: {_masked(secret_key)}")
        expires_at = record.get("expires_at")
        if expires_at is not None and expires_at <= self._wall_clock():
            raise AuthenticationError(
                f"Expired API Key provided: {_masked(secret_key)}", code="api_key_expired"
            )
        return str(record["merchant"]), record.get("kind", "secret") == "publishable"

    def authenticate_admin(self, secret_key: str | None) -> str:
        """Accepts only the sandbox administrator's key."""
        if not secret_key:
            self.authenticate(secret_key)
        if not hmac.compare_digest(secret_key or "", self._admin_key):
            raise PermissionDenied(
                "This endpoint needs the sandbox administrator key (PAYFLOW_ADMIN_KEY)."
            )
        return "admin"

    def authenticate_as(self, secret_key: str | None, account: str) -> str:
        """The admin key reading as merchant `account` (header `Stripe-Account`), deleted
        merchants included: how their data stays readable once their keys are gone."""
        self.authenticate_admin(secret_key)
        if self._store.get(account) is None:
            raise PermissionDenied(f"No such merchant: '{account}'", code="account_invalid")
        return account

    def retrieve(self, merchant_id: str) -> dict[str, Any]:
        """The merchant with its keys (never their secrets)."""
        merchant = self._merchant(merchant_id)
        keys = [_public(key) for key in self._store.keys(merchant_id)]
        return {**merchant, "api_keys": {"object": "list", "data": keys, "has_more": False}}

    def roll_key(
        self,
        merchant_id: str,
        key_id: str,
        *,
        expires_in: int | None = None,
        expires_at: int | None = None,
    ) -> dict[str, Any]:
        """A new key of the same kind (its secret shown in this answer only); the old one keeps
        working until `expires_at`, or `expires_in` seconds from now (default: stops now)."""
        self._live_merchant(merchant_id)
        old = self._live_key(merchant_id, key_id)
        now = int(self._wall_clock())
        if expires_in is not None and expires_at is not None:
            raise InvalidRequestError(
                "Pass expires_in or expires_at, not both.", param="expires_at"
            )
        until = now + expires_in if expires_in is not None else (expires_at or now)
        if not now <= until <= now + MAX_ROLL_EXPIRY_SECONDS:
            raise ParameterInvalid(
                "The old key's expiry must be between now and "
                f"{MAX_ROLL_EXPIRY_SECONDS // 86_400} days from now.",
                param="expires_in" if expires_in is not None else "expires_at",
            )
        kind = str(old.get("kind", "secret"))
        secret = new_secret(KEY_PREFIXES[kind])
        new = self._key_record(kind, secret)
        try:
            self._store.roll(merchant_id, old, until, secret, new)
        except ConditionFailed:
            raise StaleWrite("The key changed while it was being rolled; retry.") from None
        self._cache.clear()
        previous = {**_public(old), "expires_at": min(until, old.get("expires_at") or until)}
        return {**new, "secret": secret, "previous": previous}

    def revoke_key(self, merchant_id: str, key_id: str) -> dict[str, Any]:
        """The key stops working now (on other warm instances within `cache_seconds`)."""
        key = self._live_key(merchant_id, key_id)
        now = int(self._wall_clock())
        self._expire(merchant_id, [key], now)
        return {**_public(key), "expires_at": now}

    def delete(self, merchant_id: str) -> dict[str, Any]:
        """Every key of the merchant stops working; its data stays, readable with the admin key
        and `Stripe-Account: <merchant id>`."""
        self._merchant(merchant_id)
        now = int(self._wall_clock())
        # Keys first: if the second write fails the merchant is locked out, never half-deleted
        # with a key that still works.
        self._expire(merchant_id, self._store.keys(merchant_id), now)
        self._store.mark_deleted(merchant_id, now)
        return {"id": merchant_id, "object": "merchant", "deleted": True}

    def set_rate_limits(self, merchant_id: str, limits: dict[str, int] | None) -> dict[str, Any]:
        """The merchant's own per-second limits per key, `{"read": n, "write": n}` (0:
        unlimited; None: back to the defaults). Other warm instances apply them within
        `cache_seconds`."""
        self._live_merchant(merchant_id)
        self._store.set_rate_limits(merchant_id, limits)
        self._limits.pop(merchant_id, None)
        return self.retrieve(merchant_id)

    @staticmethod
    def rate_bucket(secret_key: str) -> str:
        """The name a key's requests are counted under: its digest, never the secret."""
        return key_digest(secret_key)[:32]

    def rate_limits(self, merchant_id: str) -> tuple[int, int]:
        """(read, write) requests per second per key for the merchant, cached like keys."""
        now = self._clock()
        cached = self._limits.get(merchant_id)
        if cached and cached[1] > now:
            return cached[0]
        merchant = self._store.get(merchant_id) or {}
        own = merchant.get("rate_limits") or {}
        limits = (
            int(own.get("read", self._default_limits[0])),
            int(own.get("write", self._default_limits[1])),
        )
        if len(self._limits) >= _CACHE_ENTRIES:
            self._limits.clear()
        self._limits[merchant_id] = (limits, now + self._cache_seconds)
        return limits

    def _key(self, secret_key: str) -> dict[str, Any] | None:
        digest = key_digest(secret_key)
        now = self._clock()
        cached = self._cache.get(digest)
        if cached and cached[1] > now:
            return cached[0]
        record = self._store.key_for_secret(secret_key)
        if record is not None:
            if len(self._cache) >= _CACHE_ENTRIES:
                self._cache.clear()
            self._cache[digest] = (record, now + self._cache_seconds)
        return record

    def _expire(self, merchant_id: str, keys: list[dict[str, Any]], at: int) -> None:
        try:
            self._store.expire(merchant_id, keys, at)
        except ConditionFailed:
            raise StaleWrite("A key changed while it was being expired; retry.") from None
        # This instance stops trusting them at once; others when their cache entry ends.
        self._cache.clear()

    def _merchant(self, merchant_id: str) -> dict[str, Any]:
        merchant = self._store.get(merchant_id)
        if merchant is None:
            raise ResourceMissing(f"No such merchant: '{merchant_id}'", param="merchant")
        return merchant

    def _live_merchant(self, merchant_id: str) -> dict[str, Any]:
        merchant = self._merchant(merchant_id)
        if merchant.get("deleted"):
            raise InvalidRequestError(
                f"The merchant '{merchant_id}' is deleted.", code="account_invalid"
            )
        return merchant

    def _live_key(self, merchant_id: str, key_id: str) -> dict[str, Any]:
        for key in self._store.keys(merchant_id):
            if key.get("id") == key_id:
                expires_at = key.get("expires_at")
                if expires_at is not None and expires_at <= self._wall_clock():
                    raise InvalidRequestError(
                        f"The key '{key_id}' has expired already.", code="api_key_expired"
                    )
                return key
        raise ResourceMissing(f"No such API key: '{key_id}'", param="key")

    def _key_record(self, kind: str, secret: str) -> dict[str, Any]:
        return {
            "id": new_id("key"),
            "object": "api_key",
            "kind": kind,
            "created": int(self._wall_clock()),
            "expires_at": None,
            "redacted": _masked(secret),
        }
