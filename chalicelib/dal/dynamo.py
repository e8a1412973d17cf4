"""DynamoDB plumbing shared by the stores: item (de)serialization and atomic write batches."""

from __future__ import annotations

import base64
import json
import zlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any, Final

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from chalicelib.errors import UnstorableValue

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()

MAX_ITEM_BYTES = 400 * 1024
"""DynamoDB's item size limit; an item near it is refused here, not by the service."""
MAX_NUMBER = 10**38
"""DynamoDB numbers hold 38 significant digits; larger integers cannot be stored exactly."""


def _decimals(value: Any) -> Any:
    # Rates and thresholds are fractions; DynamoDB numbers want Decimal, never binary floats.
    if isinstance(value, float):
        return Decimal(str(value))
    if isinstance(value, dict):
        return {k: _decimals(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_decimals(v) for v in value]
    return value


def to_attrs(values: dict[str, Any]) -> dict[str, Any]:
    """Python values -> DynamoDB attribute values (None at the top level is left out).

    Every write goes through here, so here is the guard that nothing unreadable is ever
    written: an empty map key, a string that is not valid Unicode, a number DynamoDB cannot
    hold or an item over its size limit raises UnstorableValue (a 400) before any call. moto
    stores an empty map key and then cannot serialize the item back: one request would break
    every later read of it.
    """
    present = {k: v for k, v in values.items() if v is not None}
    check_storable(present)
    return {k: _serializer.serialize(_decimals(v)) for k, v in present.items()}


def check_storable(values: dict[str, Any]) -> int:
    """The approximate stored size of `values` in bytes; UnstorableValue if DynamoDB could not
    store it or give it back intact. Iterative: no value is deep enough to exhaust the stack."""
    size = 0
    stack: list[tuple[tuple[str, ...], Any]] = [((name,), value) for name, value in values.items()]
    while stack:
        path, value = stack.pop()
        size += _text_bytes(path[-1], path) + 1
        if isinstance(value, dict):
            for key, item in value.items():
                if not isinstance(key, str) or key == "":
                    raise _unstorable(path, "keys must be non-empty strings")
                stack.append(((*path, key), item))
        elif isinstance(value, list | tuple | set | frozenset):
            stack.extend(((*path, str(index)), item) for index, item in enumerate(value))
        elif isinstance(value, str):
            size += _text_bytes(value, path)
        elif isinstance(value, bytes):
            size += len(value)
        elif isinstance(value, int | float | Decimal) and not isinstance(value, bool):
            size += _number_bytes(value, path)
        else:
            size += 1
        if size > MAX_ITEM_BYTES:
            raise _unstorable(
                path,
                f"the object would be larger than the {MAX_ITEM_BYTES // 1024} KB PayFlow can "
                "store; send fewer or shorter values",
            )
    return size


_WRAPPERS = frozenset({"data"})
"""Attributes that hold a whole API object: a parameter's name starts below them."""


def _unstorable(path: tuple[str, ...], why: str) -> UnstorableValue:
    parts = [part for part in path if not part.startswith(":")]
    if len(parts) > 1 and parts[0] in _WRAPPERS:
        parts = parts[1:]
    param = parts[0] if parts else None
    return UnstorableValue(f"Invalid {param or 'value'}: {why}.", param=param)


def _text_bytes(text: str, path: tuple[str, ...]) -> int:
    try:
        return len(text.encode("utf-8"))
    except UnicodeEncodeError:
        raise _unstorable(path, "the text is not valid Unicode") from None


def _number_bytes(value: int | float | Decimal, path: tuple[str, ...]) -> int:
    if isinstance(value, int):
        if not -MAX_NUMBER < value < MAX_NUMBER:
            raise _unstorable(path, "the number has more than 38 digits")
        return 21
    number = Decimal(str(value)) if isinstance(value, float) else value
    if not number.is_finite():
        raise _unstorable(path, "not a finite number")
    if number and not (_SMALLEST <= abs(number) < _LARGEST):
        raise _unstorable(path, "the number is out of the range DynamoDB stores")
    # Not normalize(): it rounds to the default context's 28 digits first.
    if len("".join(map(str, number.as_tuple().digits)).strip("0")) > 38:
        raise _unstorable(path, "the number has more than 38 significant digits")
    return 21


_SMALLEST = Decimal("1e-130")
_LARGEST = Decimal("1e126")


def _plain(value: Any) -> Any:
    # Money is integer minor units and comes back as int; only rates have a fraction.
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | set):
        return [_plain(v) for v in value]
    return value


PACK_DICTIONARY: Final = Path(__file__).with_name("pack_dictionary_1.jsonl")
"""Stripe-shaped objects of every kind PayFlow packs (made once in a throwaway sandbox), one
JSON per line, the commonest last: zlib's preset dictionary. A 1.8 KB charge packs to 0.1 KB
with it, 0.77 KB without, so an event with its snapshot fits one write unit. Blobs name their
dictionary by its Adler-32 in zlib's header: this file never changes; a better one is added
beside it as pack_dictionary_2.jsonl and becomes the one `pack` uses."""
PACK_DICTIONARY_ID: Final = 2175762579


@cache
def _dictionaries() -> dict[int, bytes]:
    return {PACK_DICTIONARY_ID: PACK_DICTIONARY.read_bytes()}


