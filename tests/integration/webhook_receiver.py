"""A webhook receiver for tests: an HTTP server on 127.0.0.1 that records every request and
answers with the statuses a test scripts."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.conformance.recorder import RECORDER


@dataclass(frozen=True)
class Received:
    """One request the receiver got."""

    path: str
    headers: dict[str, str]
    body: bytes
    at: float

    @property
    def event(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.body)
        return parsed

    @property
    def webhook_id(self) -> str:
        return self.headers["webhook-id"]


class Receiver:
    """Answers each request with the next scripted status (then `default`)."""

    def __init__(
        self, statuses: list[int] | None = None, default: int = 200, *, events: bool = True
    ) -> None:
        self.statuses = list(statuses or [])
        self.default = default
        self.events = events
        """Whether what arrives is PayFlow's events, checked against Stripe's schemas."""
        self.requests: list[Received] = []
        self._lock = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.path != receiver.path:
                    # A message of an earlier test aimed at a port this receiver now reuses.
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                with receiver._lock:
                    status = receiver.statuses.pop(0) if receiver.statuses else receiver.default
                    receiver.requests.append(
                        Received(
                            self.path,
                            {k.lower(): v for k, v in self.headers.items()},
                            body,
                            time.monotonic(),
                        )
                    )
                    receiver._lock.notify_all()
                payload = json.dumps({"status": status, "note": "x" * 2000}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
                # Every delivered event is a body the suite receives: check it like the others,
                # once answered, so the check never delays the delivery.
                if receiver.events:
                    RECORDER.record_bytes(body, source=f"webhook to {self.path}")

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.path = f"/hooks/{uuid.uuid4().hex}"
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}{self.path}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> Receiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def wait_for(
        self, predicate: Callable[[list[Received]], bool], timeout: float = 10.0
    ) -> list[Received]:
        """Wait until `predicate(requests)` holds; returns the requests (AssertionError after
        `timeout`)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while not predicate(self.requests):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(
                        f"receiver: condition not met in {timeout} s; got "
                        f"{[(r.event['type'], r.webhook_id) for r in self.requests]}"
                    )
                self._lock.wait(remaining)
            return list(self.requests)

    def count(self) -> int:
        with self._lock:
            return len(self.requests)

    def of_type(self, event_type: str) -> list[Received]:
        with self._lock:
            return [r for r in self.requests if r.event["type"] == event_type]


@contextmanager
def receiving(
    statuses: list[int] | None = None, default: int = 200, *, events: bool = True
) -> Iterator[Receiver]:
    receiver = Receiver(statuses, default, events=events).start()
    try:
        yield receiver
    finally:
        receiver.stop()


def eventually(check: Callable[[], Any], timeout: float = 10.0, interval: float = 0.05) -> Any:
    """`check()`'s result once it stops raising AssertionError (re-raised after `timeout`)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return check()
        except AssertionError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(interval)
