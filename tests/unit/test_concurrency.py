"""Helpers for handlers that do several things at once (chalicelib/concurrency.py)."""

from __future__ import annotations

import threading
import time

import pytest

from chalicelib.concurrency import Once, each_concurrently


def test_threads_asking_at_once_get_one_build() -> None:
    # Given a slow build, asked for by eight threads at the same moment
    builds: list[object] = []

    def build() -> object:
        time.sleep(0.05)
        builds.append(object())
        return builds[-1]

    shared = Once(build)
    start = threading.Barrier(8)
    got: list[object] = []

    def ask() -> None:
        start.wait()
        got.append(shared())

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # Then it was built once, and everyone holds that one
    assert len(builds) == 1
    assert all(value is builds[0] for value in got)

    # and cache_clear() makes the next call build again
    shared.cache_clear()
    assert shared() is not builds[0] and len(builds) == 2


def test_each_concurrently_keeps_order_and_raises_the_first_error() -> None:
    assert each_concurrently(lambda n: n * 2, [3, 1, 2]) == [6, 2, 4]

    def fail_on_two(n: int) -> int:
        if n == 2:
            raise ValueError("two")
        return n

    with pytest.raises(ValueError, match="two"):
        each_concurrently(fail_on_two, [1, 2, 3])
