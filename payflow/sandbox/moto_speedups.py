"""moto's hot paths made cheaper, without changing an answer (applied in the moto process).

Measured with a CPU profiler in the moto process of a chaos run (30 payments):

- Query: moto builds its candidates from `Table.all_items()`, which sorts every item of the
  table, for every Query, even one on the table's own partition key. Queries got slower as the
  table grew, and a long chaos run slowed down quadratically. A Query on the table's key now
  reads its partition's bucket; a Query on an index filters the items unsorted (moto sorts the
  matches by the index's key and the table's key afterwards, which fully orders them), keeping
  those of the index partition asked for. moto's sort of the matches compared tuples of
  DynamoTypes, converting both sides' values on every comparison: each item's key is now
  converted once. Paging through an endpoint's 2,000 deliveries among 16,000 items (20 pages
  of a status filter) took 3.1 s before these two and 1.5 s after; a 1,000-payment chaos run's
  check of pending deliveries had timed out at 30 s.
- Step Functions: every execution parsed its state machine's definition again with ANTLR
  (about 12 % of the process's CPU). Parsed programs are now kept per definition text: the
  interpreter keeps an execution's state in its Environment, not in the program's components.
- Routing a request to a service: moto's dispatcher scanned its module list twice per request
  (about 9 %). The answer depends only on the host name it is given, so it is remembered; so
  are the handler's method names (`inspect.getmembers` per request) and the action names'
  snake_case spelling.
- Step Functions tasks: the engine built a new boto3 client for every Lambda task, paying the
  client's set-up and a new connection each time; idle connections piled up in the server's
  event loop, which walks all of them on every turn (about a quarter of the process's CPU in a
  200-payment run). Clients are now shared per region and service, as boto3 allows.
- SQS ReceiveMessage: for every message it hands out, moto checks the retention period by
  asking `get_queue_attributes` for it, which builds every attribute of the queue three times,
  each build counting the queue's visible, delayed and in-flight messages: one receive of 10
  cost about 90 walks of the whole queue. With webhook retries waiting in the queue (a chaos
  run keeps thousands in flight), receives grew with the square of the queue. The retention
  period is now read from the queue itself, and GetQueueAttributes builds the attributes once.
- UpdateItem: each of the eight passes validating an update expression rebuilt its map of node
  classes to handlers (a dict of bound methods and a tuple of its keys) for every node of the
  tree, to test the node's class; about a tenth of the process's CPU in a chaos run. Each pass
  now builds its map once: the maps are literals of the pass's own methods (and tests a
  node class against them once, not once per node: moto's node classes are abstract base
  classes, whose isinstance checks are slow). moto also parsed
  each update expression twice per request (the handler and the backend each parse it) and ran
  its three structure checks on every request, the one counting clauses walking the tree once
  per node: about 40 % of an UpdateItem's time. Parsed expressions are now kept (the
  validator works on its own copy, made from the kept tree's pickle: deepcopy was another
  7 % of the process), and the structure checks run once per expression, attribute names and
  table keys.

Measured the same way in a 10,000-payment chaos run's moto process (share of the samples that
held the GIL):

- Item sizes (10 %): moto's `DynamoType.size` wraps every value of a map in a new DynamoType,
  whose constructor wraps that value's own members again, at every level of nesting; a
  BatchGetItem sizes each item it returns twice, a PutItem sizes the item once per attribute.
  The size is now summed over the values as they are.
- Queue attributes (4 %): moto builds every attribute of a queue, counting its delayed, in-flight
  and visible messages (one walk of the queue each), for every SendMessage, which reads one
  of them. Each attribute is now computed when it is read.
- Response bodies (2 %): moto looks for an XML `<RequestId>` in every answer, JSON ones
  included, with a look-behind regular expression over the whole body. A body without that
  tag is now left alone without the search.

Measured the same way in the next 10,000-payment run:

- Request parameters (11 %): moto's JSON parser walks a request along its shape, looking up
  every member of a structure in the value one after another. A DynamoDB AttributeValue has
  ten members and holds one, and a payment's transaction holds a few hundred of them. A
  structure given one key is now parsed by that key alone.
"""

from __future__ import annotations

import bisect
import contextlib
import copy
import decimal
import functools
import inspect
import json
import pickle
import sys
import threading
import weakref
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlsplit

