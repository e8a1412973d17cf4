"""Stripe's idempotency rules, independent of where records are kept.

A POST with an Idempotency-Key claims the key (scoped to the merchant) before it executes. The
first result, success or error, is stored with the claim and replayed for 24 hours; the same key
with other parameters is refused; the same key while the first request runs gets a 409. A claim
whose request died is a lease: once it expires, a retry with the same parameters takes it over.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from chalicelib.errors import IdempotencyError, IdempotencyKeyInUse, ParameterInvalid

MAX_KEY_LENGTH = 255


class RecordStatus(StrEnum):
    """Where the request that owns a key is."""

    IN_PROGRESS = "in_progress"
    """Claimed; the request is (or was, if its lease expired) executing."""
    COMPLETED = "completed"
    """Finished; its response is stored for replay."""


@dataclass(frozen=True)
class StoredResponse:
    """A response as it will be replayed."""

    status: int
    body: dict[str, Any]


@dataclass
class Claim:
    """This request's ownership of an Idempotency-Key."""

    scope: str
    key: str
    token: str
    object_id: str
    """The id reserved for an object this request creates; a takeover reuses it."""
    taken_over: bool = False
    """This claim took over an expired one: the dead request's work may be half done."""
    completed: bool = False


@dataclass(frozen=True)
class Record:
    """What the store holds for a key."""

    status: RecordStatus
    fingerprint: str
    lease_expires_ms: int
    expires_at: int
    response: StoredResponse | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def validate_key(key: str) -> str:
    """The key as sent, or a 400 naming the header when it is not usable."""
    if not key or len(key) > MAX_KEY_LENGTH:
        raise ParameterInvalid(
            f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} characters long.",
            param="Idempotency-Key",
            code="idempotency_key_invalid",
        )
    return key


def fingerprint(method: str, path: str, params: dict[str, Any]) -> str:
    """A digest of what the request asks for, after parsing (so JSON and form bodies that mean
    the same thing match)."""
    canonical = json.dumps(
        {"method": method.upper(), "path": path, "params": params},
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def judge_existing(record: Record, key: str, request_fingerprint: str) -> StoredResponse:
    """Given a key someone else holds: the response to replay, or the error to answer with."""
    if record.fingerprint != request_fingerprint:
        raise IdempotencyError(
            "Keys for idempotent requests can only be used with the same parameters they were "
            f"first used with. Try using a key other than '{key}' if you meant to execute a "
            "different request."
        )
    if record.status == RecordStatus.COMPLETED and record.response is not None:
        return record.response
    raise IdempotencyKeyInUse(
        f"There is currently another in-progress request using this Idempotency-Key ('{key}'). "
        "Please try again later.",
        headers={"Stripe-Should-Retry": "true"},
    )
