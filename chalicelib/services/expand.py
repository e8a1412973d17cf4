"""Stripe's `expand[]`: replace an id in a response with the object it names, up to 4 levels.

What may be expanded is declared once, per object type, with the type each field expands to;
a request's paths are checked against that before the operation runs (so a bad `expand`
changes nothing), then applied to the body the operation answered with.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chalicelib.errors import InvalidRequestError

MAX_DEPTH = 4

EXPANDABLE: dict[str, dict[str, str]] = {
    "payment_intent": {
        "customer": "customer",
        "payment_method": "payment_method",
        "latest_charge": "charge",
    },
    "charge": {
        "customer": "customer",
        "payment_intent": "payment_intent",
        "balance_transaction": "balance_transaction",
        "failure_balance_transaction": "balance_transaction",
    },
    "refund": {
        "charge": "charge",
        "payment_intent": "payment_intent",
        "balance_transaction": "balance_transaction",
        "failure_balance_transaction": "balance_transaction",
    },
    "dispute": {"charge": "charge", "payment_intent": "payment_intent"},
    "customer": {"invoice_settings.default_payment_method": "payment_method"},
    "payment_method": {"customer": "customer"},
    "setup_intent": {
        "customer": "customer",
        "payment_method": "payment_method",
        "latest_attempt": "setup_attempt",
    },
    "setup_attempt": {
        "customer": "customer",
        "payment_method": "payment_method",
        "setup_intent": "setup_intent",
    },
    "balance_transaction": {"source": "source"},
}
"""For each object type: expandable field (dotted inside sub-hashes) -> the type it becomes."""

LIST_PREFIX = "list:"

Loader = Callable[[str, str], dict[str, Any] | None]
"""(merchant id, object id) -> the object's API body, or None when it does not exist."""


def _cannot(path: str, hint: str = "") -> InvalidRequestError:
    return InvalidRequestError(
        f"This property cannot be expanded ({path}).{hint}",
        code="parameter_invalid_expand",
        param="expand",
    )


def check(returns: str | None, paths: list[str]) -> None:
    """Refuse, before anything runs, an `expand` the response type does not allow."""
    for path in paths:
        _plan(returns, path)


def _plan(returns: str | None, path: str) -> list[tuple[list[str], str]]:
    """The steps of one path: (segments within the current object, the type it expands to)."""
    if returns is None:
        raise _cannot(path)
    parts = path.split(".")
    current = returns
    if current.startswith(LIST_PREFIX):
        if parts[0] != "data" or len(parts) == 1:
            raise _cannot(path, f" You may want to try expanding 'data.{path}' instead.")
        parts, current = parts[1:], current.removeprefix(LIST_PREFIX)
    steps: list[tuple[list[str], str]] = []
    pending: list[str] = []
    for part in parts:
        pending.append(part)
        target = EXPANDABLE.get(current, {}).get(".".join(pending))
        if target is not None:
            steps.append((pending, target))
            current, pending = target, []
        elif not any(f.startswith(".".join(pending) + ".") for f in EXPANDABLE.get(current, {})):
            raise _cannot(path)
    if pending:
        raise _cannot(path)
    if len(steps) > MAX_DEPTH:
        raise InvalidRequestError(
            f"You cannot expand more than {MAX_DEPTH} levels of a property. Property: {path}",
            code="parameter_invalid_expand",
            param="expand",
        )
    return steps


def paths(returns: str | None) -> list[str]:
    """Every path `expand[]` takes for an answer of type `returns` (for the API reference)."""
    if returns is None:
        return []
    prefix = ""
    if returns.startswith(LIST_PREFIX):
        prefix, returns = "data.", returns.removeprefix(LIST_PREFIX)
    found: list[str] = []

    def walk(kind: str, path: str, depth: int) -> None:
        if depth == MAX_DEPTH:
            return
        for field, target in EXPANDABLE.get(kind, {}).items():
            found.append(f"{path}{field}")
            walk(target, f"{path}{field}.", depth + 1)

    walk(returns, prefix, 0)
    return found


class Expander:
    """Applies checked paths to a body, loading each id through the loader of its prefix."""

    def __init__(self, loaders: dict[str, Loader]) -> None:
        self._loaders = loaders

    def expand(
        self, merchant_id: str, returns: str | None, body: dict[str, Any], paths: list[str]
    ) -> dict[str, Any]:
        for path in paths:
            steps = _plan(returns, path)
            roots = body.get("data", []) if (returns or "").startswith(LIST_PREFIX) else [body]
            for root in roots:
                self._apply(merchant_id, root, steps)
        return body

    def _apply(
        self, merchant_id: str, obj: dict[str, Any], steps: list[tuple[list[str], str]]
    ) -> None:
        if not steps:
            return
        segments, _ = steps[0]
        holder: Any = obj
        for segment in segments[:-1]:
            holder = holder.get(segment) if isinstance(holder, dict) else None
        if not isinstance(holder, dict):
            return
        value = holder.get(segments[-1])
        if isinstance(value, str):
            loaded = self._load(merchant_id, value)
            if loaded is None:
                return
            holder[segments[-1]] = value = loaded
        if isinstance(value, dict):
            self._apply(merchant_id, value, steps[1:])

    def _load(self, merchant_id: str, object_id: str) -> dict[str, Any] | None:
        prefix = object_id.split("_", 1)[0] + "_"
        loader = self._loaders.get(prefix)
        return loader(merchant_id, object_id) if loader else None
