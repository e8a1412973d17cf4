"""The sandbox's HTTP servers keep answering with many idle keep-alive connections open, as
moto's Step Functions engine leaves them (a new client per task)."""

from __future__ import annotations

import socket
import time
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


def test_the_date_header_is_the_one_waitress_formats(server: BackgroundServer) -> None:
    from email.utils import parsedate_to_datetime

    from waitress import task, utilities

    # The date waitress's own function gives, for any time within a second and across seconds
    for when in (0.0, 0.999, 1.0, 1_764_633_600.25, 1_764_633_600.75, 1_764_633_601.5):
        assert task.build_http_date(when) == utilities.build_http_date(when)
    # and an answer carries the current one
    url = f"http://{server.host}:{server.port}/"
    with urllib.request.urlopen(url, timeout=5) as answer:
        sent = parsedate_to_datetime(answer.headers["Date"]).timestamp()
    assert abs(sent - time.time()) < 5
