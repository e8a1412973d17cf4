"""Corrections to moto behaviour that the sandbox depends on, applied once per process.

TransactWriteItems: moto applies the actions one by one and, if one fails, rolls back by
replacing every table involved with a deep copy taken before the transaction. That costs a copy
of whole tables on every transaction (the sandbox's payments got slower as its tables grew: most
of a payment's CPU went to `deepcopy`), and the restored copy carries a new stream shard while
every shard iterator handed out keeps pointing at the old one, so after one cancelled transaction
all stream readers went silent.

The replacement does what DynamoDB specifies: first check every action's condition (and that no
item is touched twice) without writing; if any fails, cancel with the reasons and write nothing;
otherwise apply them all. The embedded AWS serializes DynamoDB requests (aws_server.OneAtATime), so
the conditions still hold while the writes are applied. Should an action fail while being applied
anyway (a malformed update expression), the items already written are restored.

GetRecords: stream records are already DynamoDB JSON, but moto walks each through its generic
response serializer, about 3.5 ms of CPU per record carrying a PaymentIntent image (most of a
payment's CPU once the copies were gone). The replacement answers with plain `json.dumps`,
each record written out once for all the pollers that read it.

DynamoDB responses: since moto 5.1 every response goes through moto's generic ResponseSerializer,
which walks the botocore output shape value by value (an attribute picker trying aliases for each
member, a wrapper dict per list item): 3-5 ms of CPU to write one item of 20 attributes, about
60 ms for a Query returning 20 of them. For the operations in DYNAMODB_FAST_OPERATIONS,
`DynamoDBResponses` compiles each output shape once into plain functions that do the same to the
same result, then `json.dumps` it (0.03 and 0.6-0.9 ms for those two): the bodies are the generic
serializer's byte for byte (tests/sandbox/test_moto_fixes.py writes the results of real calls both
ways). Not moto 5.0's `dynamo_json_dump(result)`: the serializer also leaves out None and keys the
shape lacks (DeleteItem's "ConsumedCapacityUnits"). Errors, other operations and any value of a
type the shape does not expect still go to moto's serializer. Measured with boto3 and moto sharing
one process (CPU of both per call, medians of 6 runs of 300 calls): GetItem 6.8 -> 3.7 ms,
conditional UpdateItem returning ALL_NEW 10.2 -> 6.9 ms, Query returning 20 items 75 -> 17 ms;
PutItem, whose answer is empty, unchanged at 4.7 ms.

StartExecution: moto checks for an execution of the same name, then copies the state machine,
then adds the new execution, then marks it running, all without a lock. Two starts of one name
at once (a duplicated stream batch, a retried confirm) could both pass the check and run two
executions of one name, which Step Functions never does; or the second found the first not
yet marked and failed with an AttributeError (a 500, seen once in a 10,000-payment chaos run).
Starts now run one at a time: the second finds the first running and returns it, as Step
Functions answers a start repeated with the same name and input.
"""

from __future__ import annotations

import base64
import collections
import copy
import datetime
import decimal
import functools
import json
import threading
from collections.abc import Callable, Iterable
from typing import Any

_APPLIED = False


def apply() -> None:
    """Install the corrections (idempotent)."""
    global _APPLIED
    if _APPLIED:
        return
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.responses import DynamoHandler
    from moto.dynamodbstreams.responses import DynamoDBStreamsHandler
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend

    StepFunctionsParserBackend.start_execution = one_start_at_a_time(  # type: ignore[method-assign]
        StepFunctionsParserBackend.start_execution
    )
    DynamoDBBackend.transact_write_items = _transact_write_items  # type: ignore[method-assign]
    DynamoDBStreamsHandler.get_records = _get_records  # type: ignore[method-assign,assignment]
    responses = DynamoDBResponses()
    generic = DynamoHandler.serialized

    def serialized(handler: Any, action_result: Any) -> Any:
        return responses.response(handler, action_result) or generic(handler, action_result)

    DynamoHandler.serialized = serialized  # type: ignore[method-assign,assignment]
    _APPLIED = True


def one_start_at_a_time(start_execution: Callable[..., Any]) -> Callable[..., Any]:
    """moto's `start_execution` with its check for a same-named execution, the copy and the
    start made under one lock (see the module's docstring)."""
    lock = threading.Lock()

    @functools.wraps(start_execution)
    def started(self: Any, *args: Any, **kwargs: Any) -> Any:
        with lock:
            return start_execution(self, *args, **kwargs)

    return started


