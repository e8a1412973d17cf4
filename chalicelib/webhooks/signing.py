"""Webhook secrets and signatures for Stripe's scheme and Standard Webhooks, over the same bytes.

One secret serves both: `whsec_` + base64 of random bytes. Stripe's `Stripe-Signature` uses the
whole secret string (prefix included) as the HMAC-SHA256 key; Standard Webhooks strips `whsec_`
and base64-decodes the rest. During a secret roll both the new and the old secret sign, as Stripe
does with several `v1=` entries (and Standard Webhooks with space-separated `v1,` entries).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from collections.abc import Callable, Sequence

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32


def new_secret(rng: Callable[[int], bytes] = os.urandom) -> str:
    """A new endpoint secret: `whsec_` + base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(rng(SECRET_BYTES)).decode("ascii")


def stripe_signature(secrets: Sequence[str], timestamp: int, body: bytes) -> str:
    """`t=<timestamp>,v1=<hex>[,v1=<hex>]`: HMAC-SHA256(secret, f"{t}.{body}") per secret."""
    signed = f"{timestamp}.".encode() + body
    parts = [f"t={timestamp}"]
    for secret in secrets:
        digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
        parts.append(f"v1={digest}")
    return ",".join(parts)


def standard_signature(secrets: Sequence[str], message_id: str, timestamp: int, body: bytes) -> str:
    """`v1,<base64>[ v1,<base64>]`: HMAC-SHA256(base64decode(secret without whsec_),
    f"{id}.{t}.{body}") per secret."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    signatures = []
    for secret in secrets:
        key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
        digest = hmac.new(key, signed, hashlib.sha256).digest()
        signatures.append("v1," + base64.b64encode(digest).decode("ascii"))
    return " ".join(signatures)


def signature_headers(
    secrets: Sequence[str], message_id: str, timestamp: int, body: bytes
) -> dict[str, str]:
    """Both header sets for one request body."""
    return {
        "Stripe-Signature": stripe_signature(secrets, timestamp, body),
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": standard_signature(secrets, message_id, timestamp, body),
    }
