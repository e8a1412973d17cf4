"""The read-only GraphQL schema over the public API's objects, and its limits.

Imported only by the /graphql route (graphql-core costs tens of milliseconds to import: no
other function pays for it). Every resolver calls the same services as the REST views, with
the merchant the request authenticated as, so keys and tenant isolation are REST's. Field
names are Stripe's (snake_case): an object's fields resolve straight from its API body, and
`raw` gives the whole body.

Limits, checked after validation and before anything is read: selection depth at most
`MAX_DEPTH`, and a cost (every field 1, multiplied by the `limit` of each list it sits under,
or the list's bound when it takes none) at most `MAX_COST`.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any, Final

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLObjectType,
    GraphQLResolveInfo,
    GraphQLScalarType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    build_schema,
    execute_sync,
    get_nullable_type,
    is_list_type,
    parse,
    validate,
)

from chalicelib.container import analytics, services, webhooks
from chalicelib.dal.events import EventQuery
from chalicelib.errors import ParameterInvalid, PayFlowError, ResourceMissing

MAX_DEPTH: Final = 6
MAX_COST: Final = 5000
MAX_LIMIT: Final = 100
DEFAULT_LIST_COST: Final = 10
LIST_COST: Final = {"deliveries": 16, "attempts": 10, "connectors": 10}
"""Lists without a `limit` argument, by their bound (an event has a delivery per endpoint, at
most 16)."""

SDL: Final = """
scalar JSON

type Query {
  payment_intent(id: ID!): PaymentIntent
  payment_intents(
    limit: Int = 10, starting_after: ID, connector: String, payment_method_type: String
  ): [PaymentIntent!]!
  charge(id: ID!): Charge
  events(related_object: ID, type: String, created_gte: Int, limit: Int = 10): [Event!]!
  connectors: [Connector!]!
  analytics(created_gte: Int, created_lte: Int, interval: String): JSON
}

type PaymentIntent {
  id: ID!
  amount: Int!
  amount_capturable: Int!
  amount_received: Int!
  currency: String!
  status: String!
  capture_method: String!
  created: Int!
  customer: String
  description: String
  metadata: JSON
  last_payment_error: JSON
  latest_charge: String
  payment_method_types: [String!]!
  charges(limit: Int = 10): [Charge!]!
  refunds(limit: Int = 10): [Refund!]!
  attempts: [PaymentAttempt!]!
  routing: JSON
  executions: JSON
  events(limit: Int = 100): [Event!]!
  raw: JSON
}

type Charge {
  id: ID!
  amount: Int!
  amount_captured: Int!
  amount_refunded: Int!
  currency: String!
  status: String!
  created: Int!
  captured: Boolean!
  failure_code: String
  failure_message: String
  payment_intent: String
  payment_method_details: JSON
  balance_transactions(limit: Int = 10): [BalanceTransaction!]!
  raw: JSON
}

type Refund {
  id: ID!
  amount: Int!
  currency: String!
  status: String!
  created: Int!
  reason: String
  balance_transactions(limit: Int = 10): [BalanceTransaction!]!
  raw: JSON
}

type BalanceTransaction {
  id: ID!
  amount: Int!
  fee: Int!
  net: Int!
  currency: String!
  type: String!
  status: String!
  created: Int!
  source: String
}

type PaymentAttempt {
  attempt: Int!
  connector: String!
  outcome: String!
  error_code: String
  latency_ms: Int!
  created: Int!
  answer: JSON
}

type Event {
  id: ID!
  type: String!
  created: Int!
  pending_webhooks: Int!
  object: JSON
  deliveries: [WebhookDelivery!]!
}

type WebhookDelivery {
  id: ID!
  event: ID!
  event_type: String
  webhook_endpoint: ID!
  status: String!
  created: Int!
  attempt_count: Int!
  next_attempt_at: Int
  attempts: JSON
}

