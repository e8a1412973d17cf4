"""Stripe's published schemas (shared/stripe/stripe_schemas.json) as a JSON Schema validator.

The file is a slice of Stripe's OpenAPI 3.0 spec. Three things make it usable with `jsonschema`:
`nullable: true` becomes a null-permitting type, every `x-stubs` name is registered as "any
object", and `$ref`s resolve against the file's root. A body is validated by its `object` field
(lists and search results by their URL); an error body by Stripe's `error` schema.

Strict mode (the default for tests) also closes every schema that lists `properties` but says
nothing of `additionalProperties`: Stripe never sends a field its spec does not name, so a field
PayFlow adds is a deviation a client's typed model will not know. The published API reference
uses the schemas as Stripe writes them (open). The conversion lives in payflow/stripe_spec.py.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from payflow.stripe_spec import (
    converted_components,
    list_schema_name,
    load_document,
    search_schema_name,
)

_REF_PREFIX = "#/components/schemas/"


@dataclass(frozen=True)
class Deviation:
    """One place where a body differs from Stripe's schema.

    `object` is the Stripe object type of the nearest enclosing object (`payment_intent`,
    `error`...), `field` the dotted path from there (`last_payment_error.param`).
    """

    object: str
    field: str
    message: str

    @property
    def key(self) -> tuple[str, str]:
        """(object, field): how an allow-list names a deviation."""
        return self.object, self.field

    def __str__(self) -> str:
        return f"{self.object}.{self.field}: {self.message}"


class UnknownObject(Exception):
    """The body's `object` names no schema in the file."""


class StripeSchemas:
    """Validate response bodies against Stripe's schemas."""

    def __init__(self, document: dict[str, Any], *, strict: bool = True) -> None:
        self.document = document
        self._components = converted_components(document, strict=strict)
        self._by_object = self._index_objects(document["components"]["schemas"])
        self._lists = sorted(document.get("x-lists", {}), key=len, reverse=True)
        self._searches = set(document.get("x-search-results", {}))

    @classmethod
    def load(cls, path: Path | None = None, *, strict: bool = True) -> StripeSchemas:
        """The schemas from `path` (default: payflow.stripe_spec.schemas_path())."""
        return cls(load_document(path), strict=strict)

    @staticmethod
    def _index_objects(schemas: dict[str, Any]) -> dict[str, str]:
        # A top-level resource says its `object` value in an enum of one; deleted_* shapes
        # share the value and are picked by the `deleted` field instead.
        index: dict[str, str] = {}
        for name, schema in schemas.items():
            values = schema.get("properties", {}).get("object", {}).get("enum", [])
            if len(values) == 1 and not name.startswith("deleted_"):
                index.setdefault(values[0], name)
        return index

    def knows(self, object_type: str) -> bool:
        """True when the file has a schema for bodies whose `object` is `object_type`."""
        return object_type in self._by_object or object_type in ("list", "search_result")

    def schema_name(self, body: dict[str, Any], url: str | None = None) -> str:
        """The component that describes `body` (UnknownObject when none does)."""
        if "error" in body and "object" not in body:
            return "error"
        kind = body.get("object")
        if kind == "list":
            path = str(body.get("url", url or ""))
            for prefix in self._lists:
                if path == prefix:
                    return list_schema_name(prefix)
            raise UnknownObject(f"a list at {path!r}, which Stripe does not serve")
        if kind == "search_result":
            path = str(body.get("url", url or ""))
            if path in self._searches:
                return search_schema_name(path)
            raise UnknownObject(f"a search result at {path!r}, which Stripe does not serve")
        if not isinstance(kind, str) or kind not in self._by_object:
            raise UnknownObject(f"object {kind!r}")
        if body.get("deleted") is True and f"deleted_{kind}" in self._components:
            return f"deleted_{kind}"
        return self._by_object[kind]

    def deviations(self, body: dict[str, Any], url: str | None = None) -> list[Deviation]:
        """Every deviation of `body` from its Stripe schema (raises UnknownObject).

        An event's `data.object` is free-form in the spec; it is validated by its own `object`
        when Stripe has a schema for it.
        """
        name = self.schema_name(body, url)
        found = [
            deviation
            for error in self._validator(name).iter_errors(body)
            for deviation in _deviations(body, error)
        ]
        if body.get("object") == "event":
            inner = body.get("data", {}).get("object")
            if isinstance(inner, dict) and self.knows(str(inner.get("object"))):
                found.extend(self.deviations(inner))
        return sorted(set(found), key=lambda d: (d.object, d.field, d.message))

    @functools.cache  # noqa: B019 - one instance per session; the cache is the point
    def _validator(self, name: str) -> Draft202012Validator:
        schema = {
            "$ref": _REF_PREFIX + name,
            "components": {"schemas": self._components},
        }
        return Draft202012Validator(schema)


def _leaves(error: ValidationError) -> Iterator[ValidationError]:
    """The errors that say what is wrong: for an anyOf (Stripe's `string | object` expandable
    fields, nullable refs) the errors of the branch whose type matched, rather than "is not
    valid under any of the given schemas"."""
    if error.validator not in ("anyOf", "oneOf") or not error.context:
        yield error
        return
    branches: dict[int, list[ValidationError]] = {}
    for sub in error.context:
        branches.setdefault(int(sub.relative_schema_path[0]), []).append(sub)
    depth = len(error.absolute_path)
    matching = [
        errors
        for errors in branches.values()
        if not any(e.validator == "type" and len(e.absolute_path) == depth for e in errors)
    ]
    if not matching:
        yield error
        return
    for sub in matching[0]:
        yield from _leaves(sub)


def _deviations(body: dict[str, Any], error: ValidationError) -> Iterator[Deviation]:
    for leaf in _leaves(error):
        path = list(leaf.absolute_path)
        names: list[str | None] = [None]
        if leaf.validator == "required":
            # jsonschema raises one error per missing property and names it first.
            names = [leaf.message.split("'")[1]]
        elif leaf.validator == "additionalProperties" and isinstance(leaf.instance, dict):
            allowed = set(leaf.schema.get("properties", {}))
            names = sorted(set(leaf.instance) - allowed)
        for name in names:
            object_type, field = _locate(body, path if name is None else [*path, name])
            yield Deviation(object_type, field, _message(leaf))


def _locate(body: dict[str, Any], path: list[Any]) -> tuple[str, str]:
    """The nearest enclosing Stripe object of `path` and the field path inside it."""
    owner = "error" if "error" in body and "object" not in body else str(body.get("object"))
    start = 0
    node: Any = body
    for depth, part in enumerate(path[:-1]):
        node = node[part] if isinstance(node, dict | list) else None
        if isinstance(node, dict) and isinstance(node.get("object"), str):
            owner, start = node["object"], depth + 1
    field = ".".join("[]" if isinstance(p, int) else str(p) for p in path[start:]) or "(body)"
    return owner, field.replace(".[]", "[]")


def _message(error: ValidationError) -> str:
    if error.validator == "additionalProperties":
        return "not in Stripe's schema"
    if error.validator == "required":
        return "required by Stripe's schema, missing"
    return error.message if len(error.message) < 200 else error.message[:197] + "..."