def pack(value: Any) -> bytes:
    """`value` as compact JSON, zlib-compressed with PACK_DICTIONARY: for a large attribute
    that is only ever read whole (DynamoDB bills a write per KB of the item)."""
    compressor = zlib.compressobj(6, zdict=_dictionaries()[PACK_DICTIONARY_ID])
    return (
        compressor.compress(json.dumps(value, separators=(",", ":")).encode()) + compressor.flush()
    )


def unpack(blob: Any) -> Any:
    """What `pack` stored (given bytes, or the Binary that from_attrs yields), with the
    dictionary its header names, or none (blobs packed before there was one)."""
    data = bytes(blob)
    if len(data) > 6 and data[1] & _FDICT:
        dictionary = _dictionaries()[int.from_bytes(data[2:6], "big")]
        decompressor = zlib.decompressobj(zdict=dictionary)
        return json.loads(decompressor.decompress(data) + decompressor.flush())
    return json.loads(zlib.decompress(data))


_FDICT: Final = 0x20
"""The FDICT bit of zlib's second header byte (RFC 1950): a dictionary's Adler-32 follows."""


def from_attrs(item: Mapping[str, Any] | Any) -> dict[str, Any]:
    """DynamoDB attribute values -> plain Python values with ints for numbers."""
    return {k: _plain(_deserializer.deserialize(v)) for k, v in item.items()}


def paged(read: Callable[..., dict[str, Any]], params: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every item a Query or Scan (`read`: the client's query or scan) returns, page after page,
    as plain values."""
    params = dict(params)
    while True:
        response = read(**params)
        yield from map(from_attrs, response.get("Items", []))
        if "LastEvaluatedKey" not in response:
            return
        params["ExclusiveStartKey"] = response["LastEvaluatedKey"]


def from_image(image: Mapping[str, Any]) -> dict[str, Any]:
    """A stream record's image as the Lambda event carries it (binary values base64-encoded
    JSON strings, not bytes) -> plain Python values."""
    return from_attrs({name: _bytes_of(value) for name, value in image.items()})


def _bytes_of(value: Mapping[str, Any]) -> Mapping[str, Any]:
    (kind, data), *_ = value.items()
    if kind == "B" and isinstance(data, str):
        return {"B": base64.b64decode(data)}
    if kind == "BS":
        return {"BS": [base64.b64decode(d) if isinstance(d, str) else d for d in data]}
    if kind == "M":
        return {"M": {k: _bytes_of(v) for k, v in data.items()}}
    if kind == "L":
        return {"L": [_bytes_of(v) for v in data]}
    return value


def batch_get(
    client: Any, table: str, keys: list[dict[str, str]]
) -> dict[tuple[str, str], dict[str, Any]]:
    """Items by (pk, sk), consistent reads; keys a batch left unprocessed are asked again."""
    found: dict[tuple[str, str], dict[str, Any]] = {}
    pending = [to_attrs(k) for k in keys]
    while pending:
        response = client.batch_get_item(
            RequestItems={table: {"Keys": pending[:100], "ConsistentRead": True}}
        )
        for item in map(from_attrs, response.get("Responses", {}).get(table, [])):
            found[(item["pk"], item["sk"])] = item
        left = response.get("UnprocessedKeys", {}).get(table, {}).get("Keys", [])
        pending = left + pending[100:]
    return found


def error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


class ConditionFailed(Exception):
    """One action of a write batch failed its condition; `label` says which."""

    def __init__(self, label: str, old_item: dict[str, Any] | None = None) -> None:
        super().__init__(label)
        self.label = label
        self.old_item = old_item


MAX_TRANSACTION_ITEMS: Final = 100
"""TransactWriteItems takes at most this many actions."""


@dataclass
class WriteBatch:
    """Writes that commit together in one TransactWriteItems call, or not at all."""

    actions: list[dict[str, Any]] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    on_commit: list[Any] = field(default_factory=list)
    """Callbacks run after the batch committed (e.g. marking an idempotency claim complete)."""

    def add(self, label: str, action: dict[str, Any]) -> None:
        self.actions.append(action)
        self.labels.append(label)


def commit(client: Any, batch: WriteBatch) -> None:
    """Write `batch` atomically; a failed condition raises ConditionFailed naming its action."""
    if not batch.actions:
        return
    try:
        if len(batch.actions) == 1:
            _single(client, batch.actions[0])
        else:
            client.transact_write_items(TransactItems=batch.actions)
    except ClientError as error:
        code = error_code(error)
        if code == "ConditionalCheckFailedException":
            item = error.response.get("Item")
            raise ConditionFailed(batch.labels[0], from_attrs(item) if item else None) from error
        if code == "TransactionCanceledException":
            reasons = error.response.get("CancellationReasons", [])
            for label, reason in zip(batch.labels, reasons, strict=False):
                if reason.get("Code") == "ConditionalCheckFailed":
                    item = reason.get("Item")
                    raise ConditionFailed(label, from_attrs(item) if item else None) from error
        raise
    for callback in batch.on_commit:
        callback()


def _single(client: Any, action: dict[str, Any]) -> None:
    # One action needs no transaction: a plain conditional write costs half as much.
    ((kind, params),) = action.items()
    params = {**params, "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}
    if kind == "Put":
        client.put_item(**params)
    elif kind == "Update":
        client.update_item(**params)
    elif kind == "Delete":
        client.delete_item(**params)
    else:
        client.transact_write_items(TransactItems=[action])
