"""Run a handler's independent pieces of work side by side.

A Lambda batch (SQS messages, stream records) is mostly waiting on the network: DynamoDB, SQS,
a webhook receiver. Handling its items in threads cuts the batch's duration, and with it the
Lambda bill and the lag behind the stream, without changing what each item does.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")

MAX_WORKERS = 10


def each_concurrently(
    work: Callable[[Item], Result], items: Sequence[Item], max_workers: int = MAX_WORKERS
) -> list[Result]:
    """`work(item)` for every item, in threads; results in the items' order. The first
    exception raised by any item is raised here once every item has finished."""
    if len(items) <= 1:
        return [work(item) for item in items]
    with ThreadPoolExecutor(max_workers=min(max_workers, len(items))) as pool:
        futures = [pool.submit(work, item) for item in items]
    return [future.result() for future in futures]