def _wire(value: Any) -> Any:
    """How the DynamoDB JSON protocol writes what json cannot: timestamps as epoch seconds,
    binary attributes as base64."""
    if isinstance(value, datetime.datetime):
        return value.timestamp()
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode("ascii")
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def _get_records(self: Any) -> str:
    limit = self._get_param("Limit") or 1000
    result = self.backend.get_records(self._get_param("ShardIterator"), limit)
    return records_json(result)


RECORD_TEXTS_KEPT = 4096
"""Stream records whose JSON is kept: every stream poller (one per function reading the
stream) reads the same recent records, so each is written out once, not once per poller."""
_record_texts: collections.OrderedDict[int, tuple[Any, str]] = collections.OrderedDict()
_record_texts_lock = threading.Lock()


def records_json(result: dict[str, Any]) -> str:
    """`json.dumps(result, default=_wire)` of a GetRecords result, each record's text kept
    (moto never changes a stream record once written)."""
    parts = []
    for key, value in result.items():
        if key == "Records":
            text = "[" + ", ".join(_record_text(record) for record in value) + "]"
        else:
            text = json.dumps(value, default=_wire)
        parts.append(f"{json.dumps(key)}: {text}")
    return "{" + ", ".join(parts) + "}"


def _record_text(record: Any) -> str:
    with _record_texts_lock:
        kept = _record_texts.get(id(record))
        if kept is not None and kept[0] is record:
            _record_texts.move_to_end(id(record))
            return kept[1]
    text = json.dumps(record, default=_wire)
    with _record_texts_lock:
        # The record itself is held with its text, so its id is not reused meanwhile.
        _record_texts[id(record)] = (record, text)
        if len(_record_texts) > RECORD_TEXTS_KEPT:
            _record_texts.popitem(last=False)
    return text


def _key(backend: Any, op_type: str, op: dict[str, Any]) -> dict[str, Any]:
    if op_type != "Put":
        return dict(op["Key"])
    table = backend.get_table(op["TableName"])
    attrs = op["Item"]
    key = {table.hash_key_attr: attrs[table.hash_key_attr]}
    if table.range_key_attr is not None:
        key[table.range_key_attr] = attrs[table.range_key_attr]
    return key


def _transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
    from moto.dynamodb.comparisons import get_filter_expression
    from moto.dynamodb.exceptions import (
        ConditionalCheckFailed,
        MultipleTransactionsException,
        TooManyTransactionsException,
        TransactionCanceledException,
        TransactWriteSingleOpException,
    )

    if len(transact_items) > 100:
        raise TooManyTransactionsException()
    actions: list[tuple[str, dict[str, Any], dict[str, Any]]] = []
    seen: set[tuple[str, str]] = set()
    errors: list[tuple[Any, Any, Any]] = []
    # Phase 1: validate and check every condition, writing nothing.
    for item in transact_items:
        if len(item) > 1:
            raise TransactWriteSingleOpException
        op_type, op = next(iter(item.items()))
        if op_type not in {"ConditionCheck", "Put", "Delete", "Update"}:
            raise ValueError("Unsupported transaction operation")
        key = _key(self, op_type, op)
        target = (str(op["TableName"]), str(dict(sorted(key.items()))))
        if target in seen:
            raise MultipleTransactionsException()
        seen.add(target)
        actions.append((op_type, op, key))
        current = self.get_item(op["TableName"], key)
        condition = op.get("ConditionExpression")
        if condition is not None:
            check = get_filter_expression(
                condition,
                op.get("ExpressionAttributeNames"),
                op.get("ExpressionAttributeValues"),
            )
            if not check.expr(current):
                old = None
                if op.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD" and current:
                    old = current.to_json()["Attributes"]
                failure = ConditionalCheckFailed(item=old)
                errors.append(("ConditionalCheckFailed", str(failure.message), old))
                continue
        errors.append((None, None, None))
    if any(code is not None for code, _, _ in errors):
        raise TransactionCanceledException(errors)

    # Phase 2: apply. Keep what each touched item was, to restore it if an action breaks.
    before: list[tuple[str, dict[str, Any], Any]] = []
    try:
        for op_type, op, key in actions:
            if op_type == "ConditionCheck":
                continue
            table_name = op["TableName"]
            current = self.get_item(table_name, key)
            before.append((table_name, key, copy.deepcopy(current) if current else None))
            names = op.get("ExpressionAttributeNames")
            values = op.get("ExpressionAttributeValues")
            if op_type == "Put":
                self.put_item(table_name, op["Item"])
            elif op_type == "Delete":
                self.delete_item(table_name, key)
            else:
                self.update_item(
                    table_name,
                    key,
                    update_expression=op["UpdateExpression"],
                    expression_attribute_names=names,
                    expression_attribute_values=values,
                )
    except Exception:
        for table_name, key, old in reversed(before):
            if old is None:
                self.delete_item(table_name, key)
            else:
                self.put_item(table_name, old.to_json()["Attributes"])
        raise


