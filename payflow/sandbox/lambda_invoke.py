"""Answer the Lambda Invoke API in-process, in front of moto's WSGI app.

moto cannot run Lambda code without Docker, so `LambdaInvokeMiddleware` intercepts
``POST /2015-03-31/functions/{name-or-arn}/invocations`` and calls a Python handler instead.
Errors come back exactly as AWS shapes them (``X-Amz-Function-Error: Unhandled`` and an
``errorType`` equal to the exception class name), which is what makes Step Functions Retry and
Catch on your own exception names behave as they do on AWS.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import unquote

ACCOUNT_ID = "123456789012"
REGION = "us-east-1"

Handler = Callable[[Any, Any], Any]
Resolver = Callable[[str], Handler | None]
WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

logger = logging.getLogger(__name__)

INVOKE_PATH = re.compile(r"^/2015-03-31/functions/(?P<function>[^/]+)/invocations/?$")


def function_arn(name: str, region: str = REGION, account_id: str = ACCOUNT_ID) -> str:
    """The ARN AWS would give a function called `name`."""
    return f"arn:aws:lambda:{region}:{account_id}:function:{name}"


def parse_function_name(name_or_arn: str) -> tuple[str, str | None]:
    """Split a function name, partial ARN or full ARN into (name, qualifier).

    Accepts ``NAME``, ``NAME:qualifier``, ``123456789012:function:NAME[:qualifier]`` and
    ``arn:aws:lambda:REGION:ACCOUNT:function:NAME[:qualifier]``, URL-encoded or not.
    """
    value = unquote(name_or_arn)
    parts = value.split(":")
    rest = parts[parts.index("function") + 1 :] if "function" in parts else parts
    name = rest[0] if rest else ""
    qualifier = rest[1] if len(rest) > 1 and rest[1] else None
    return name, qualifier


class LambdaContext:
    """The subset of the Lambda runtime's context object that handlers use.

    `clock` returns seconds (monotonic); the deadline is `timeout_seconds` after creation.
    """

    def __init__(
        self,
        function_name: str,
        *,
        qualifier: str | None = None,
        memory_limit_in_mb: int = 128,
        timeout_seconds: float = 60.0,
        region: str = REGION,
        account_id: str = ACCOUNT_ID,
        aws_request_id: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        arn = function_arn(function_name, region, account_id)
        self.invoked_function_arn = f"{arn}:{qualifier}" if qualifier else arn
        self.memory_limit_in_mb = memory_limit_in_mb
        self.aws_request_id = aws_request_id or str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = f"sandbox/{self.aws_request_id}"
        self.identity = None
        self.client_context = None
        self._clock = clock
        self._deadline = clock() + timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left before the (simulated) function timeout, never negative."""
        return max(0, int((self._deadline - self._clock()) * 1000))


def error_payload(
    exc: BaseException, request_id: str | None = None, skip_frames: int = 0
) -> dict[str, Any]:
    """The body Lambda's Python runtime returns for an unhandled exception.

    `skip_frames` drops the caller's own frames so the trace starts in the handler, as on AWS.
    """
    frames = traceback.extract_tb(exc.__traceback__)[skip_frames:]
    payload: dict[str, Any] = {
        "errorMessage": str(exc),
        "errorType": type(exc).__name__,
        "stackTrace": traceback.format_list(frames),
    }
    if request_id:
        payload["requestId"] = request_id
    return payload


