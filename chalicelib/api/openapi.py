"""The API reference (/openapi.json), generated from what the app actually serves.

Paths and methods come from Chalice's route table; for each view, `@endpoint(...)` recorded its
parameters model, auth and answer (chalicelib.api.http.ENDPOINTS). Request schemas are the
pydantic models' own JSON Schema; response schemas are Stripe's published ones, shipped as
openapi_stripe.json (written by `python -m payflow.conformance schemas` from shared/stripe; a
test checks the copy is current). A route the app gains appears here without any edit.

The document is OpenAPI 3.0.3, Stripe's own dialect (`nullable`), which the Swagger UI that
PayFlow serves (4.x) renders: pydantic's JSON Schema is translated (`_openapi_30`).
"""

from __future__ import annotations

import functools
import inspect
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

from chalice import Chalice
from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import core_schema

from chalicelib.api import params as p
from chalicelib.api.http import ENDPOINTS, EndpointSpec
from chalicelib.domain.idempotency import MAX_KEY_LENGTH
from chalicelib.domain.money import CURRENCIES, MAX_AMOUNT, MIN_AMOUNT
from chalicelib.domain.test_cards import TEST_TOKENS
from chalicelib.domain.webhooks import EVENT_TYPES, WILDCARD
from chalicelib.services import expand

OPENAPI_VERSION: Final = "3.0.3"
STRIPE_COPY: Final = Path(__file__).with_name("openapi_stripe.json")
_SCHEMAS: Final = "#/components/schemas/"
_PARAM: Final = re.compile(r"\{([^}]+)\}")
FORM_SUFFIX: Final = ".form"
"""The component of a model's form-encoded variant (no null: a form value cannot be null)."""

# Stripe's action routes answer with the object they act on (`/v1/refunds/{id}/cancel`).
_ACTIONS: Final = frozenset({"attach", "cancel", "capture", "confirm", "detach"})

# What a form-encoded value means, where the validator accepts more than its type says (strings
# from forms): the reference states the values it takes, so generated requests are valid ones.
_VALIDATED: Final[dict[Callable[..., Any], JsonSchemaValue]] = {
    p._amount: {"type": "integer", "minimum": MIN_AMOUNT, "maximum": MAX_AMOUNT},
    p._limit: {"type": "integer", "minimum": 1, "maximum": 100},
    p._currency: {"type": "string", "enum": sorted(CURRENCIES)},
    p._test_token: {"type": "string", "enum": list(TEST_TOKENS)},
    p._boolean: {"type": "boolean"},
    p._integer: {"type": "integer"},
    p._metadata: {
        "anyOf": [
            {
                "type": "object",
                "maxProperties": p.METADATA_MAX_KEYS,
                "description": f"Keys of 1 to {p.METADATA_MAX_KEY_LENGTH} characters.",
                # JSON bodies may give a value as an integer; it is stored as its string.
                "additionalProperties": {
                    "anyOf": [
                        {"type": "string", "maxLength": p.METADATA_MAX_VALUE_LENGTH},
                        {"type": "integer"},
                    ]
                },
            },
            {"type": "string", "enum": [""], "description": "Clears every key (update)."},
        ],
        "nullable": True,
    },
}

# Parameters whose values a validator outside the model checks (the same name means the same
# thing on every Stripe operation).
_BY_NAME: Final[dict[str, JsonSchemaValue]] = {
    "url": {
        "type": "string",
        "maxLength": 2048,
        "pattern": r"^https?://[^\s/?#@:\[\]]+(:[0-9]{1,4})?([/?#].*)?$",
        "description": "An absolute http(s) URL without credentials; outside the sandbox, on "
        "a public address.",
    },
    "enabled_events": {
        "type": "array",
        "minItems": 1,
        "items": {"type": "string", "enum": [WILDCARD, *sorted(EVENT_TYPES)]},
    },
}

