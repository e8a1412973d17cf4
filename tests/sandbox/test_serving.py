"""The sandbox's HTTP servers keep answering with many idle keep-alive connections open, as
moto's Step Functions engine leaves them (a new client per task)."""

from __future__ import annotations

import socket
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import pytest

from payflow.sandbox.serving import BackgroundServer


def _hello(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello"]


@pytest.fixture
def server() -> Iterator[BackgroundServer]:
    running = BackgroundServer(
        _hello,
        host="127.0.0.1",
        port=0,
        threads=2,
        name="test-serving",
        port_hint="TEST_PORT",
        connection_limit=300,
    ).start()
    yield running
    running.stop()


def test_answers_past_waitress_default_limit_of_idle_connections(
    server: BackgroundServer,
) -> None:
    # waitress stops accepting at its default of 100 open connections until idle ones time
    # out (300 s here): the limit the server was given must be the one it applies.
    with ExitStack() as idle:
        for _ in range(150):
            sock = idle.enter_context(socket.create_connection((server.host, server.port)))
            sock.settimeout(5)
        url = f"http://{server.host}:{server.port}/"
        with urllib.request.urlopen(url, timeout=5) as answer:
            assert answer.read() == b"hello"
