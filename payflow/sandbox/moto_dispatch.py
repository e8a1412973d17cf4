"""DynamoDB, DynamoDB Streams and SQS JSON requests handed to moto's handlers without Flask.

Why: the moto process is the sandbox's bottleneck, and for a small PutItem only about a fifth
of its CPU was moto answering (``DynamoHandler.call_action``). Flask took about a quarter:
a request context, binding and matching the URL map, a debug helper on every form load
(moto runs its apps with ``debug = True``), CORS and building the response. For these three
services the route never varies (POST to ``/``, the service named by ``X-Amz-Target`` and the
signature), so `JsonProtocolDispatch` does what Flask's route would do, without Flask:

- it picks the service exactly as moto's `DomainDispatcherApplication` does (from the
  signature's credential scope and the target), and serves only the JSON-protocol requests
  of the services in `FAST_TARGETS` that moto would give those same services; everything
  else (Step Functions, Lambda, STS, ``/moto-api``, the SQS query protocol...) goes to
  moto's dispatcher as before;
- it calls the handler Flask would call, looked up once in that service's own Flask app
  (its URL map and view functions, which moto builds from the service's ``url_paths``), with
  moto's own `Request` built from the environ, as `convert_to_flask_response` does (request
  recorder included; a `ClientError` is a 400 with its message);
- it builds the response as that view does (Flask's `Response`: the status line, moto's
  headers, Content-Type defaulting to ``text/html; charset=utf-8``, Content-Length) and adds
  what flask-cors would add, from the options flask-cors computes for the app. What moto's
  handlers return (an int status, str headers, a str body) is written out directly, and the
  CORS headers are remembered per Origin: 9 microseconds instead of 36 for building a
  `Response`, running flask-cors and werkzeug's WSGI step;
- an exception from the handler goes to the app's own Flask error handling, in a request
  context made only then: a `werkzeug.exceptions.HTTPException` becomes Flask's answer, any
  other exception propagates as it does from Flask (moto's apps run in debug mode).

An app with request hooks other than flask-cors' is not served here (Flask would run them),
so a moto upgrade that adds one falls back to Flask rather than answering differently.
``tests/sandbox/test_moto_dispatch.py`` sends the same requests both ways and compares.
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from botocore.exceptions import ClientError
from flask import Flask, Response
from flask_cors.core import (
    ACL_ORIGIN,
    ACL_REQUEST_HEADER_PRIVATE_NETWORK,
    get_cors_headers,
    get_cors_options,
    merge_options,
    parse_resources,
    try_match_pattern,
)
from moto.core.request import Request
from moto.core.utils import convert_to_flask_response
from moto.moto_api import recorder
from moto.moto_server.werkzeug_app import DomainDispatcherApplication
from werkzeug.datastructures import Headers
from werkzeug.http import HTTP_STATUS_CODES
from werkzeug.sansio.utils import get_current_url, get_host
from werkzeug.utils import cached_property, get_content_type

if TYPE_CHECKING:
    from moto.backends import SERVICE_NAMES

FAST_TARGETS: dict[str, SERVICE_NAMES] = {
    "DynamoDB_20120810": "dynamodb",
    "DynamoDBStreams_20120810": "dynamodbstreams",
    "AmazonSQS": "sqs",
}
"""X-Amz-Target's service part -> the moto backend that answers it here."""


class ServerRequest(Request):
    """moto's request as its server makes it (`BackendRequest` without Flask's half): moto
    leaves the Date header to the WSGI server."""

    from_wsgi_server = True

    @cached_property
    def root_url(self) -> str:
        """werkzeug's, remembered across requests: it is a function of these four values
        (`trusted_hosts` is None). moto reads it for every request's `raw_url`, and building
        it (IRI conversions) took 12 of the 23 microseconds `raw_url` cost."""
        return _root_url(self.scheme, self.headers.get("host"), self.server, self.root_path)


@functools.lru_cache(maxsize=64)
def _root_url(scheme: str, host: str | None, server: Any, root_path: str) -> str:
    return get_current_url(scheme, get_host(scheme, host, server, None), root_path)