# The DynamoDB operations whose responses `DynamoDBResponses` writes: the data plane, called on
# every payment. The control plane (CreateTable, DescribeTable...) keeps moto's serializer.
DYNAMODB_FAST_OPERATIONS = (
    "GetItem",
    "PutItem",
    "UpdateItem",
    "DeleteItem",
    "Query",
    "Scan",
    "BatchGetItem",
    "BatchWriteItem",
    "TransactGetItems",
    "TransactWriteItems",
)

Encoder = Callable[[Any], Any]


class _Fallback(Exception):
    """A value the fast path does not write: moto's generic serializer answers instead."""


class DynamoDBResponses:
    """moto's JSON responses to `operations`, written straight from the handler's result.

    Each operation's output shape is compiled once into plain functions that do what moto's
    JSONSerializer does with that shape: a structure's members are looked up under the keys
    moto's attribute picker would try, members that are None or not in the shape are left out,
    blobs are base64, integers `int()`, doubles `float()`, timestamps go through moto's own
    TimestampSerializer. A value of any other type than the shape expects (a datetime or a
    Decimal where a string belongs, a tuple for a list, a model object for a structure...) ends
    the fast path for that response, and `response` returns None.
    """

    def __init__(self, operations: Iterable[str] = DYNAMODB_FAST_OPERATIONS) -> None:
        from moto import settings
        from moto.core.responses import ActionResult
        from moto.core.serialize import JSONSerializer, get_serializer_class
        from moto.core.utils import get_service_model
        from moto.dynamodb.responses import DynamoResult

        self._settings = settings
        self._service = get_service_model("dynamodb")
        self._serializer_class = JSONSerializer
        self._get_serializer_class = get_serializer_class
        self._plain_results = (ActionResult, DynamoResult)
        compiled: dict[str, Encoder] = {}
        self._operations: dict[str, tuple[int, str, Encoder]] = {}
        for name in operations:
            model = self._service.operation_model(name)
            if model.output_shape is None or model.has_event_stream_output:
                raise TypeError(f"no fast DynamoDB encoding for {name}: no plain JSON output")
            self._operations[name] = (
                model.http.get("responseCode", JSONSerializer.DEFAULT_RESPONSE_CODE),
                JSONSerializer(model)._get_protocol_specific_content_type(),
                _compile(model.output_shape, compiled),
            )

    def response(self, handler: Any, action_result: Any) -> tuple[int, dict[str, Any], str] | None:
        """What moto's `BaseResponse.serialized(handler, action_result)` answers, or None where
        that generic serializer must answer: errors, other operations, paginated or empty
        results, a protocol other than JSON, values the fast path does not write."""
        if (
            type(action_result) not in self._plain_results
            or isinstance(action_result.result, Exception)
            or handler.RESPONSE_KEY_PATH_TO_TRANSFORMER
        ):
            return None
        operation = self._operations.get(handler._get_action())
        if operation is None:
            return None
        protocol = handler.determine_response_protocol(self._service)
        serializer_class = self._get_serializer_class(self._service.service_name, protocol)
        if serializer_class is not self._serializer_class:
            return None
        status, content_type, encode = operation
        try:
            body = json.dumps(
                encode(action_result.result),
                indent=4 if self._settings.PRETTIFY_RESPONSES else None,
            )
        except Exception:
            # _Fallback, or whatever else the value raised: the generic serializer either
            # writes it or fails on it the way moto always did.
            return None
        headers = {"Content-Type": content_type}
        headers.update(handler.response_headers)
        return status, headers, body