class LambdaInvokeMiddleware:
    """WSGI middleware answering Lambda Invoke with in-process Python handlers.

    `resolve(name)` maps a function name (the last segment of an ARN, qualifier removed) to a
    handler ``handler(event, context)``, or None when the function is unknown (404, as AWS).
    Every other request passes through to `app` (moto).

    Invocation types: RequestResponse (default) runs the handler and returns its JSON result;
    Event answers 202 and runs it on a daemon thread (no automatic retries, unlike AWS);
    DryRun answers 204 without running it.
    """

    def __init__(
        self,
        app: WsgiApp,
        resolve: Resolver,
        *,
        region: str = REGION,
        account_id: str = ACCOUNT_ID,
        timeout_seconds: float = 60.0,
    ) -> None:
        self.app = app
        self.resolve = resolve
        self.region = region
        self.account_id = account_id
        self.timeout_seconds = timeout_seconds

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        match = INVOKE_PATH.match(environ.get("PATH_INFO", ""))
        if environ.get("REQUEST_METHOD") != "POST" or match is None:
            return self.app(environ, start_response)
        status, headers, body = self.invoke(
            match.group("function"),
            read_body(environ),
            environ.get("HTTP_X_AMZ_INVOCATION_TYPE") or "RequestResponse",
            _query_param(environ.get("QUERY_STRING", ""), "Qualifier"),
        )
        headers.append(("Content-Length", str(len(body))))
        start_response(status, headers)
        return [body]

    def invoke(
        self,
        name_or_arn: str,
        body: bytes,
        invocation_type: str = "RequestResponse",
        qualifier: str | None = None,
    ) -> tuple[str, list[tuple[str, str]], bytes]:
        """Run one invocation; returns (HTTP status line, headers, body)."""
        name, arn_qualifier = parse_function_name(name_or_arn)
        qualifier = qualifier or arn_qualifier
        request_id = str(uuid.uuid4())
        headers = [
            ("Content-Type", "application/json"),
            ("x-amzn-RequestId", request_id),
        ]
        handler = self.resolve(name) if name else None
        if handler is None:
            arn = function_arn(name, self.region, self.account_id)
            return self._error(
                "404 Not Found", "ResourceNotFoundException", f"Function not found: {arn}", headers
            )
        try:
            event = json.loads(body) if body.strip() else {}
        except ValueError as exc:
            return self._error(
                "400 Bad Request",
                "InvalidRequestContentException",
                f"Could not parse request body into json: {exc}",
                headers,
            )
        context = LambdaContext(
            name,
            qualifier=qualifier,
            timeout_seconds=self.timeout_seconds,
            region=self.region,
            account_id=self.account_id,
            aws_request_id=request_id,
        )
        if invocation_type == "DryRun":
            return "204 No Content", headers, b""
        if invocation_type == "Event":
            worker = threading.Thread(
                target=self._run_async,
                args=(name, handler, event, context),
                name=f"lambda-event-{name}",
                daemon=True,
            )
            worker.start()
            return "202 Accepted", headers, b""
        if invocation_type != "RequestResponse":
            return self._error(
                "400 Bad Request",
                "InvalidParameterValueException",
                f"Unsupported invocation type: {invocation_type}",
                headers,
            )
        headers.append(("X-Amz-Executed-Version", "$LATEST"))
        try:
            result = handler(event, context)
        except Exception as exc:
            logger.info("function %s raised %s: %s", name, type(exc).__name__, exc)
            headers.append(("X-Amz-Function-Error", "Unhandled"))
            return (
                "200 OK",
                headers,
                json.dumps(error_payload(exc, request_id, skip_frames=1)).encode(),
            )
        try:
            return "200 OK", headers, json.dumps(result).encode()
        except (TypeError, ValueError) as exc:
            # What the real runtime reports when the return value is not JSON-serializable.
            headers.append(("X-Amz-Function-Error", "Unhandled"))
            payload = {
                "errorMessage": f"Unable to marshal response: {exc}",
                "errorType": "Runtime.MarshalError",
                "requestId": request_id,
                "stackTrace": [],
            }
            return "200 OK", headers, json.dumps(payload).encode()

    @staticmethod
    def _run_async(name: str, handler: Handler, event: Any, context: LambdaContext) -> None:
        try:
            handler(event, context)
        except Exception:
            logger.exception("asynchronous invocation of %s failed", name)

    @staticmethod
    def _error(
        status: str, error_type: str, message: str, headers: list[tuple[str, str]]
    ) -> tuple[str, list[tuple[str, str]], bytes]:
        # botocore reads the error code from x-amzn-ErrorType; the body mirrors what AWS sends.
        headers.append(("x-amzn-ErrorType", error_type))
        body = {"Type": "User", "Message": message, "message": message}
        return status, headers, json.dumps(body).encode()


def read_body(environ: dict[str, Any]) -> bytes:
    """A WSGI request's body, as its Content-Length says (empty when absent or malformed)."""
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    stream = environ["wsgi.input"]
    return stream.read(length) if length > 0 else b""


def _query_param(query: str, key: str) -> str | None:
    for pair in query.split("&"):
        name, _, value = pair.partition("=")
        if name == key and value:
            return unquote(value)
    return None
