"""Stripe's published schemas (shared/stripe/stripe_schemas.json), turned into JSON Schema.

The file is a slice of Stripe's OpenAPI 3.0 spec: `nullable: true` becomes a null-permitting
type, every `x-stubs` name becomes "any object", and the list and search-result wrappers get
component names of their own. The tests validate bodies with it (tests/conformance), and
`python -m payflow.conformance schemas` writes the copy the API reference ships
(chalicelib/api/openapi_stripe.json). Dev-only: nothing in chalicelib imports this module.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Final

ENV_VAR: Final = "PAYFLOW_STRIPE_SCHEMAS"
REPO_ROOT: Final = Path(__file__).resolve().parents[1]
SHIPPED_COPY: Final = REPO_ROOT / "chalicelib" / "api" / "openapi_stripe.json"


def schemas_path() -> Path:
    """Where stripe_schemas.json is: $PAYFLOW_STRIPE_SCHEMAS, else shared/ beside the repository
    (CI clones the repository next to a copy of shared/), else /work/shared."""
    override = os.environ.get(ENV_VAR)
    if override:
        return Path(override)
    candidates = [
        REPO_ROOT.parent / "shared" / "stripe" / "stripe_schemas.json",
        Path("/work/shared/stripe/stripe_schemas.json"),
    ]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        f"stripe_schemas.json not found (set {ENV_VAR}); looked at "
        + ", ".join(str(c) for c in candidates)
    )


def load_document(path: Path | None = None) -> dict[str, Any]:
    """The parsed stripe_schemas.json."""
    document: dict[str, Any] = json.loads((path or schemas_path()).read_text(encoding="utf-8"))
    return document


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


def closed(node: Any) -> Any:
    """Every object schema that lists properties and is silent on extras forbids them."""
    if isinstance(node, list):
        return [closed(item) for item in node]
    if not isinstance(node, dict):
        return node
    result = {key: closed(value) for key, value in node.items()}
    if "properties" in result and "additionalProperties" not in result:
        result["additionalProperties"] = False
    return result


def _without_extensions(node: Any) -> Any:
    if isinstance(node, list):
        return [_without_extensions(item) for item in node]
    if not isinstance(node, dict):
        return node
    return {k: _without_extensions(v) for k, v in node.items() if not k.startswith("x-")}


def list_schema_name(path: str) -> str:
    """The component name of the list wrapper of `path` (`/v1/refunds` -> `list.refunds`)."""
    return "list." + path.removeprefix("/v1/").replace("/", ".")


def search_schema_name(path: str) -> str:
    """The component name of the search-result wrapper of `path`."""
    return "search_result." + path.removeprefix("/v1/").removesuffix("/search").replace("/", ".")


def openapi_components(document: dict[str, Any]) -> dict[str, Any]:
    """Every schema of the file as OpenAPI 3.0 components: stubs as any object, the list and
    search-result wrappers under `list.<path>` / `search_result.<path>`, `x-*` keys dropped."""
    schemas: dict[str, Any] = dict(document["components"]["schemas"])
    for stub in document.get("x-stubs", []):
        schemas.setdefault(stub, {"type": "object"})
    for path, wrapper in document.get("x-lists", {}).items():
        schemas[list_schema_name(path)] = wrapper
    for path, wrapper in document.get("x-search-results", {}).items():
        schemas[search_schema_name(path)] = wrapper
    components: dict[str, Any] = _without_extensions(schemas)
    return components


def converted_components(document: dict[str, Any], *, strict: bool) -> dict[str, Any]:
    """`openapi_components` in JSON Schema form (nullable converted); `strict` closes the
    objects (see `closed`)."""
    converted = nullable_to_json_schema(openapi_components(document))
    return closed(converted) if strict else converted


def shipped_copy(document: dict[str, Any]) -> dict[str, Any]:
    """What chalicelib/api/openapi_stripe.json holds: the schemas as OpenAPI 3.0 components
    (Stripe's own dialect, which the Swagger UI PayFlow ships reads), where they came from, and
    the list paths Stripe serves."""
    return {
        "source": document.get("x-source", {}),
        "lists": sorted(document.get("x-lists", {})),
        "search_results": sorted(document.get("x-search-results", {})),
        "schemas": dict(sorted(openapi_components(document).items())),
    }


def shipped_text(document: dict[str, Any]) -> str:
    """The exact text of the shipped copy (compact: the API reference serves it as is)."""
    return json.dumps(shipped_copy(document), indent=1, sort_keys=False) + "\n"