# Non-JSON answers, by route: everything else answers application/json.
_CONTENT: Final[dict[tuple[str, str], list[str]]] = {
    ("GET", "/docs"): ["text/html"],
    ("GET", "/docs/{asset}"): ["text/javascript", "text/css"],
    ("GET", "/dashboard"): ["text/html"],
    ("GET", "/dashboard/{asset}"): ["text/javascript", "text/css", "text/html"],
    ("GET", "/metrics"): ["text/plain"],
    ("GET", "/js/v1/{asset}"): ["text/javascript", "text/html", "text/css"],
    ("GET", "/v1/sandbox/payment_intents/{intent}/authenticate"): ["text/html"],
    ("GET", "/v1/sandbox/setup_intents/{intent}/authenticate"): ["text/html"],
    ("GET", "/v1/sandbox/payment_intents/{intent}/customer_action"): ["text/html"],
}

_ERRORS: Final[dict[str, str]] = {
    "400": "`invalid_request_error`: a parameter is missing, unknown or invalid (`param` names "
    "it), or the object is not in a state that allows the call. `idempotency_error`: the "
    "Idempotency-Key was first used with other parameters.",
    "401": "`invalid_request_error` `api_key_invalid`: no API key, or an unknown one.",
    "402": "`card_error`: the payment was declined; `decline_code` says why and "
    "`payment_intent` holds the PaymentIntent after the attempt.",
    "403": "`invalid_request_error` `secret_key_required`: the key may not call this route "
    "(a merchant key on an admin route).",
    "404": "`invalid_request_error` `resource_missing`: no such object for this merchant.",
    "409": "`idempotency_key_in_use`: a request with the same Idempotency-Key is still running; "
    "`lock_timeout`: a concurrent request changed the object first. Both are safe to retry.",
    "429": "`rate_limit`: too many requests; retry after a pause.",
    "500": "`api_error`: something went wrong on PayFlow's side; safe to retry with the same "
    "Idempotency-Key.",
}

_DESCRIPTION: Final = (
    "PayFlow is a Stripe-compatible payment sandbox. Request bodies are "
    "`application/x-www-form-urlencoded` with Stripe's bracket notation (`metadata[order_id]=A1`, "
    "`payment_method_types[]=card`) or `application/json`. Authenticate with a merchant secret "
    "key, as a bearer token (`Authorization: Bearer sk_test_...`) or as the HTTP basic user name "
    "with an empty password (`curl -u sk_test_...:`). Send an `Idempotency-Key` header on POSTs "
    "to retry them safely. Amounts are integers in the currency's minor unit. Errors use "
    'Stripe\'s shape: `{"error": {"type", "code", "message", ...}}`.\n\n'
    "Response schemas are Stripe's own (API version {version}); operations marked "
    "`x-payflow-extension` are PayFlow's, not Stripe's. This document is generated from the "
    "routes the app serves and their parameter models."
)


class _FormAwareSchema(GenerateJsonSchema):
    """pydantic's JSON Schema, with the values the lenient form validators really accept."""

    def function_before_schema(self, schema: core_schema.BeforeValidatorFunctionSchema) -> Any:
        stated = _VALIDATED.get(schema["function"]["function"])
        if stated is not None:
            return dict(stated)
        if schema["function"]["function"] is p._expand:
            # Request schemas are shared by every route of a model, while what may be expanded
            # depends on the route's answer: each operation's description lists its expansions
            # (chalicelib.services.expand), and the shared schema promises none, so that a
            # generated client or fuzzer never sends one a route would refuse.
            return {"type": "array", "items": {"type": "string"}, "maxItems": 0}
        return super().function_before_schema(schema)


@functools.cache
def _stripe_copy() -> dict[str, Any]:
    copy: dict[str, Any] = json.loads(STRIPE_COPY.read_text(encoding="utf-8"))
    return copy


