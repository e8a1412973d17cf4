"""Stripe's published schemas (shared/stripe/stripe_schemas.json) as a JSON Schema validator.

The file is a slice of Stripe's OpenAPI 3.0 spec. Three things make it usable with `jsonschema`:
`nullable: true` becomes a null-permitting type, every `x-stubs` name is registered as "any
object", and `$ref`s resolve against the file's root. A body is validated by its `object` field
(lists and search results by their URL); an error body by Stripe's `error` schema.

Strict mode (the default for tests) also closes every schema that lists `properties` but says
nothing of `additionalProperties`: Stripe never sends a field its spec does not name, so a field
PayFlow adds is a deviation a client's typed model will not know. The published API reference
uses the schemas as Stripe writes them (open), see `converted_components(strict=False)`.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

ENV_VAR = "PAYFLOW_STRIPE_SCHEMAS"
_REF_PREFIX = "#/components/schemas/"
_REPO_ROOT = Path(__file__).resolve().parents[2]


def schemas_path() -> Path:
    """Where stripe_schemas.json is: $PAYFLOW_STRIPE_SCHEMAS, else shared/ beside the repository
    (CI clones the repository next to a copy of shared/), else /work/shared."""
    override = os.environ.get(ENV_VAR)
    if override:
        return Path(override)
    candidates = [
        _REPO_ROOT.parent / "shared" / "stripe" / "stripe_schemas.json",
        Path("/work/shared/stripe/stripe_schemas.json"),
    ]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        f"stripe_schemas.json not found (set {ENV_VAR}); looked at "
        + ", ".join(str(c) for c in candidates)
    )


def nullable_to_json_schema(node: Any) -> Any:
    """A copy of `node` with OpenAPI 3.0's `nullable: true` turned into JSON Schema: `type: T`
    becomes `[T, "null"]`, null joins an `enum`, `{"type": "null"}` joins an `anyOf`."""
    if isinstance(node, list):
        return [nullable_to_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    converted = {key: nullable_to_json_schema(value) for key, value in node.items()}
    if not converted.pop("nullable", False):
        return converted
    if "enum" in converted and None not in converted["enum"]:
        converted["enum"] = [*converted["enum"], None]
    if "anyOf" in converted:
        converted["anyOf"] = [*converted["anyOf"], {"type": "null"}]
    elif "type" in converted:
        kind = converted["type"]
        kinds = kind if isinstance(kind, list) else [kind]
        converted["type"] = [*kinds, "null"] if "null" not in kinds else kinds
    elif "$ref" in converted:
        converted = {"anyOf": [{"$ref": converted.pop("$ref")}, {"type": "null"}], **converted}
    return converted


def _closed(node: Any) -> Any:
    """Every object schema that lists properties and is silent on extras forbids them."""
    if isinstance(node, list):
        return [_closed(item) for item in node]
    if not isinstance(node, dict):
        return node
    closed = {key: _closed(value) for key, value in node.items()}
    if "properties" in closed and "additionalProperties" not in closed:
        closed["additionalProperties"] = False
    return closed


def _without_extensions(node: Any) -> Any:
    if isinstance(node, list):
        return [_without_extensions(item) for item in node]
    if not isinstance(node, dict):
        return node
    return {k: _without_extensions(v) for k, v in node.items() if not k.startswith("x-")}


def converted_components(document: dict[str, Any], *, strict: bool) -> dict[str, Any]:
    """Every schema of the file (stubs as any object, lists and search results under
    `list__<path>` / `search_result__<path>` names) in JSON Schema form, `x-*` keys dropped."""
    schemas: dict[str, Any] = dict(document["components"]["schemas"])
    for stub in document.get("x-stubs", []):
        schemas.setdefault(stub, {"type": "object"})
    for path, wrapper in document.get("x-lists", {}).items():
        schemas[list_schema_name(path)] = wrapper
    for path, wrapper in document.get("x-search-results", {}).items():
        schemas[search_schema_name(path)] = wrapper
    converted = nullable_to_json_schema(_without_extensions(schemas))
    return _closed(converted) if strict else converted


def list_schema_name(path: str) -> str:
    """The component name given to the list wrapper of `path` (`/v1/refunds` -> list.refunds)."""
    return "list." + path.removeprefix("/v1/").replace("/", ".")


def search_schema_name(path: str) -> str:
    """The component name given to the search-result wrapper of `path`."""
    return "search_result." + path.removeprefix("/v1/").removesuffix("/search").replace("/", ".")


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
        """The schemas from `path` (default: `schemas_path()`)."""
        text = (path or schemas_path()).read_text(encoding="utf-8")
        return cls(json.loads(text), strict=strict)

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

    def validator_for(self, name: str) -> Draft202012Validator:
        """A validator of component `name` (its `$ref`s resolve in this file)."""
        return self._validator(name)

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
