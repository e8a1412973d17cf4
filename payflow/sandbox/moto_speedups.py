"""moto's hot paths made cheaper, without changing an answer (applied in the moto process).

Measured with a CPU profiler in the moto process of a chaos run (30 payments):

- Query: moto builds its candidates from `Table.all_items()`, which sorts every item of the
  table, for every Query, even one on the table's own partition key. Queries got slower as the
  table grew, and a long chaos run slowed down quadratically. A Query on the table's key now
  reads its partition's bucket; a Query on an index filters the items unsorted (moto sorts the
  matches by the index's key and the table's key afterwards, which fully orders them).
- Step Functions: every execution parsed its state machine's definition again with ANTLR
  (about 12 % of the process's CPU). Parsed programs are now kept per definition text: the
  interpreter keeps an execution's state in its Environment, not in the program's components.
- Routing a request to a service: moto's dispatcher scanned its module list twice per request
  (about 9 %). The answer depends only on the host name it is given, so it is remembered.
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import Callable
from typing import Any

_APPLIED = False
PROGRAM_CACHE_SIZE = 64


def apply() -> None:
    """Install the speed-ups (idempotent)."""
    global _APPLIED
    if _APPLIED:
        return
    from moto.dynamodb.models.table import Table
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser

    Table.query = _query_from_candidates(Table.query)  # type: ignore[method-assign]
    AmazonStateLanguageParser.parse = _remembered_parse(AmazonStateLanguageParser.parse)  # type: ignore[method-assign]
    DomainDispatcherApplication.get_backend_for_host = _remembered_backend(  # type: ignore[method-assign]
        DomainDispatcherApplication.get_backend_for_host
    )
    _APPLIED = True


def query_candidates(table: Any, hash_key: Any, index_name: str | None) -> list[Any]:
    """The items a Query can match: the partition's bucket on the table's key, every item
    (unsorted) on an index."""
    if index_name:
        if not table.range_key_attr:
            return list(table.items.values())
        return [item for bucket in table.items.values() for item in bucket.values()]
    bucket = table.items.get(hash_key) if hash_key is not None else None
    if bucket is None:
        return []
    return list(bucket.values()) if table.range_key_attr else [bucket]


def _query_from_candidates(query: Callable[..., Any]) -> Callable[..., Any]:
    signature = inspect.signature(query)

    def fast_query(self: Any, *args: Any, **kwargs: Any) -> Any:
        call = signature.bind(self, *args, **kwargs).arguments
        candidates = query_candidates(self, call["hash_key"], call.get("index_name"))
        # moto's query reads its candidates from self.all_items(); DynamoDB requests are
        # serialized (aws_server.AtomicDynamoDB), so shadowing it for this call is safe.
        self.all_items = lambda: candidates
        try:
            return query(self, *args, **kwargs)
        finally:
            del self.all_items

    return fast_query


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