def document(app: Chalice) -> dict[str, Any]:
    """The OpenAPI 3.1 document of every route `app` serves."""
    stripe = _stripe_copy()
    builder = _Builder(stripe)
    paths: dict[str, dict[str, Any]] = {}
    for path, entries in sorted(app.routes.items()):
        for method, entry in sorted(entries.items()):
            if method == "OPTIONS":
                continue
            spec = ENDPOINTS.get(entry.view_function)
            operation = builder.operation(method, path, entry.view_name, entry.view_function, spec)
            paths.setdefault(path, {})[method.lower()] = operation
    version = str(stripe["source"].get("info.version", ""))
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "PayFlow API",
            "version": "0.1.0",
            "description": _DESCRIPTION.replace("{version}", version),
            "license": {"name": "Apache-2.0"},
        },
        "servers": [{"url": "/", "description": "This PayFlow sandbox"}],
        "security": [{"secretKeyBearer": []}, {"secretKeyBasic": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "secretKeyBearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "Merchant secret key: `Authorization: Bearer sk_test_...`.",
                },
                "secretKeyBasic": {
                    "type": "http",
                    "scheme": "basic",
                    "description": "Merchant secret key as the user name, empty password.",
                },
                "publishableKey": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A merchant's publishable key (`pk_test_...`), as Stripe.js "
                    "sends it: only with the intent's `client_secret`, on the routes that say so.",
                },
                "adminKey": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "Sandbox admin key: `Authorization: Bearer <admin key>`.",
                },
            },
            "responses": {
                f"Error{status}": {
                    "description": text,
                    "content": {"application/json": {"schema": {"$ref": _SCHEMAS + "error"}}},
                }
                for status, text in _ERRORS.items()
            },
            "schemas": {**stripe["schemas"], **builder.request_schemas},
        },
    }