from payflow.sandbox import moto_index, signing

_APPLIED = False
PROGRAM_CACHE_SIZE = 64
UPDATE_EXPRESSIONS_KEPT = 1024
_LOCK = threading.Lock()
PARTITIONS = moto_index.IndexPartitions()


def apply() -> None:
    """Install the speed-ups (idempotent)."""
    global _APPLIED
    if _APPLIED:
        return
    import moto.core.responses as responses
    from moto.core.parse import BaseJSONParser
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.dynamo_type import DynamoType
    from moto.dynamodb.models.table import Table
    from moto.dynamodb.parsing.ast_nodes import DepthFirstTraverser  # type: ignore[attr-defined]
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication
    from moto.sqs.models import Queue, SQSBackend
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser

    Table.query = _query_from_candidates(Table.query)  # type: ignore[method-assign]
    moto_index.install(DynamoDBBackend, PARTITIONS)
    Table.sorted_items = _sorted_by_values  # type: ignore[method-assign]
    AmazonStateLanguageParser.parse = _remembered_parse(AmazonStateLanguageParser.parse)  # type: ignore[method-assign]
    DomainDispatcherApplication.get_backend_for_host = _remembered_backend(  # type: ignore[method-assign]
        DomainDispatcherApplication.get_backend_for_host
    )
    responses.method_names_from_class = functools.cache(responses.method_names_from_class)
    responses.camelcase_to_underscores = functools.lru_cache(maxsize=4096)(
        responses.camelcase_to_underscores
    )
    DepthFirstTraverser.nodes_to_be_processed = _node_types_once  # type: ignore[method-assign]
    DepthFirstTraverser.process = _process_with_map_once  # type: ignore[method-assign]
    DepthFirstTraverser.traverse_node_recursively = _traverse_by_class  # type: ignore[method-assign]
    SQSBackend.is_message_valid_based_on_retention_period = _within_retention  # type: ignore[method-assign]
    SQSBackend.get_queue_attributes = _attributes_built_once(SQSBackend.get_queue_attributes)  # type: ignore[method-assign]
    DynamoType.size = _size_of_values  # type: ignore[method-assign]
    Queue.attributes = property(QueueAttributes)  # type: ignore[assignment,method-assign]
    responses.BaseResponse._enrich_response = staticmethod(  # type: ignore[method-assign]
        _searched_only_with_tag(responses.BaseResponse._enrich_response)
    )
    _share_step_functions_clients()
    _parse_update_expressions_once()
    BaseJSONParser._parse_structure = _one_key_looked_up(BaseJSONParser._parse_structure)  # type: ignore[method-assign]
    _APPLIED = True


def _one_key_looked_up(parse_structure: Callable[..., Any]) -> Callable[..., Any]:
    """moto's `_parse_structure`, for a value of one key: that key's member is looked up
    instead of every member in the value (same result: members the value lacks, or holds as
    null, are left out either way)."""

    @functools.wraps(parse_structure)
    def parse(self: Any, shape: Any, value: Any) -> Any:
        if type(value) is not dict or len(value) != 1 or shape.is_document_type:
            return parse_structure(self, shape, value)
        ((key, raw),) = value.items()
        parsed = self.MAP_TYPE()
        member = _members_by_json_name(shape).get(key)
        if member is not None and raw is not None:
            name, member_shape = member
            parsed[name] = self._parse_shape(member_shape, raw)
        return parsed

    return parse


def _members_by_json_name(shape: Any) -> dict[str, tuple[str, Any]]:
    """A structure shape's members by the name they have in JSON (kept on the shape, which the
    service model keeps)."""
    found: dict[str, tuple[str, Any]] | None = shape.__dict__.get("_payflow_by_json_name")
    if found is None:
        found = {
            member.serialization.get("name", name): (name, member)
            for name, member in shape.members.items()
        }
        shape._payflow_by_json_name = found
    return found


def query_candidates(table: Any, hash_key: Any, index_name: str | None) -> list[Any]:
    """The items a Query can match: the partition's bucket on the table's key; on an index,
    the items (unsorted) kept under `hash_key` in the index's partition (`moto_index`), or every
    item when the index's partition key is not one attribute (moto tests each itself)."""
    if index_name:
        attribute = moto_index.index_hash_attribute(table, index_name)
        if attribute is None or hash_key is None:
            return moto_index.all_items(table)
        return PARTITIONS.candidates(table, index_name, attribute, hash_key)
    bucket = table.items.get(hash_key) if hash_key is not None else None
    if bucket is None:
        return []
    return list(bucket.values()) if table.range_key_attr else [bucket]