@dataclass(frozen=True, eq=False)
class _Route:
    """What answers one backend's requests: its Flask app (for errors), the view's handler,
    and the app's flask-cors resources (None: the app has no CORS)."""

    app: Flask
    handler: Any
    cors: list[tuple[Any, Any]] | None

    def cors_headers(self, headers: Any) -> list[tuple[str, str]]:
        """What flask-cors adds to a POST to ``/`` with these request headers."""
        return list(
            _cors_for_root(
                self, headers.get("Origin"), headers.get(ACL_REQUEST_HEADER_PRIVATE_NETWORK)
            )
        )


@functools.lru_cache(maxsize=256)
def _cors_for_root(
    route: _Route, origin: str | None, private_network: str | None
) -> tuple[tuple[str, str], ...]:
    # flask-cors reads only these two headers of a request that is not a preflight.
    headers = Headers()
    for name, value in (("Origin", origin), (ACL_REQUEST_HEADER_PRIVATE_NETWORK, private_network)):
        if value is not None:
            headers.add(name, value)
    for pattern, options in route.cors or ():
        if try_match_pattern("/", pattern, caseSensitive=True):
            added = Headers()
            for cors_name, cors_value in get_cors_headers(options, headers, "POST").items():
                added.add(cors_name, cors_value)
            return tuple(added.to_wsgi_list())
    return ()


def _plain_answer(
    status: Any, headers: Any, content: Any
) -> tuple[str, list[tuple[str, str]], bytes] | None:
    """What Flask's ``Response(content, status, headers)`` hands the WSGI server, built
    directly for what moto's handlers return (an int status, a dict of str headers, a str or
    bytes body); None for anything werkzeug treats specially (Location, Content-Length,
    a body-less status, CORS headers set by moto...), which `Response` then builds."""
    if type(status) is not int or status < 200 or status in (204, 304):
        return None
    reason = HTTP_STATUS_CODES.get(status)
    if reason is None or type(headers) is not dict:
        return None
    if type(content) is str:
        body = content.encode()
    elif type(content) is bytes:
        body = content
    else:
        return None
    answer: list[tuple[str, str]] = []
    typed = False
    for name, value in headers.items():
        if type(name) is not str or type(value) is not str or _NEWLINE.search(value):
            return None
        lower = name.lower()
        if lower in _LEFT_TO_WERKZEUG:
            return None
        typed = typed or lower == "content-type"
        answer.append((name, value))
    if not typed:
        answer.append(("Content-Type", _DEFAULT_CONTENT_TYPE))
    answer.append(("Content-Length", str(len(body))))
    return f"{status} {reason.upper()}", answer, body


_NEWLINE = re.compile(r"[\r\n]")
_LEFT_TO_WERKZEUG = {"content-length", "location", "content-location", ACL_ORIGIN.lower()}
_DEFAULT_CONTENT_TYPE = get_content_type(Response.default_mimetype or "text/html", "utf-8")


