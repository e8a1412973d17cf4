"""What every fake PSP on 127.0.0.1 shares: a threaded HTTP server, a request log, and
misbehaviour on demand (the next POSTs time out, are rate-limited or fail with a 5xx, or are
done but answered too late)."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlparse

LATE_SECONDS = 1.5
"""How long a "timeout" answer takes: longer than the connectors' timeouts in the tests."""


class Request:
    """One request as the fake received it."""

    def __init__(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        url = urlparse(handler.path)
        length = int(handler.headers.get("Content-Length") or 0)
        self.method = method
        self.path = url.path
        self.query = dict(parse_qsl(url.query))
        self.headers = {k.lower(): v for k, v in handler.headers.items()}
        self.raw = handler.rfile.read(length) if length else b""

    def form(self) -> dict[str, str]:
        """The form-encoded body's parameters and the query's, flat (`metadata[k]` as is)."""
        return {**dict(parse_qsl(self.raw.decode())), **self.query}

    def json(self) -> dict[str, Any]:
        body = json.loads(self.raw or b"{}")
        return body if isinstance(body, dict) else {}

    @property
    def parts(self) -> list[str]:
        return self.path.strip("/").split("/")


class FakeProvider:
    """Run with `with Fake() as fake:`; `fake.url` is the base address. Subclasses answer
    `route(request)` with (status, body) and say how their provider shapes an error."""

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.lock = threading.RLock()
        self._mode = "normal"
        self._mode_count = 0
        self._mode_path = ""
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                fake._serve(self, "GET")

            def do_POST(self) -> None:
                fake._serve(self, "POST")

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> Any:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def misbehave(self, mode: str, count: int = 1, path: str = "") -> None:
        """The next `count` POSTs (to paths starting with `path`): timeout | rate_limited |
        server_error | timeout_after_charge (done, then answered after the client gave up)."""
        with self.lock:
            self._mode, self._mode_count, self._mode_path = mode, count, path

    def _take_mode(self, path: str) -> str:
        with self.lock:
            if self._mode_count <= 0 or not path.startswith(self._mode_path):
                return "normal"
            self._mode_count -= 1
            return self._mode

    def _serve(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        request = Request(handler, method)
        self.requests.append(request)
        mode = self._take_mode(request.path) if method == "POST" else "normal"
        if mode == "timeout":
            time.sleep(LATE_SECONDS)
            return self.send(handler, 200, {})
        if mode == "rate_limited":
            return self.send(handler, 429, self.error_body(429))
        if mode == "server_error":
            return self.send(handler, 500, self.error_body(500))
        refused = self.authenticate(request)
        if refused is not None:
            return self.send(handler, 401, refused)
        with self.lock:
            status, body = self.route(request)
        if mode == "timeout_after_charge":
            time.sleep(LATE_SECONDS)
        self.send(handler, status, body)

    def authenticate(self, request: Request) -> dict[str, Any] | None:
        """The 401 body when the request's credentials are refused, else None."""
        return None

    def route(self, request: Request) -> tuple[int, dict[str, Any]]:
        raise NotImplementedError

    def error_body(self, status: int) -> dict[str, Any]:
        raise NotImplementedError

    @staticmethod
    def send(handler: BaseHTTPRequestHandler, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        try:
            handler.send_response(status)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(data)))
            handler.end_headers()
            handler.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a timeout test): the work is done all the same