class _Builder:
    """Builds operations, collecting the request models' schemas as it goes."""

    def __init__(self, stripe: dict[str, Any]) -> None:
        self._stripe_schemas: dict[str, Any] = stripe["schemas"]
        self._lists = set(stripe["lists"]) | set(stripe["search_results"])
        self._searches = set(stripe["search_results"])
        self.request_schemas: dict[str, Any] = {}

    def operation(
        self,
        method: str,
        path: str,
        name: str,
        view: Callable[..., Any],
        spec: EndpointSpec | None,
    ) -> dict[str, Any]:
        summary, description = _doc(view, name)
        resource = self._resource(method, path, spec)
        operation: dict[str, Any] = {
            "operationId": _camel(name),
            "tags": [_tag(path)],
            "summary": summary,
        }
        expansions = expand.paths(spec.returns) if spec else []
        if expansions:
            listed = ", ".join(f"`{path}`" for path in expansions)
            description = f"{description}\n\n`expand[]` takes: {listed}.".strip()
        if description:
            operation["description"] = description
        if resource is None or not resource[1]:
            operation["x-payflow-extension"] = True
        auth = spec.auth if spec else "none"
        operation["security"] = {
            "merchant": [{"secretKeyBearer": []}, {"secretKeyBasic": []}],
            "client": [{"secretKeyBearer": []}, {"secretKeyBasic": []}, {"publishableKey": []}],
            "admin": [{"adminKey": []}],
            "none": [],
        }[auth]
        parameters = [
            {"name": n, "in": "path", "required": True, "schema": {"type": "string"}}
            for n in _PARAM.findall(path)
        ]
        model = spec.params if spec else None
        if method == "POST" and auth in ("merchant", "client"):
            parameters.append(_idempotency_header(operation["operationId"]))
        # Where http.py reads parameters from: the query of a GET, the body of anything else.
        if model is not None and method == "GET":
            parameters.extend(self._query_parameters(model))
        if parameters:
            operation["parameters"] = parameters
        if model is not None and method != "GET":
            operation["requestBody"] = self._request_body(model)
        operation["responses"] = self._responses(method, path, spec, resource)
        return operation

    def _resource(
        self, method: str, path: str, spec: EndpointSpec | None
    ) -> tuple[JsonSchemaValue, bool] | None:
        """The 200 body's schema and whether it is a Stripe operation; None when unknown."""
        if spec is not None and spec.returns:
            kind = spec.returns
            if kind.startswith("list:") and path.endswith("/search") and path in self._searches:
                collection = path.removeprefix("/v1/").removesuffix("/search")
                return {"$ref": _SCHEMAS + "search_result." + collection}, True
            if kind.startswith("list:"):
                return self._list_of(path, kind.removeprefix("list:")), True
            return {"$ref": _SCHEMAS + kind}, True
        return self._inferred(method, path)

    def _inferred(self, method: str, path: str) -> tuple[JsonSchemaValue, bool] | None:
        # Stripe's routes read `/v1/<collection>[/{id}[/<action>]]`.
        parts = path.removeprefix("/v1/").split("/") if path.startswith("/v1/") else []
        if not parts:
            return None
        collection, rest = parts[0], parts[1:]
        singular = collection.removesuffix("s")
        if singular not in self._stripe_schemas and collection not in self._stripe_schemas:
            return None
        name = singular if singular in self._stripe_schemas else collection
        stripe_route = f"/v1/{collection}" in self._lists or name == collection
        if not rest:
            if method == "GET" and name != collection:
                return self._list_of(path, name), stripe_route
            return {"$ref": _SCHEMAS + name}, stripe_route
        if rest == ["search"] and path in self._lists:
            return {"$ref": _SCHEMAS + "search_result." + collection}, True
        if not _PARAM.fullmatch(rest[0]):
            return None
        if len(rest) == 1:
            deleted = f"deleted_{name}"
            if method == "DELETE" and deleted in self._stripe_schemas:
                return {"$ref": _SCHEMAS + deleted}, stripe_route
            return {"$ref": _SCHEMAS + name}, stripe_route
        if len(rest) == 2 and rest[1] in _ACTIONS:
            return {"$ref": _SCHEMAS + name}, stripe_route
        # A sub-resource PayFlow adds (`/attempts`, `/deliveries`, `/roll_secret`...).
        return None

    def _list_of(self, path: str, item: str) -> JsonSchemaValue:
        if path in self._lists:
            return {"$ref": _SCHEMAS + "list." + path.removeprefix("/v1/").replace("/", ".")}
        return {
            "type": "object",
            "required": ["object", "data", "has_more", "url"],
            "properties": {
                "object": {"type": "string", "enum": ["list"]},
                "data": {"type": "array", "items": {"$ref": _SCHEMAS + item}},
                "has_more": {"type": "boolean"},
                "url": {"type": "string"},
            },
        }

    def _model_schema(self, model: type[BaseModel]) -> JsonSchemaValue:
        schema = model.model_json_schema(
            ref_template=_SCHEMAS + "{model}", schema_generator=_FormAwareSchema
        )
        for name, definition in schema.pop("$defs", {}).items():
            self.request_schemas.setdefault(name, _openapi_30(definition))
        converted: JsonSchemaValue = _openapi_30(schema)
        for field, prop in converted.get("properties", {}).items():
            if field in _BY_NAME:
                nullable = {"nullable": True} if prop.get("nullable") else {}
                converted["properties"][field] = {**_BY_NAME[field], **nullable}
        return converted

    def _request_body(self, model: type[p.Params]) -> dict[str, Any]:
        schema = self._model_schema(model)
        name = model.__name__
        self.request_schemas.setdefault(name, schema)
        content: dict[str, Any] = {}
        if self._flat(schema):
            # Stripe's form encoding: brackets nest one level (`metadata[k]=v`); a form value
            # cannot be null, so the form's schema is the model's without null.
            form_ref = self._form_ref(name)
            form_schema = self.request_schemas[name + FORM_SUFFIX]
            encoding = {
                field: {"style": "deepObject", "explode": True}
                for field, prop in form_schema.get("properties", {}).items()
                if self._kind(prop) == "object"
            }
            form: dict[str, Any] = {"schema": form_ref}
            if encoding:
                form["encoding"] = encoding
            content["application/x-www-form-urlencoded"] = form
        content["application/json"] = {"schema": {"$ref": _SCHEMAS + name}}
        return {"required": bool(schema.get("required")), "content": content}

    def _form_ref(self, name: str) -> JsonSchemaValue:
        """A $ref to the null-free variant of component `name`, made on first use."""
        form_name = name + FORM_SUFFIX
        if form_name not in self.request_schemas:
            self.request_schemas[form_name] = {}  # placeholder: recursive models end here
            self.request_schemas[form_name] = self._without_null(self.request_schemas[name])
        return {"$ref": _SCHEMAS + form_name}

    def _without_null(self, node: Any) -> Any:
        if isinstance(node, list):
            return [self._without_null(item) for item in node]
        if not isinstance(node, dict):
            return node
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.removeprefix(_SCHEMAS) in self.request_schemas:
            return self._form_ref(ref.removeprefix(_SCHEMAS))
        result = {k: self._without_null(v) for k, v in node.items() if k != "nullable"}
        if "default" in result and result["default"] is None:
            del result["default"]
        if "allOf" in result and len(result["allOf"]) == 1 and len(result) == 1:
            return result["allOf"][0]
        return result

    def _flat(self, schema: JsonSchemaValue) -> bool:
        """True when every property is a form value: a scalar, a list of scalars, or a hash of
        scalars (OpenAPI 3.0 cannot say `connectors[0][id]=...`: such models are JSON only)."""
        for prop in schema.get("properties", {}).values():
            kind = self._kind(prop)
            target = self._target(prop)
            if kind == "array" and self._kind(target.get("items", {})) in ("object", "array"):
                return False
            if kind == "object":
                inner = [*target.get("properties", {}).values()]
                extra = target.get("additionalProperties")
                inner += [extra] if isinstance(extra, dict) else []
                if any(self._kind(v) in ("object", "array") for v in inner):
                    return False
        return True

    def _target(self, prop: JsonSchemaValue) -> JsonSchemaValue:
        """The schema a property's value follows, its null branch and $refs set aside."""
        for branch in [prop, *prop.get("anyOf", []), *prop.get("allOf", [])]:
            ref = branch.get("$ref")
            if ref:
                branch = self.request_schemas.get(ref.removeprefix(_SCHEMAS), {})
            if branch.get("type") not in (None, "null"):
                return branch
        return prop

    def _query_parameters(self, model: type[p.Params]) -> list[dict[str, Any]]:
        schema = self._without_null(self._model_schema(model))
        required = set(schema.get("required", []))
        parameters = []
        for field, prop in schema.get("properties", {}).items():
            parameter: dict[str, Any] = {
                "name": field,
                "in": "query",
                "required": field in required,
                "schema": {k: v for k, v in prop.items() if k != "title"},
            }
            kind = self._kind(prop)
            if kind == "object":
                parameter |= {"style": "deepObject", "explode": True}
            elif kind == "array":
                parameter |= {"style": "form", "explode": True}
            parameters.append(parameter)
        return parameters

    def _kind(self, prop: JsonSchemaValue) -> str | None:
        """The JSON type of a property once null and $refs are set aside."""
        kind = self._target(prop).get("type")
        return None if kind in (None, "null") else str(kind)

    def _responses(
        self,
        method: str,
        path: str,
        spec: EndpointSpec | None,
        resource: tuple[JsonSchemaValue, bool] | None,
    ) -> dict[str, Any]:
        content_types = _CONTENT.get((method, path), ["application/json"])
        body = resource[0] if resource else {"type": "object"}
        ok = {
            "description": "Success.",
            "content": {
                kind: {"schema": body if kind == "application/json" else {"type": "string"}}
                for kind in content_types
            },
        }
        responses: dict[str, Any] = {"200": ok}
        for status in _error_statuses(method, path, spec):
            responses[status] = {"$ref": f"#/components/responses/Error{status}"}
        return responses


