"""Serves the Chalice app over HTTP in-process, as API Gateway would invoke it.

`chalice local` stalls about 43 ms per request on keep-alive connections (headers and body go
out in separate small writes, and Nagle's algorithm waits for the client's delayed ACK).
BackgroundServer (waitress) buffers each response into one write and serves from a thread pool, so
stripe-python's keep-alive connections get answers at full speed and concurrently.

Routing and the Lambda event come from Chalice's own local gateway, so handlers see the same
event shape they get behind API Gateway. What API Gateway would answer on its own (no such
route, wrong method) is answered here with Stripe-shaped 404s.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import socket
from collections.abc import Callable, Iterable
from typing import Any

from chalice import Chalice
from chalice.config import Config
from chalice.local import ForbiddenError, LocalChalice, LocalGateway, LocalGatewayException

from chalicelib.errors import MethodNotAllowed, PayFlowError, RouteNotFound
from payflow.sandbox.lambda_invoke import read_body
from payflow.sandbox.serving import BackgroundServer

logger = logging.getLogger("payflow.sandbox.http")

StartResponse = Callable[[str, list[tuple[str, str]]], Any]

_REASONS = {
    200: "OK",
    201: "Created",
    202: "Accepted",
    204: "No Content",
    400: "Bad Request",
    401: "Unauthorized",
    402: "Payment Required",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    415: "Unsupported Media Type",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
}


def make_thread_safe(app: Chalice) -> Chalice:
    """Give `app` a per-thread `current_request` (what `chalice local` does too): on Lambda one
    process serves one request at a time, here a thread pool serves many."""
    if not isinstance(app, LocalChalice):
        app.__class__ = type("ThreadSafeChalice", (LocalChalice, app.__class__), {})
    return app


def _not_found(method: str, path: str) -> tuple[int, dict[str, str], bytes]:
    return _refusal(
        RouteNotFound(
            f"Unrecognized request URL ({method}: {path}). Please see the API reference at /docs."
        )
    )


def _refusal(error: PayFlowError) -> tuple[int, dict[str, str], bytes]:
    headers = {"Content-Type": "application/json", **error.headers}
    return error.http_status, headers, json.dumps(error.to_body()).encode()


def _raw_path(environ: dict[str, Any]) -> str:
    # Route on the path as sent: PATH_INFO is already percent-decoded, which would make
    # `pi_x%2Fcancel` the cancel route and `%3F` the start of a query string.
    raw = str(environ.get("REQUEST_URI") or environ.get("RAW_URI") or "")
    if raw.startswith("/"):
        return raw.partition("?")[0] or "/"
    return environ.get("PATH_INFO", "") or "/"


class ChaliceWsgiApp:
    """A WSGI application that feeds requests to a Chalice app as API Gateway events."""

    def __init__(self, app: Chalice, stage: str = "local") -> None:
        self._app = make_thread_safe(app)
        config = Config.create(chalice_stage=stage, app_name=app.app_name, chalice_app=app)
        self._gateway = LocalGateway(app, config)
        self._methods = {method for route in app.routes.values() for method in route}
        self._routes = [
            (re.compile("^" + re.sub(r"\{[^/]+?\}", "[^/]+", path) + "$"), set(methods))
            # Literal segments first: `/search` is not an `{intent}`.
            for path, methods in sorted(app.routes.items(), key=lambda r: r[0].count("{"))
        ]

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        method = environ["REQUEST_METHOD"]
        path = _raw_path(environ)
        query = environ.get("QUERY_STRING", "")
        headers = {
            key[5:].replace("_", "-").lower(): value
            for key, value in environ.items()
            if key.startswith("HTTP_")
        }
        if environ.get("CONTENT_TYPE"):
            headers["content-type"] = environ["CONTENT_TYPE"]
        body = read_body(environ)
        headers["content-length"] = str(len(body))
        status, out_headers, payload = self._handle(
            method, path + (f"?{query}" if query else ""), headers, body
        )
        out_headers.setdefault("Content-Length", str(len(payload)))
        start_response(f"{status} {_REASONS.get(status, 'Status')}", list(out_headers.items()))
        return [payload]

    def _handle(
        self, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        if method not in self._methods:
            served = self._methods_of(path.split("?")[0])
            if not served:
                return _not_found(method, path.split("?")[0])
            allowed = ", ".join(sorted(served))
            return _refusal(
                MethodNotAllowed(
                    f"The {method} method is not supported; PayFlow answers {allowed}.",
                    headers={"Allow": allowed},
                )
            )
        try:
            response = self._gateway.handle_request(method, path, headers, body or None)
        except (ForbiddenError, UnicodeError):
            # UnicodeError: Chalice's own 403 echoes a non-ASCII Authorization header.
            return _not_found(method, path.split("?")[0])
        except LocalGatewayException as error:
            return error.CODE, dict(error.headers), error.body or b""
        status = int(response["statusCode"])
        if status == 405:
            # API Gateway has the path but not this method: Stripe says "unrecognized URL".
            return _not_found(method, path.split("?")[0])
        out_headers = {k: str(v) for k, v in (response.get("headers") or {}).items()}
        if not any(k.lower() == "content-type" for k in out_headers):
            out_headers["Content-Type"] = "application/json"
        for name, values in (response.get("multiValueHeaders") or {}).items():
            out_headers[name] = ", ".join(str(v) for v in values)
        raw = response.get("body") or ""
        if response.get("isBase64Encoded"):
            payload = base64.b64decode(raw)
        else:
            payload = raw.encode() if isinstance(raw, str) else bytes(raw)
        return status, out_headers, payload

    def _methods_of(self, path: str) -> set[str]:
        """The methods the route at `path` answers (none: no such route)."""
        for pattern, methods in self._routes:
            if pattern.match(path):
                return methods
        return set()


class ApiServer(BackgroundServer):
    """The Chalice app on http://host:port, in the background."""

    def __init__(self, app: Chalice, host: str = "127.0.0.1", port: int = 8000, threads: int = 16):
        super().__init__(
            ChaliceWsgiApp(app),
            host=host,
            port=port,
            threads=threads,
            name="payflow-api",
            port_hint="PAYFLOW_PORT",
        )

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


def port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True