class JsonProtocolDispatch:
    """WSGI app answering the JSON-protocol requests of `FAST_TARGETS` with moto's handlers,
    the rest with `dispatcher` (moto's own `DomainDispatcherApplication`)."""

    def __init__(self, dispatcher: DomainDispatcherApplication) -> None:
        self._dispatcher = dispatcher
        self._routes: dict[str, _Route | None] = {}
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        route = self._route(environ)
        if route is None:
            return self._dispatcher(environ, start_response)  # type: ignore[no-any-return]
        try:
            request = ServerRequest(environ)
            recorder._record_request(request)
            result = route.handler(request, request.raw_url, dict(request.headers))
        except ClientError as exc:
            result = 400, {}, exc.response["Error"]["Message"]
        except Exception as error:
            return _flask_error_answer(route.app, error, environ, start_response)
        if len(result) == 3:
            status, headers, content = result
        else:
            status, headers, content = 200, {}, result
        answer = _plain_answer(status, headers, content)
        if answer is not None:
            status_line, header_list, body = answer
            if route.cors is not None:
                header_list.extend(route.cors_headers(request.headers))
            start_response(status_line, header_list)
            return [body]
        response = Response(response=content, status=status, headers=headers)
        if route.cors is not None and not response.headers.get(ACL_ORIGIN):
            _add_cors_headers(response, request, route.cors)
        return response(environ, start_response)  # type: ignore[no-any-return]

    def _route(self, environ: dict[str, Any]) -> _Route | None:
        """The route of a request served here, or None (moto's dispatcher answers it)."""
        if environ.get("REQUEST_METHOD") != "POST" or environ.get("PATH_INFO") != "/":
            return None
        target = environ.get("HTTP_X_AMZ_TARGET") or ""
        backend = FAST_TARGETS.get(target.partition(".")[0])
        if backend is None or "HTTP_AUTHORIZATION" not in environ:
            return None
        # moto's own choice of service (the signature's scope first, then the target): a
        # request moto would give another service is left to it.
        try:
            host = self._dispatcher.infer_service_region_host(environ, "/")
        except (ValueError, IndexError, KeyError):
            return None
        if self._dispatcher.get_backend_for_host(host) != backend:
            return None
        try:
            return self._routes[backend]
        except KeyError:
            with self._lock:
                if backend not in self._routes:
                    self._routes[backend] = _resolve(self._dispatcher, backend)
                return self._routes[backend]


def _resolve(dispatcher: DomainDispatcherApplication, backend: SERVICE_NAMES) -> _Route | None:
    """The handler Flask would call for ``POST /`` in `backend`'s app (the dispatcher's own
    app, made as it makes it), or None when Flask would do more than call it."""
    with dispatcher.lock:
        app = dispatcher.app_instances.get(backend)
        if app is None:
            app = dispatcher.app_instances[backend] = dispatcher.create_app(backend)
    after = {key: [f.__name__ for f in funcs] for key, funcs in app.after_request_funcs.items()}
    hooks = (
        app.before_request_funcs,
        app.teardown_request_funcs,
        app.teardown_appcontext_funcs,
        app.url_value_preprocessors,
        app.error_handler_spec,
    )
    if {k: v for k, v in after.items() if v} not in ({}, {None: ["cors_after_request"]}) or any(
        _registered(hook) for hook in hooks
    ):
        return None
    endpoint, _ = app.url_map.bind("localhost").match("/", method="POST")
    view = app.view_functions[endpoint]
    if not isinstance(view, convert_to_flask_response):
        return None
    cors = None
    if after.get(None):
        # What `CORS(app)` computed in init_app (moto passes no options).
        merged = merge_options(app, {}, {})
        cors = [
            (pattern, get_cors_options(app, {}, {}, options))
            for pattern, options in parse_resources(merged.get("resources", r"/*"))
        ]
    return _Route(app=app, handler=view.callback, cors=cors)


def _registered(hooks: Any) -> bool:
    """Whether a Flask registry of hooks (nested per blueprint, code or class) holds one."""
    if isinstance(hooks, dict):
        return any(_registered(value) for value in hooks.values())
    return bool(hooks)


def _add_cors_headers(response: Response, request: Request, resources: list[Any]) -> None:
    """flask-cors' after-request step: the first resource matching the path sets the
    headers."""
    path = unquote(request.path)
    for pattern, options in resources:
        if try_match_pattern(path, pattern, caseSensitive=True):
            for name, value in get_cors_headers(options, request.headers, request.method).items():
                response.headers.add(name, value)
            return


def _flask_error_answer(
    app: Flask, error: Exception, environ: dict[str, Any], start_response: Any
) -> Iterable[bytes]:
    """What Flask answers when the view raised `error` (its handling, CORS included)."""
    with app.request_context(environ):
        try:
            response = app.finalize_request(app.handle_user_exception(error))
        except Exception as unhandled:
            # Re-raised here: moto's apps run in debug mode, where Flask propagates.
            response = app.handle_exception(unhandled)
    return response(environ, start_response)  # type: ignore[no-any-return]