def _error_statuses(method: str, path: str, spec: EndpointSpec | None) -> list[str]:
    if spec is None:
        # Plain routes (health, docs): only an unknown docs asset is an error.
        return ["404"] if _PARAM.search(path) else []
    statuses = {"404", "500"}  # every endpoint: unknown ids, and PayFlow's own failures
    if spec.params is not None:
        statuses.add("400")
    if spec.auth != "none":
        statuses.add("401")
    if spec.auth == "admin":
        statuses.add("403")
    if method == "POST":
        statuses |= {"400", "409"}
    if method == "POST" and "payment_intents" in path:
        statuses.add("402")  # confirming (or capturing, authenticating) can be declined
    if spec.auth in ("merchant", "client"):
        statuses.add("429")
    return sorted(statuses)


def _idempotency_header(operation_id: str) -> dict[str, Any]:
    return {
        "name": "Idempotency-Key",
        "in": "header",
        "required": False,
        "description": (
            "Makes the POST safe to retry: the first result for a key is stored and replayed "
            "(with `Idempotent-Replayed: true`) for later requests with the same key and "
            "parameters; other parameters with the same key are a 400 `idempotency_error`. "
            "Use a new key (a UUID v4) per request."
        ),
        "schema": {"type": "string", "minLength": 1, "maxLength": MAX_KEY_LENGTH},
        # One example per operation: a shared one would replay across operations.
        "example": f"{operation_id}-example-5f0c8b5e",
    }