def _sorted_by_values(
    self: Any, hash_key_attrs: list[str], range_key_attrs: list[str | None], items: list[Any]
) -> list[Any]:
    """moto's `Table.sorted_items`, ordering the same way: moto sorts by tuples of
    DynamoTypes, whose comparisons convert both sides again on every call (`cast_value`);
    converting each item's key once is enough.

    Within a Query on an index (`_Page`, set by the Query), the order moto sorts by is learnt
    for the index, and a page whose candidates were its own part of the kept partition (see
    `fast_query`) is handed back as it is."""
    attrs = tuple(self._generate_attr_to_sort_by(hash_key_attrs, range_key_attrs))
    page: _Page | None = self.__dict__.get("_payflow_page")
    if page is not None:
        if page.attrs == attrs:
            return items
        PARTITIONS.learn_order(self, page.index_name, attrs)
    items.sort(key=lambda item: moto_index.sort_key(item, attrs))
    return items


@dataclass(frozen=True)
class _Page:
    """What of a Query on an index decides which of its partition's sorted items it reads."""

    index_name: str
    value: Any
    start: dict[str, Any] | None
    forward: bool
    cut: int | None
    """Limit + 1 when only Limit ends the page: no legacy filter, and no sort key condition
    but `key_range`, once it is narrowed to."""
    key_range: _KeyRange | None = None
    attrs: tuple[str, ...] | None = None
    """What the candidates are sorted by, when they are the page's part of a kept partition."""

    def part(
        self, found: list[Any], keys: list[tuple[Any, ...]], attrs: tuple[str, ...]
    ) -> list[Any]:
        """The items moto would go through, ascending (moto reverses them for a backward
        Query): those after the start key and within the sort key condition (and the one
        item past it), then at most `cut` of them."""
        from moto.dynamodb.models.dynamo_type import DynamoType

        low, high = 0, len(found)
        if self.start is not None and all(a in self.start for a in attrs):
            start = tuple(DynamoType(self.start[a]).cast_value for a in attrs)
            if self.forward:
                low = bisect.bisect_right(keys, start)
            else:
                high = bisect.bisect_left(keys, start)
        if self.key_range is not None:
            bounds = self.key_range.bounds(keys, attrs)
            if bounds is None:
                return found[low:high]  # moto tests the condition itself, past any Limit
            # moto skips the items outside the condition; only the first one after the last
            # match (in the Query's direction) matters: reached with Limit matches, it ends
            # the page with a LastEvaluatedKey. It stays among the candidates.
            first, last = bounds
            if self.forward:
                low, high = max(low, first), min(high, last + 1)
            else:
                low, high = max(low, first - 1, 0), min(high, last)
        if self.cut is not None:
            if self.forward:
                high = min(high, low + self.cut)
            else:
                low = max(low, high - self.cut)
        return found[low:high]


_COMPARISONS = {
    "=": "=",
    "EQ": "=",
    "<": "<",
    "LT": "<",
    "<=": "<=",
    "LE": "<=",
    ">": ">",
    "GT": ">",
    ">=": ">=",
    "GE": ">=",
    "BETWEEN": "BETWEEN",
}
"""moto's names of the sort key conditions that select a contiguous run of a sorted partition
(begins_with does too, but is left to moto)."""


