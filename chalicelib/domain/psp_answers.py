"""The excerpt of a PSP's raw answer kept with each call: small, bounded, and never a secret.

A payment's page shows what the connector answered each call (Hyperswitch shows the raw
connector response per attempt). The answer is stored in the attempt's record, inside a
DynamoDB item (400 KB at most, billed per KB), so it is cut to MAX_BYTES of JSON; and a PSP's
answer can carry what PayFlow must never store: a client secret, an API key, a card number, a
CVC. Those are dropped by key (SECRET_WORDS, CARD_WORDS), and any run of 12-19 digits that
passes the card checksum (a card number inside a message) is masked.

Nothing here performs I/O.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

MAX_BYTES = 2048
"""The most an excerpt takes as compact JSON. An attempt's calls (candidates times retries,
a dozen at most) then stay well inside one item."""
MAX_DEPTH = 4
MAX_ITEMS = 10
"""Most entries kept of one list (a PSP's list of payments, of actions)."""
MAX_TEXT = 200
"""Longest string kept; longer ones end with an ellipsis."""

SECRET_WORDS = ("secret", "password", "token", "apikey", "authorization", "signature", "hmac")
"""A key holding any of these (case and punctuation ignored) is dropped whatever its value."""
CARD_WORDS = ("cardnumber", "cvc", "cvv", "securitycode", "encrypted", "expiry", "expmonth")
CARD_KEYS = frozenset({"number", "pan", "expyear"})
"""Card data, dropped by key. `number` also drops harmless numbers (an order number): the rule
errs on the side of storing less."""
REDACTED = "[redacted]"
_DIGITS = re.compile(r"(?<!\d)\d{12,19}(?!\d)")


def _dropped(key: str) -> bool:
    bare = re.sub(r"[^a-z0-9]", "", key.lower())
    return bare in CARD_KEYS or any(w in bare for w in SECRET_WORDS + CARD_WORDS)


def _luhn(digits: str) -> bool:
    """Whether `digits` pass the card-number checksum (a PSP reference of digits mostly does
    not: it is kept)."""
    total = 0
    for i, char in enumerate(reversed(digits)):
        d = int(char) * (2 if i % 2 else 1)
        total += d - 9 if d > 9 else d
    return total % 10 == 0


def _text(value: str) -> str:
    masked = _DIGITS.sub(lambda m: REDACTED if _luhn(m.group()) else m.group(), value)
    return masked if len(masked) <= MAX_TEXT else masked[: MAX_TEXT - 1] + "…"


def _clean(value: Any, depth: int) -> Any:
    if isinstance(value, Mapping):
        if depth >= MAX_DEPTH:
            return "{…}"
        return {
            str(k): _clean(v, depth + 1)
            for k, v in value.items()
            if not _dropped(str(k)) and v is not None
        }
    if isinstance(value, (list, tuple)):
        if depth >= MAX_DEPTH:
            return "[…]"
        kept = [_clean(v, depth + 1) for v in value[:MAX_ITEMS]]
        if len(value) > MAX_ITEMS:
            kept.append(f"… {len(value) - MAX_ITEMS} more")
        return kept
    if isinstance(value, str):
        return _text(value)
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        # An integer that could be a card number is masked as one in text would be.
        return value if _text(str(value)) == str(value) else REDACTED
    if isinstance(value, float):
        return value
    return _text(str(value))


def _size(value: Any) -> int:
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())


def excerpt(answer: Any) -> dict[str, Any] | None:
    """What may be stored of a PSP's `answer` (a JSON-like value): secrets and card data
    dropped, digits that could be a card number masked, at most MAX_BYTES of JSON. Keys are
    kept in the answer's order while they fit; `_omitted` counts those that did not."""
    if answer is None:
        return None
    cleaned = _clean(answer if isinstance(answer, Mapping) else {"answer": answer}, 0)
    if _size(cleaned) <= MAX_BYTES:
        return cleaned  # type: ignore[no-any-return]
    kept: dict[str, Any] = {}
    omitted = 0
    for key, value in cleaned.items():
        # The count's own bytes are reserved with a generous placeholder.
        if _size({**kept, key: value, "_omitted": 10**6}) <= MAX_BYTES:
            kept[key] = value
        else:
            omitted += 1
    return {**kept, "_omitted": omitted}