def _openapi_30(node: Any) -> Any:
    """pydantic's JSON Schema (2020-12) as an OpenAPI 3.0 schema: a null branch of `anyOf`
    becomes `nullable`, `const` an enum of one, numeric exclusive bounds 3.0's booleans."""
    if isinstance(node, list):
        return [_openapi_30(item) for item in node]
    if not isinstance(node, dict):
        return node
    schema = {key: _openapi_30(value) for key, value in node.items()}
    if "const" in schema:
        schema["enum"] = [schema.pop("const")]
    # Field bounds on a value a before-validator reads stay in pydantic's own words.
    for word, bound in (("ge", "minimum"), ("le", "maximum")):
        if isinstance(schema.get(word), int | float) and "type" in schema:
            schema[bound] = schema.pop(word)
    for bound, exclusive in (("minimum", "exclusiveMinimum"), ("maximum", "exclusiveMaximum")):
        if isinstance(schema.get(exclusive), int | float) and not isinstance(
            schema[exclusive], bool
        ):
            schema[bound], schema[exclusive] = schema[exclusive], True
    branches = schema.get("anyOf")
    if branches and any(b == {"type": "null"} for b in branches):
        rest = [b for b in branches if b != {"type": "null"}]
        del schema["anyOf"]
        schema["nullable"] = True
        if len(rest) == 1 and "$ref" in rest[0]:
            schema["allOf"] = rest  # 3.0 ignores siblings of a $ref
        elif len(rest) == 1:
            schema = {**rest[0], **schema}
        else:
            schema["anyOf"] = rest
    return schema


def _doc(view: Callable[..., Any], name: str) -> tuple[str, str]:
    text = inspect.getdoc(view) or ""
    if not text:
        return name.replace("_", " ").capitalize(), ""
    first, _, rest = text.partition("\n\n")
    return " ".join(first.split()), rest.strip()


def _camel(name: str) -> str:
    head, *tail = name.split("_")
    return head + "".join(part.capitalize() for part in tail)


def _tag(path: str) -> str:
    parts = path.removeprefix("/v1/").split("/") if path.startswith("/v1/") else []
    if not parts:
        return "PayFlow"
    if parts[0] == "sandbox":
        return "Sandbox"
    return parts[0].replace("_", " ").capitalize()