@dataclass(frozen=True)
class _KeyRange:
    """A Query's condition on its index's sort key (`attribute`), with its values as moto
    compares them (`cast_value`)."""

    attribute: str
    comparison: str
    values: tuple[Any, ...]

    @staticmethod
    def of(table: Any, index_name: str, call: dict[str, Any]) -> _KeyRange | None:
        comparison = _COMPARISONS.get(str(call.get("range_comparison") or "").upper())
        schema = moto_index.index_schema(table, index_name)
        ranges = [k for k in schema if k["KeyType"] == "RANGE"]
        values = tuple(v.cast_value for v in call.get("range_objs") or ())
        if comparison is None or len(ranges) != 1 or call.get("filter_kwargs"):
            return None
        if len(values) != (2 if comparison == "BETWEEN" else 1):
            return None
        conditions = call.get("range_key_conditions") or []
        attribute = conditions[-1][0] if conditions else ranges[0]["AttributeName"]
        return _KeyRange(attribute, comparison, values)

    def bounds(self, keys: list[tuple[Any, ...]], attrs: tuple[str, ...]) -> tuple[int, int] | None:
        """(first, last): `keys[first:last]` are the ones moto's condition holds for; None when
        bisection cannot say (values moto would compare across types, which it refuses)."""
        if self.attribute not in attrs:
            return None
        if not keys:
            return 0, 0
        # The attributes before the sort key in moto's order are the index's partition key:
        # one value in a partition, so the keys are in order of the sort key.
        at = attrs.index(self.attribute)
        kind = _comparable_kind(keys[0][at])
        if kind is None or any(_comparable_kind(v) != kind for v in self.values):
            return None

        def value(key: tuple[Any, ...]) -> Any:
            return key[at]

        def left(bound: Any) -> int:
            return bisect.bisect_left(keys, bound, key=value)

        def right(bound: Any) -> int:
            return bisect.bisect_right(keys, bound, key=value)

        first, *rest = self.values
        match self.comparison:
            case "=":
                return left(first), right(first)
            case "<":
                return 0, left(first)
            case "<=":
                return 0, right(first)
            case ">":
                return right(first), len(keys)
            case ">=":
                return left(first), len(keys)
        low = left(first)
        return low, max(low, right(rest[0]))  # BETWEEN: none when the bounds are reversed


def _comparable_kind(value: Any) -> str | None:
    """Which values a sort key value compares with as moto compares them: strings, bytes or
    numbers (a partition's keys are all of one kind, or moto could not have sorted them)."""
    if isinstance(value, str):
        return "str"
    if isinstance(value, bytes):
        return "bytes"
    if isinstance(value, int | float | decimal.Decimal) and not isinstance(value, bool):
        return "number"
    return None


def _query_from_candidates(query: Callable[..., Any]) -> Callable[..., Any]:
    signature = inspect.signature(query)

    def fast_query(self: Any, *args: Any, **kwargs: Any) -> Any:
        call = signature.bind(self, *args, **kwargs).arguments
        index_name, hash_key = call.get("index_name"), call["hash_key"]
        candidates: list[Any] | None = None
        if index_name and _single_key_conditions(call):
            limit = call.get("limit")
            key_range = _KeyRange.of(self, index_name, call)
            plain = not call.get("filter_kwargs") and (
                not call.get("range_comparison") or key_range is not None
            )
            page = _Page(
                index_name,
                hash_key,
                call.get("exclusive_start_key") or None,
                call.get("scan_index_forward", True) is not False,
                limit + 1 if plain and isinstance(limit, int) and limit > 0 else None,
                key_range,
            )
            attribute = moto_index.index_hash_attribute(self, index_name)
            ordered = (
                PARTITIONS.sorted_partition(self, index_name, attribute, hash_key)
                if attribute is not None
                else None
            )
            if ordered is not None:
                # moto tests, sorts and walks only what it would read of the partition.
                candidates = page.part(ordered.items, ordered.keys, ordered.attrs)
                page = replace(page, attrs=ordered.attrs)
            self._payflow_page = page
        if candidates is None:
            candidates = query_candidates(self, hash_key, index_name)
        # moto's query reads its candidates from self.all_items(); DynamoDB requests are
        # serialized (aws_server.OneAtATime), so shadowing it for this call is safe.
        self.all_items = lambda: candidates
        try:
            return query(self, *args, **kwargs)
        finally:
            del self.all_items
            self.__dict__.pop("_payflow_page", None)

    return fast_query


def _single_key_conditions(call: dict[str, Any]) -> bool:
    """Whether the Query names one partition key and at most one sort key condition: moto's
    candidates are then the partition's items with the index's keys, the same every time."""
    return (
        call.get("hash_key") is not None
        and len(call.get("hash_key_conditions") or []) <= 1
        and len(call.get("range_key_conditions") or []) <= 1
    )


def _processing_map_once(traverser: Any) -> dict[type, Callable[[Any], Any]]:
    cached: dict[type, Callable[[Any], Any]] | None = traverser.__dict__.get("_payflow_map")
    if cached is None:
        cached = traverser.__dict__["_payflow_map"] = traverser._processing_map()
    return cached