def _compile(shape: Any, compiled: dict[str, Encoder]) -> Encoder:
    """An encoder for values of `shape`; `compiled` holds the structures already compiled (the
    AttributeValue structure contains itself through M and L)."""
    kind = shape.type_name
    if kind == "structure":
        return compiled.get(shape.name) or _structure(shape, compiled)
    if kind in ("list", "map"):
        inner = shape.member if kind == "list" else shape.value
        # moto writes list items and map values under the inner shape's serialized name: with
        # one that is not the shape's own name, its output is not a plain list or map.
        if inner.serialization.get("name", inner.name) != inner.name:
            raise TypeError(f"no fast DynamoDB encoding for {shape.name}: renamed {inner.name}")
        encode = _compile(inner, compiled)
        return _list(encode) if kind == "list" else _map(encode)
    if kind == "timestamp":
        return _timestamp(shape)
    if kind not in _SCALARS:
        raise TypeError(f"no fast DynamoDB encoding for {shape.name}: {kind}")
    return _SCALARS[kind]


def _structure(shape: Any, compiled: dict[str, Encoder]) -> Encoder:
    from moto.core.serialize import AttributePickerContext, XFormedAttributePicker

    if shape.is_document_type:
        raise TypeError(f"no fast DynamoDB encoding for {shape.name}: document")
    members: list[tuple[str, str, Encoder]] = []
    by_name: dict[str, tuple[str, Encoder]] = {}
    # Keys under which moto's picker would find a member other than its own name
    # ("ItemList" for Items, "l" for L...). A result holding one is left to moto.
    aliases: set[str] = set()

    def encode_structure(value: Any) -> dict[str, Any]:
        if type(value) is not dict or not aliases.isdisjoint(value):
            raise _Fallback
        if len(value) == 1:  # an attribute value: {"S": ...}
            ((name, member_value),) = value.items()
            entry = by_name.get(name)
            if entry is None or member_value is None:
                return {}
            return {entry[0]: entry[1](member_value)}
        encoded = {}
        for name, key, encode in members:
            member_value = value.get(name)
            if member_value is not None:
                encoded[key] = encode(member_value)
        return encoded

    compiled[shape.name] = encode_structure
    picker = XFormedAttributePicker(response_transformers={})
    for name, member in shape.members.items():
        member.parent = shape  # as moto's serializer sets it before picking the member
        context = AttributePickerContext(obj={}, key=name, shape=member)
        candidates = list(picker.get_possible_keys(context))
        if any("." in candidate for candidate in candidates):
            raise TypeError(f"no fast DynamoDB encoding for {shape.name}: dotted {name}")
        aliases.update(candidate for candidate in candidates if candidate != name)
        entry = (member.serialization.get("name", name), _compile(member, compiled))
        members.append((name, *entry))
        by_name[name] = entry
    return encode_structure


def _list(encode: Encoder) -> Encoder:
    def encode_list(value: Any) -> list[Any]:
        if type(value) is not list:
            raise _Fallback
        return [encode(item) for item in value]

    return encode_list


def _map(encode: Encoder) -> Encoder:
    def encode_map(value: Any) -> dict[Any, Any]:
        # moto writes a structure under an empty key into the map itself ({"": {"S": "x"}}
        # comes out as {"S": "x"}): leave such maps to it.
        if type(value) is not dict or not all(value):
            raise _Fallback
        return {key: encode(item) for key, item in value.items()}

    return encode_map


_NUMBERS = frozenset({int, float, decimal.Decimal})


def _string(value: Any) -> str:
    if type(value) is str:
        return value
    raise _Fallback


def _boolean(value: Any) -> bool:
    if value is True or value is False:
        return value
    raise _Fallback


def _integer(value: Any) -> int:
    if type(value) in _NUMBERS:
        return int(value)
    raise _Fallback


def _double(value: Any) -> float:
    if type(value) in _NUMBERS:
        return float(value)
    raise _Fallback


def _blob(value: Any) -> str:
    if type(value) is str:
        value = value.encode("utf-8")
    elif type(value) is not bytes:
        raise _Fallback
    return base64.b64encode(value).decode("ascii")


_SCALARS: dict[str, Encoder] = {
    "string": _string,
    "boolean": _boolean,
    "integer": _integer,
    "long": _integer,
    "float": _double,
    "double": _double,
    "blob": _blob,
}


def _timestamp(shape: Any) -> Encoder:
    from moto.core.serialize import JSONSerializer, TimestampSerializer

    timestamps = TimestampSerializer(JSONSerializer.DEFAULT_TIMESTAMP_FORMAT)

    def encode_timestamp(value: Any) -> Any:
        if not isinstance(value, datetime.datetime):
            raise _Fallback
        encoded: dict[str, Any] = {}
        timestamps.serialize(encoded, value, shape, "value")
        return encoded["value"]

    return encode_timestamp
