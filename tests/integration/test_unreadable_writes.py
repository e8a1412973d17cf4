"""No single request can make a merchant's data unreadable.

Walks every POST route the app has (its `@endpoint` spec names the params model), sends every
parameter hostile values (empty and blank map keys, numbers DynamoDB cannot hold, control
characters, huge and deep values), each in turn with otherwise valid parameters, then reads
everything back: every list, every object in them, the events, and every item of the merchant's
that the requests wrote (from the table's stream), decoded as the data layer reads it. Routes
and parameters added later are covered without touching this file.
"""

from __future__ import annotations

import enum
import json
import types
import typing
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import BaseModel

from app import app
from chalicelib.api.http import endpoint_spec
from chalicelib.dal.dynamo import from_attrs
from chalicelib.domain.webhooks import ENDPOINT_DISABLED_EVENT
from tests.conftest import Api
from tests.integration.conftest import Hooks
from tests.integration.table_writes import TableWrites

HOSTILE: list[Any] = [
    {"": "x"},
    {" ": "x"},
    {"a": {"": "x"}},
    [{"": "x"}],
    [""],
    10**40,
    -(10**40),
    1e300,
    -1e-300,
    2**63,
    "",
    "\x00",
    "\u0663\u0660",
    "\ud7ff\ue000\U0010ffff",
    "x" * 5000,
    {f"k{i}": "v" * 500 for i in range(50)},
    {"a": {"b": {"c": {"d": {"e": {"f": {"g": "x"}}}}}}},
]
FORM_HOSTILE = ["[]", "[ ]", "[\u0663]", "[a][b][c][d]", "[%00]"]

# Values a required parameter needs so that the hostile one reaches the service.
KNOWN_GOOD: dict[str, Any] = {
    "amount": 100,
    "currency": "usd",
    # Endpoints the walk creates take an event this test never causes: the one endpoint that
    # takes every event already delivers each hostile value once; ten more copies of every
    # delivery (a thousand-odd) would only repeat that.
    "enabled_events": [ENDPOINT_DISABLED_EVENT],
    "since": 0,
    "payment_method": "pm_card_visa",
}


def _unwrap(annotation: Any) -> Any:
    if typing.get_origin(annotation) is typing.Annotated:
        return _unwrap(typing.get_args(annotation)[0])
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(annotation) if a is not type(None)]
        return _unwrap(options[0])
    return annotation


def good_value(name: str, annotation: Any, context: dict[str, Any]) -> Any:
    """A value the parameter accepts: by name for the ones with rules, else by type."""
    if name in context:
        return context[name]
    if name in KNOWN_GOOD:
        return KNOWN_GOOD[name]
    kind = _unwrap(annotation)
    origin = typing.get_origin(kind)
    if origin is typing.Literal:
        return typing.get_args(kind)[0]
    if origin is list:
        return [good_value("", typing.get_args(kind)[0], context)]
    if origin is dict:
        return {}
    if isinstance(kind, type) and issubclass(kind, enum.Enum):
        return next(iter(kind)).value
    if isinstance(kind, type) and issubclass(kind, BaseModel):
        return {
            field: good_value(field, info.annotation, context)
            for field, info in kind.model_fields.items()
            if info.is_required()
        }
    if kind is bool:
        return False
    if kind is int or kind is float:
        return 1
    return "x"


def hostile_for(annotation: Any) -> list[Any]:
    """The hostile values of the parameter's own JSON kind: a value of another kind is refused
    by type before it could be stored (tests/integration/test_hostile_input.py sends those)."""
    kind = _unwrap(annotation)
    origin = typing.get_origin(kind) or kind
    if origin is dict or (isinstance(kind, type) and issubclass(kind, BaseModel)):
        own: type = dict
    elif origin is list:
        own = list
    elif kind in (int, float):
        own = int
    else:
        own = str
    return [v for v in HOSTILE if (int if isinstance(v, int | float) else type(v)) is own]