def _node_types_once(self: Any) -> tuple[type, ...]:
    """moto's `DepthFirstTraverser.nodes_to_be_processed`, built once per pass."""
    types: tuple[type, ...] | None = self.__dict__.get("_payflow_types")
    if types is None:
        types = self.__dict__["_payflow_types"] = tuple(_processing_map_once(self))
    return types


def _process_with_map_once(self: Any, node: Any) -> Any:
    """moto's `DepthFirstTraverser.process`: the first class of the map `node` is handled."""
    for node_class, processor in _processing_map_once(self).items():
        if isinstance(node, node_class):
            return processor(node)
    return None


_HANDLED_AS: dict[tuple[type, type], type | None] = {}
"""(pass class, node class) -> the class of the pass's map that handles such nodes, if any."""
_IS_NODE: dict[type, bool] = {}


def _traverse_by_class(self: Any, node: Any, child_id: int = -1) -> Any:
    """moto's `DepthFirstTraverser.traverse_node_recursively`, each of its class tests made once
    per class (moto's `Node` is an abstract base class: every isinstance went through ABCMeta,
    twice per node and pass, and `process` tested the map's classes again)."""
    kind = type(node)
    is_node = _IS_NODE.get(kind)
    if is_node is None:
        from moto.dynamodb.parsing.ast_nodes import Node  # type: ignore[attr-defined]

        is_node = _IS_NODE[kind] = isinstance(node, Node)
    if not is_node:
        return node
    parent_node = node.parent
    if node.children is not None:
        for i, child_node in enumerate(node.children):
            self.pre_processing_of_child(node, i)
            self.traverse_node_recursively(child_node, i)
    handled_as = _handled_as(self, kind)
    if handled_as is not None:
        node = _processing_map_once(self)[handled_as](node)
        node.parent = parent_node
        if parent_node:
            parent_node.children[child_id] = node
    return node


def _handled_as(traverser: Any, kind: type) -> type | None:
    key = (type(traverser), kind)
    if key not in _HANDLED_AS:
        _HANDLED_AS[key] = next(
            (handled for handled in _processing_map_once(traverser) if issubclass(kind, handled)),
            None,
        )
    return _HANDLED_AS[key]


def _within_retention(self: Any, queue_name: str, message: Any) -> bool:
    """moto's retention check, reading the period from the queue instead of from every
    attribute of the queue (`Queue._set_attributes` keeps it as an int)."""
    from moto.sqs import models

    period = self.get_queue(queue_name).message_retention_period
    return bool(period + message.sent_timestamp / 1000 > models.unix_time())


def _attributes_built_once(get_queue_attributes: Callable[..., Any]) -> Callable[..., Any]:
    """moto's GetQueueAttributes, with the queue's attributes built once: moto builds them
    twice or three times for each name asked for, and each build walks every message."""

    def built_once(self: Any, queue_name: str, attribute_names: list[str]) -> dict[str, Any]:
        if "All" in attribute_names or not attribute_names:
            return get_queue_attributes(self, queue_name, attribute_names)  # type: ignore[no-any-return]
        queue = self.get_queue(queue_name)
        valid = ["All", *queue.BASE_ATTRIBUTES, *queue.FIFO_ATTRIBUTES, *queue.KMS_ATTRIBUTES]
        if any(name not in valid for name in attribute_names):
            # moto's own answer: the InvalidAttributeName error.
            return get_queue_attributes(self, queue_name, attribute_names)  # type: ignore[no-any-return]
        built = queue.attributes
        values = {name: built.get(name) for name in attribute_names}
        return {name: value for name, value in values.items() if value is not None}

    return built_once


class QueueAttributes(Mapping[str, Any]):
    """moto's `Queue.attributes` (the same names, in its order, and the same values), each
    value computed when it is read."""

    def __init__(self, queue: Any) -> None:
        self._queue = queue
        names = list(queue.BASE_ATTRIBUTES)
        if queue.fifo_queue:
            names += queue.FIFO_ATTRIBUTES
        if queue.kms_master_key_id:
            names += queue.KMS_ATTRIBUTES
        self._names = dict.fromkeys(names)

    def __getitem__(self, name: str) -> Any:
        from moto.core.utils import camelcase_to_underscores

        if name not in self._names:
            raise KeyError(name)
        value = getattr(self._queue, camelcase_to_underscores(name))
        if name == "RedrivePolicy" and value:
            value = json.dumps(value)
        if isinstance(value, bool):
            value = str(value).lower()
        return value

    def __contains__(self, name: object) -> bool:
        return name in self._names

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)


