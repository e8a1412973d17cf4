"""Stripe-style object ids that sort by creation time.

An id is a prefix, 8 base62 characters of the creation time in milliseconds, then 16 random
base62 characters (`pi_` + 24 characters, as Stripe's). Sorting ids as strings sorts objects by
creation time, which is what lets lists page newest-first on a plain DynamoDB sort key.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable

# Digits, then upper case, then lower case: the ASCII order, so string order is numeric order.
ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_TIME_CHARS = 8
_RANDOM_CHARS = 16


def _base62(number: int, width: int) -> str:
    chars = []
    for _ in range(width):
        number, digit = divmod(number, 62)
        chars.append(ALPHABET[digit])
    return "".join(reversed(chars))


def new_id(prefix: str, *, clock: Callable[[], float] = time.time) -> str:
    """A new id such as `pi_0Mz3...` whose string order follows `clock`."""
    millis = int(clock() * 1000)
    random_part = "".join(secrets.choice(ALPHABET) for _ in range(_RANDOM_CHARS))
    return f"{prefix}_{_base62(millis, _TIME_CHARS)}{random_part}"


def time_prefix(millis: int) -> str:
    """The 8 characters an id created at `millis` (epoch milliseconds) starts with, after its
    prefix: a key bound for "created at or after"."""
    return _base62(millis, _TIME_CHARS)


def new_secret(prefix: str, length: int = 24) -> str:
    """A random secret such as an API key: `prefix` + `length` base62 characters."""
    return prefix + "".join(secrets.choice(ALPHABET) for _ in range(length))