def variants(model: type[BaseModel], context: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Valid parameters with one value (top level or one model down) made hostile."""
    base = {
        name: good_value(name, info.annotation, context)
        for name, info in model.model_fields.items()
        if info.is_required()
    }
    for name, info in model.model_fields.items():
        for value in hostile_for(info.annotation):
            yield {**base, name: value}
        inner = _unwrap(info.annotation)
        item = typing.get_args(inner)[0] if typing.get_origin(inner) is list else inner
        if isinstance(item, type) and issubclass(item, BaseModel):
            good = good_value("", item, context)
            for field, field_info in item.model_fields.items():
                for value in hostile_for(field_info.annotation):
                    nested = {**good, field: value}
                    yield {**base, name: [nested] if item is not inner else nested}


def post_routes() -> Iterator[tuple[str, type[BaseModel]]]:
    for path, methods in app.routes.items():
        entry = methods.get("POST")
        spec = endpoint_spec(entry.view_function) if entry else None
        if spec and spec.auth in ("merchant", "client") and spec.params is not None:
            yield path, spec.params


def first_id(api: Api, collection_path: str) -> str:
    listed = api.get(collection_path)
    data = listed.json().get("data") if listed.status_code == 200 else None
    return str(data[0]["id"]) if data else "unknown_0"


def fill(api: Api, route: str) -> str:
    """The route with each path parameter set to an existing object of its collection."""
    parts = route.split("/")
    for index, part in enumerate(parts):
        if part.startswith("{"):
            parts[index] = first_id(api, "/".join(parts[:index]))
    return "/".join(parts)


def read_everything(api: Api) -> int:
    """Every GET route without path parameters, and every object they list: all 200."""
    reads = 0
    for path, methods in app.routes.items():
        entry = methods.get("GET")
        spec = endpoint_spec(entry.view_function) if entry else None
        if (
            spec is None
            or spec.auth not in ("merchant", "client")
            or "{" in path
            or _needs_parameters(spec)
        ):
            continue
        response = api.get(path)
        assert response.status_code == 200, (path, response.text[:300])
        reads += 1
        for obj in response.json().get("data", []) if isinstance(response.json(), dict) else []:
            if isinstance(obj, dict) and "id" in obj and _retrievable(path):
                one = api.get(f"{path}/{obj['id']}")
                assert one.status_code == 200, (path, obj["id"], one.text[:300])
                reads += 1
    return reads


def _needs_parameters(spec: Any) -> bool:
    """A read that cannot be made bare (search needs a query): its data is listed elsewhere."""
    params = spec.params
    return params is not None and any(i.is_required() for i in params.model_fields.values())


def _retrievable(collection: str) -> bool:
    return any(
        "GET" in methods
        and route.startswith(collection + "/{")
        and route.count("/") == collection.count("/") + 1
        for route, methods in app.routes.items()
    )


@pytest.mark.timeout(300)  # about 1,000 requests: every parameter of every POST route
def test_no_parameter_of_any_post_route_can_break_the_merchants_reads(
    api: Api, merchant: dict, hooks: Hooks, sandbox: Any
):
    writes = TableWrites(sandbox)
    succeeded = api.post(
        "/v1/payment_intents",
        {"amount": 5000, "currency": "usd", "confirm": "true", "payment_method": "pm_card_visa"},
    ).json()
    assert succeeded["status"] == "succeeded"
    refund = api.post("/v1/refunds", {"payment_intent": succeeded["id"], "amount": 100})
    assert refund.status_code == 200, refund.text
    hooks.endpoint(hooks.receiver())
    # The newest PaymentIntent is the one routes find first: still open, so updates land.
    assert api.post("/v1/payment_intents", {"amount": 700, "currency": "usd"}).status_code == 200
    context = {"payment_intent": succeeded["id"], "url": hooks.receiver().url}

    sent, refused, routes = 0, 0, set()
    for route, model in post_routes():
        routes.add(route)
        path = fill(api, route)
        for params in variants(model, context):
            response = api.post(
                path, data=json.dumps(params), headers={"Content-Type": "application/json"}
            )
            assert response.status_code < 500, (route, params, response.text[:300])
            sent += 1
            refused += response.status_code >= 400
        for name in model.model_fields:
            for suffix in FORM_HOSTILE:
                response = api.post(path, {f"{name}{suffix}": "x"})
                assert response.status_code < 500, (route, name, suffix, response.text[:300])
                sent += 1
    assert {"/v1/payment_intents", "/v1/refunds", "/v1/webhook_endpoints"} <= routes
    assert sent > 500 and refused > 0
    assert read_everything(api) > 5
    # Every item of the merchant's that a request wrote decodes as the data layer reads it.
    stored = writes.stored_items(writes.of_merchant(merchant["id"]))
    for item in stored:
        from_attrs(item)
    assert succeeded["id"] in {item["pk"]["S"] for item in stored}