type Connector {
  id: ID!
  kind: String!
  enabled: Boolean!
  health: String!
  circuit: JSON
  simulator: JSON
}
"""


@functools.cache
def schema() -> GraphQLSchema:
    """The schema with its resolvers, built once per process."""
    built = build_schema(SDL)
    json_type = built.type_map["JSON"]
    assert isinstance(json_type, GraphQLScalarType)
    json_type.serialize = _same  # type: ignore[method-assign]
    json_type.parse_value = _same  # type: ignore[method-assign]
    resolvers: dict[tuple[str, str], Any] = {
        ("Query", "payment_intent"): _payment_intent,
        ("Query", "payment_intents"): _payment_intents,
        ("Query", "charge"): _charge,
        ("Query", "events"): _events,
        ("Query", "connectors"): _connectors,
        ("Query", "analytics"): _analytics,
        ("PaymentIntent", "charges"): _pi_charges,
        ("PaymentIntent", "refunds"): _pi_refunds,
        ("PaymentIntent", "attempts"): _pi_attempts,
        ("PaymentIntent", "routing"): _pi_routing,
        ("PaymentIntent", "executions"): _pi_executions,
        ("PaymentIntent", "events"): _pi_events,
        ("Charge", "balance_transactions"): _balance_transactions,
        ("Refund", "balance_transactions"): _balance_transactions,
        ("Event", "object"): lambda event, info: event["data"]["object"],
        ("Event", "deliveries"): _deliveries,
    }
    for (type_name, field_name), resolver in resolvers.items():
        built.get_type(type_name).fields[field_name].resolve = resolver  # type: ignore[union-attr]
    for type_name in ("PaymentIntent", "Charge", "Refund"):
        built.get_type(type_name).fields["raw"].resolve = lambda obj, info: obj  # type: ignore[union-attr]
    return built


def run(
    merchant_id: str, query: str, variables: Mapping[str, Any] | None, operation: str | None
) -> dict[str, Any]:
    """Parse, validate, check the limits, execute: the GraphQL response body."""
    try:
        document = parse(query, max_tokens=5000)
    except GraphQLError as error:
        return {"errors": [error.formatted]}
    errors = validate(schema(), document)
    if not errors:
        errors = limits(document, variables or {})
    if errors:
        return {"errors": [e.formatted for e in errors]}
    result = execute_sync(
        schema(),
        document,
        variable_values=dict(variables or {}),
        operation_name=operation,
        context_value={"merchant_id": merchant_id},
    )
    body: dict[str, Any] = {"data": result.data}
    if result.errors:
        body["errors"] = [_client_error(e) for e in result.errors]
    return body


def limits(document: DocumentNode, variables: Mapping[str, Any]) -> list[GraphQLError]:
    """The depth and cost limits of a validated document (empty when it is within both)."""
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    for definition in document.definitions:
        if not isinstance(definition, OperationDefinitionNode):
            continue
        depth, cost = _measure(definition.selection_set, fragments, variables, 0, ())
        if depth > MAX_DEPTH:
            return [GraphQLError(f"Query depth {depth} exceeds the limit of {MAX_DEPTH}.")]
        if cost > MAX_COST:
            return [GraphQLError(f"Query cost {cost} exceeds the limit of {MAX_COST}.")]
    return []


def _measure(
    selections: SelectionSetNode | None,
    fragments: Mapping[str, FragmentDefinitionNode],
    variables: Mapping[str, Any],
    depth: int,
    seen: tuple[str, ...],
) -> tuple[int, int]:
    if selections is None:
        return depth, 0
    deepest, cost = depth, 0
    for node in selections.selections:
        if isinstance(node, FieldNode):
            inner_depth, inner_cost = _measure(
                node.selection_set, fragments, variables, depth + 1, seen
            )
            multiplier = _list_size(node, variables) if node.name.value in _lists() else 1
            deepest = max(deepest, inner_depth)
            cost += 1 + multiplier * inner_cost
        elif isinstance(node, InlineFragmentNode):
            inner_depth, inner_cost = _measure(
                node.selection_set, fragments, variables, depth, seen
            )
            deepest, cost = max(deepest, inner_depth), cost + inner_cost
        elif isinstance(node, FragmentSpreadNode) and node.name.value not in seen:
            fragment = fragments.get(node.name.value)
            if fragment is not None:
                inner_depth, inner_cost = _measure(
                    fragment.selection_set, fragments, variables, depth, (*seen, node.name.value)
                )
                deepest, cost = max(deepest, inner_depth), cost + inner_cost
    return deepest, cost


@functools.cache
def _lists() -> frozenset[str]:
    """Names of the fields that return lists (in this schema a name is a list everywhere)."""
    return frozenset(
        name
        for type_ in schema().type_map.values()
        if isinstance(type_, GraphQLObjectType)
        for name, field in type_.fields.items()
        if is_list_type(get_nullable_type(field.type))
    )


def _list_size(node: FieldNode, variables: Mapping[str, Any]) -> int:
    for argument in node.arguments or ():
        if argument.name.value != "limit":
            continue
        value = argument.value
        if isinstance(value, IntValueNode):
            return int(value.value)
        name = getattr(getattr(value, "name", None), "value", None)
        if name is not None and isinstance(variables.get(name), int):
            return int(variables[name])
    return LIST_COST.get(node.name.value, DEFAULT_LIST_COST)


def _same(value: Any) -> Any:
    return value


def _client_error(error: GraphQLError) -> dict[str, Any]:
    # A PayFlow error keeps its Stripe shape under `extensions`; anything else is not shown.
    original = error.original_error
    if original is None or isinstance(original, PayFlowError):
        formatted = error.formatted
        if isinstance(original, PayFlowError):
            formatted["extensions"] = original.to_body()["error"]
        return dict(formatted)
    return {"message": "An internal error occurred.", "path": error.path}


def _merchant(info: GraphQLResolveInfo) -> str:
    return str(info.context["merchant_id"])


def _limit(value: int) -> int:
    if not 1 <= value <= MAX_LIMIT:
        raise ParameterInvalid(f"limit must be between 1 and {MAX_LIMIT}.", param="limit")
    return value


def _payment_intent(_: Any, info: GraphQLResolveInfo, id: str) -> dict[str, Any] | None:
    try:
        return services().payment_intents.retrieve(_merchant(info), id).to_api()
    except ResourceMissing:
        return None


def _payment_intents(
    _: Any,
    info: GraphQLResolveInfo,
    limit: int,
    starting_after: str | None = None,
    connector: str | None = None,
    payment_method_type: str | None = None,
) -> list[dict[str, Any]]:
    from chalicelib.api import params as p

    # The REST list's own checks, so both refuse the same values with the same error.
    checked = p.validate(
        p.ListPaymentIntents,
        {
            name: value
            for name, value in (
                ("connector", connector),
                ("payment_method_type", payment_method_type),
            )
            if value is not None
        },
    )
    page = services().payment_intents.list_page(
        _merchant(info),
        limit=_limit(limit),
        starting_after=starting_after,
        ending_before=None,
        customer=None,
        connector=checked.connector,
        payment_method_type=(
            checked.payment_method_type.value if checked.payment_method_type else None
        ),
    )
    return list(page["data"])


def _charge(_: Any, info: GraphQLResolveInfo, id: str) -> dict[str, Any] | None:
    try:
        return services().charges.retrieve(_merchant(info), id).to_api()
    except ResourceMissing:
        return None


def _events(
    _: Any,
    info: GraphQLResolveInfo,
    limit: int,
    related_object: str | None = None,
    type: str | None = None,
    created_gte: int | None = None,
) -> list[dict[str, Any]]:
    query = EventQuery(
        types=(type,) if type else (), created_gte=created_gte, related_object=related_object
    )
    page = webhooks().events.list_page(
        _merchant(info), query, limit=_limit(limit), starting_after=None, ending_before=None
    )
    return list(page["data"])


def _connectors(_: Any, info: GraphQLResolveInfo) -> list[dict[str, Any]]:
    return list(services().connector_admin.list_for(_merchant(info))["data"])


def _analytics(
    _: Any,
    info: GraphQLResolveInfo,
    created_gte: int | None = None,
    created_lte: int | None = None,
    interval: str | None = None,
) -> dict[str, Any]:
    if interval not in (None, "hour", "day"):
        raise ParameterInvalid("interval must be hour or day.", param="interval")
    return analytics().report(_merchant(info), created_gte, created_lte, interval)


def _pi_charges(pi: Mapping[str, Any], info: GraphQLResolveInfo, limit: int) -> list[Any]:
    # The charges named by the PaymentIntent's own events (each charge is written with its
    # event), read by id: the charges list's payment_intent filter reads every charge of the
    # merchant, seconds in the sandbox for one payment.
    ids: list[str] = []
    for event in _related_events(pi, info):
        obj = event["data"]["object"]
        if obj.get("object") == "charge" and obj["id"] not in ids:
            ids.append(obj["id"])
    if pi.get("latest_charge") and pi["latest_charge"] not in ids:
        ids.insert(0, pi["latest_charge"])
    charges = []
    for charge_id in ids[: _limit(limit)]:
        try:
            charges.append(services().charges.retrieve(_merchant(info), charge_id).to_api())
        except ResourceMissing:
            continue
    return charges


def _related_events(pi: Mapping[str, Any], info: GraphQLResolveInfo) -> list[dict[str, Any]]:
    cache: dict[str, Any] = info.context.setdefault("events", {})
    if pi["id"] not in cache:
        cache[pi["id"]] = _events(
            None, info, limit=MAX_LIMIT, related_object=str(pi["id"]), created_gte=pi["created"]
        )
    return list(cache[pi["id"]])


def _pi_refunds(pi: Mapping[str, Any], info: GraphQLResolveInfo, limit: int) -> list[Any]:
    page = services().refunds.list_page(
        _merchant(info),
        limit=_limit(limit),
        starting_after=None,
        ending_before=None,
        payment_intent=pi["id"],
        charge=None,
    )
    return list(page["data"])


def _attempts_of(pi: Mapping[str, Any], info: GraphQLResolveInfo) -> dict[str, Any]:
    # Both fields read one record set: keep it for the request.
    cache: dict[str, Any] = info.context.setdefault("attempts", {})
    if pi["id"] not in cache:
        cache[pi["id"]] = services().payment_intents.attempts(_merchant(info), pi["id"])
    return dict(cache[pi["id"]])


def _pi_attempts(pi: Mapping[str, Any], info: GraphQLResolveInfo) -> list[Any]:
    return list(_attempts_of(pi, info)["data"])


def _pi_routing(pi: Mapping[str, Any], info: GraphQLResolveInfo) -> list[Any]:
    return list(_attempts_of(pi, info)["routing"])


def _pi_executions(pi: Mapping[str, Any], info: GraphQLResolveInfo) -> list[Any]:
    return services().payment_intents.execution_views(_attempts_of(pi, info)["routing"])


def _pi_events(pi: Mapping[str, Any], info: GraphQLResolveInfo, limit: int) -> list[Any]:
    return _related_events(pi, info)[: _limit(limit)]


def _balance_transactions(obj: Mapping[str, Any], info: GraphQLResolveInfo, limit: int) -> list:
    page = services().ledger.transactions(
        _merchant(info),
        limit=_limit(limit),
        starting_after=None,
        ending_before=None,
        type=None,
        source=obj["id"],
    )
    return list(page["data"])


def _deliveries(event: Mapping[str, Any], info: GraphQLResolveInfo) -> list[Any]:
    return list(webhooks().endpoints.deliveries_of_event(_merchant(info), event["id"])["data"])
