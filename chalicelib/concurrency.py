"""Run a handler's independent pieces of work side by side, and build shared things once.

A Lambda batch (SQS messages, stream records) is mostly waiting on the network: DynamoDB, SQS,
a webhook receiver. Handling its items in threads cuts the batch's duration, and with it the
Lambda bill and the lag behind the stream, without changing what each item does.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")
Built = TypeVar("Built")

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


class Once(Generic[Built]):
    """`build()` run once per process, however many threads ask for it at the same time.

    `functools.cache` lets two threads that ask first both build, and each keeps its own: in the
    sandbox, where a Lambda handler and the API run side by side in one process, that split the
    services (and the botocore hooks a benchmark put on them) in two. `cache_clear()` forgets
    the built value, as functools' does.
    """

    def __init__(self, build: Callable[[], Built]) -> None:
        self._build = build
        self._lock = threading.RLock()
        self._built: list[Built] = []
        functools.update_wrapper(self, build)

    def __call__(self) -> Built:
        built = self._built
        if built:
            return built[0]
        with self._lock:
            if not self._built:
                self._built = [self._build()]
            return self._built[0]

    def cache_clear(self) -> None:
        with self._lock:
            self._built = []