def _size_of_values(self: Any) -> int:
    """moto's `DynamoType.size`: the same sum, over the values as they are (moto wraps each
    value of a map in a new DynamoType, which wraps its members again, at every level). It runs
    for every nested value, so it imports nothing: `self` is a DynamoType (moto has no
    subclass of it), and `_bytesize` is moto's `bytesize`."""
    kind, value = self.type, self.value
    if kind == "N":
        return len(str(value))
    if kind == "NS":
        return sum(len(str(member)) for member in value)
    if kind in ("SS", "BS"):
        return sum(1 if isinstance(member, bool) else _bytesize(member) for member in value)
    dynamo_type = type(self)
    if kind == "L":
        return sum(_size_of(member, dynamo_type) for member in value)
    if kind == "M":
        return sum(_bytesize(key) + _size_of(member, dynamo_type) for key, member in value.items())
    if isinstance(value, bool):
        return 1
    return _bytesize(value)


def _size_of(member: Any, dynamo_type: type) -> int:
    """A member's size; one that is not a DynamoType yet is wrapped first, as moto does."""
    typed = member if type(member) is dynamo_type else dynamo_type(member)
    return _size_of_values(typed)


def _bytesize(value: str | bytes) -> int:
    return len(value if isinstance(value, bytes) else value.encode("utf-8"))


def _searched_only_with_tag(enrich: Callable[..., Any]) -> Callable[..., Any]:
    """moto's `_enrich_response`, skipping its search for `<RequestId>` in a body without the
    tag (the search's look-behind needs it, so it could not match)."""

    def enriched(headers: dict[str, str], body: Any) -> tuple[dict[str, str], Any]:
        if isinstance(body, str) and "<RequestId>" not in body:
            return enrich(headers, "")[0], body  # type: ignore[no-any-return]
        return enrich(headers, body)  # type: ignore[no-any-return]

    return enriched


def _remembered_parse(parse: Callable[..., Any]) -> Callable[..., Any]:
    programs: dict[str, Any] = {}
    lock = threading.Lock()

    def remembered(definition: str) -> Any:
        with lock:
            parsed = programs.get(definition)
        if parsed is None:
            parsed = parse(definition)
            with lock:
                if len(programs) >= PROGRAM_CACHE_SIZE:
                    programs.pop(next(iter(programs)))
                programs[definition] = parsed
        return parsed

    return staticmethod(remembered)  # type: ignore[return-value]


def _remembered_backend(lookup: Callable[[Any, str | None], Any]) -> Callable[..., Any]:
    found: dict[str | None, Any] = {}

    def remembered(self: Any, host: str | None) -> Any:
        if host not in found:
            found[host] = lookup(self, host)
        return found[host]

    return remembered


def _parse_update_expressions_once(patch: Callable[[Any, str, Any], None] = setattr) -> None:
    """Each update expression parsed once, and its structure checked once per set of
    attribute names and table keys (see the module's docstring). `patch` sets each attribute
    (a test passes its own, to undo them)."""
    from moto.dynamodb.parsing import validators
    from moto.dynamodb.parsing.expressions import UpdateExpressionParser  # type: ignore[attr-defined]

    parse = UpdateExpressionParser.make.__func__

    def parse_and_keep(cls: Any, expression: str) -> Any:
        tree = parse(cls, expression)
        kept = _KEPT[tree] = _KeptTree()
        with contextlib.suppress(pickle.PicklingError, TypeError, AttributeError):
            kept.pickled = pickle.dumps(tree, protocol=pickle.HIGHEST_PROTOCOL)
        return tree

    parsed: Any = functools.lru_cache(maxsize=UPDATE_EXPRESSIONS_KEPT)(parse_and_keep)
    patch(UpdateExpressionParser, "make", classmethod(parsed))
    patch(validators, "deepcopy", _copy_parsed)
    update_validator = validators.UpdateExpressionValidator
    patch(update_validator, "__init__", _remembering_source(update_validator.__init__))
    patch(update_validator, "validate", _structure_checked_once)


