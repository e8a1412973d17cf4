"""Stripe's metadata: a merchant's own string keys and values on any object."""

from __future__ import annotations


def merge_metadata(current: dict[str, str], update: dict[str, str] | None) -> dict[str, str]:
    """Stripe's metadata update: keys set to "" are removed, others set, the rest kept."""
    if update is None:
        return dict(current)
    merged = dict(current)
    for key, value in update.items():
        if value == "":
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged


def updated_metadata(current: dict[str, str], update: dict[str, str] | None) -> dict[str, str]:
    """An update call's metadata: an explicit empty value (`metadata=`) clears every key."""
    return {} if update is None else merge_metadata(current, update)