STRUCTURE_CHECKS = 3
"""moto's first three passes over an update expression (ActionCountValidator,
OverlappingPathsValidator, UpdateHashRangeKeyValidator) read only the expression, its
attribute names and the table's key attributes, and change nothing."""


@dataclass
class _KeptTree:
    """What is known of a parsed update expression the parse cache shares."""

    pickled: bytes | None = None
    """its pickle, to copy it from (None: it does not pickle)"""
    passed: set[tuple[Any, ...]] = field(default_factory=set)
    """the (attribute names, table keys) its structure checks passed with"""


_KEPT: weakref.WeakKeyDictionary[Any, _KeptTree] = weakref.WeakKeyDictionary()


def _copy_parsed(value: Any, memo: Any = None) -> Any:
    """`copy.deepcopy` for moto's validators, which copy the parsed expression they work on:
    a kept one is copied from its pickle (a fifth of deepcopy's time), anything else as before."""
    try:
        kept = _KEPT.get(value)
    except TypeError:  # unhashable: not a parsed expression
        kept = None
    if kept is not None and kept.pickled is not None:
        return pickle.loads(kept.pickled)
    return copy.deepcopy(value, memo)


def _remembering_source(init: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(init)
    def remembering(self: Any, expression: Any, *args: Any, **kwargs: Any) -> None:
        init(self, expression, *args, **kwargs)
        self._payflow_source = expression

    return remembering


def _structure_checked_once(self: Any) -> Any:
    """moto's `Validator.validate` for an update expression, skipping the structure checks it
    passed before with the same attribute names and table keys (they raise or change nothing)."""
    kept = _KEPT.get(self._payflow_source)  # set by `_remembering_source`
    names = self.expression_attribute_names or {}
    given = (tuple(sorted(names.items())), tuple(self.table.table_key_attrs))
    with _LOCK:
        skip = kept is not None and given in kept.passed
    node = self.node_to_validate
    for at, processor in enumerate(self.processors):
        if at < STRUCTURE_CHECKS and skip:
            continue
        node = processor.traverse(node)
        if at == STRUCTURE_CHECKS - 1 and kept is not None:
            with _LOCK:
                kept.passed.add(given)
    return node


def _share_step_functions_clients() -> None:
    """One boto3 client per (region, service, endpoint) for the Step Functions engine's tasks.

    The engine's modules import `boto_client_for` by name, so each module's reference is
    replaced. The shared client keeps the original's settings (no retries, no validation) with
    a connection pool as large as the server's worker pool, since executions call it at once.
    """
    import boto3
    from botocore.config import Config
    from moto.core.models import botocore_stubber
    from moto.settings import moto_server_port
    from moto.stepfunctions.parser.asl.component.common.timeouts.timeout import TimeoutSeconds
    from moto.stepfunctions.parser.asl.component.state.exec.state_task import (
        lambda_eval_utils,  # noqa: F401  (imported so that its reference is replaced below)
    )
    from moto.stepfunctions.parser.asl.utils import boto_client

    original = boto_client.boto_client_for
    clients: dict[tuple[str, str, str | None], Any] = {}
    lock = threading.Lock()

    def shared_client(region: str, service: str, state_credentials: Any = None) -> Any:
        endpoint = None if botocore_stubber.enabled else f"http://localhost:{moto_server_port()}"
        if endpoint is not None:
            signing.install(urlsplit(endpoint).netloc)  # this server itself checks none
        key = (region, service, endpoint)
        with lock:
            client = clients.get(key)
            if client is None:
                client = clients[key] = boto3.client(
                    service,  # type: ignore[call-overload]
                    region_name=region,
                    aws_access_key_id="ak",
                    aws_secret_access_key="sk",
                    endpoint_url=endpoint,
                    config=Config(
                        parameter_validation=False,
                        retries={"max_attempts": 0, "total_max_attempts": 1},
                        connect_timeout=TimeoutSeconds.DEFAULT_TIMEOUT_SECONDS,
                        read_timeout=TimeoutSeconds.DEFAULT_TIMEOUT_SECONDS,
                        max_pool_connections=64,
                    ),
                )
        return client

    for module in list(sys.modules.values()):
        if getattr(module, "boto_client_for", None) is original:
            module.boto_client_for = shared_client  # type: ignore[attr-defined]
