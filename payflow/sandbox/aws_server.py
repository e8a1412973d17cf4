"""The embedded AWS's own process: moto served over HTTP, Lambda invocations sent back.

`EmbeddedAws` (payflow/sandbox/aws.py) starts ``python -m payflow.sandbox.aws_server`` and
talks to it over two channels:

- stdout: one JSON line once the server listens, ``{"port": N}`` (or ``{"error": ...}`` when
  it cannot bind), so the parent learns the port it picked;
- stdin: held open by the parent for as long as it wants the server. End of file (the parent
  stopped it, exited or was killed) makes this process stop: no orphan keeps the port.

Why a process of its own: moto is pure Python, and the sandbox is CPU-bound. In one process the
handlers (boto3, pydantic, the app) and moto (parsing, conditions, serializing) take turns on
one core under the GIL; in two they run on two cores. Lambda Invoke requests from the Step
Functions engine come to this process (moto calls ``localhost:$MOTO_PORT``) and are forwarded
unchanged to the parent's invoke endpoint, where the handlers live.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterable
from typing import Any

from payflow.sandbox.lambda_invoke import INVOKE_PATH, read_body
from payflow.sandbox.serving import BackgroundServer, PortInUseError

INVOKE_TIMEOUT_SECONDS = 900.0
"""Lambda's own maximum: a forwarded invocation never outlives what AWS would allow."""


class OneAtATime:
    """WSGI middleware that runs a service's requests one at a time (one lock per service).

    DynamoDB guarantees that a conditional write is atomic; moto's backend evaluates the
    condition and writes without a lock, so two server threads can both pass one condition.
    SQS hands a message to one consumer until its visibility timeout; moto's ReceiveMessage
    marks messages without a lock, so two concurrent receives got the same message (and the
    first receipt handle went stale), and two dead-letter moves of one message crashed. Each
    request of these services now runs alone, as their guarantees need (they take a few ms).
    A long poll (ReceiveMessage with WaitTimeSeconds) is let through unlocked: holding the lock
    for its wait would stop every other call to SQS; the sandbox's own pollers never long-poll.
    """

    SERVICES = ("DynamoDB_", "AmazonSQS.")

    def __init__(self, app: Any) -> None:
        self._app = app
        self._locks = {prefix: threading.Lock() for prefix in self.SERVICES}

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        lock = next((self._locks[p] for p in self.SERVICES if target.startswith(p)), None)
        if lock is None or (target == "AmazonSQS.ReceiveMessage" and _long_poll(environ)):
            return self._app(environ, start_response)
        with lock:
            # Drain the body inside the lock: the write happens while it is produced.
            return list(self._app(environ, start_response))


def _long_poll(environ: dict[str, Any]) -> bool:
    """Whether a ReceiveMessage request waits; its body is read and put back."""
    body = read_body(environ)
    environ["wsgi.input"] = io.BytesIO(body)
    try:
        return int(json.loads(body or b"{}").get("WaitTimeSeconds") or 0) > 0
    except (ValueError, AttributeError, TypeError):
        return False


class ForwardInvocations:
    """WSGI middleware sending Lambda Invoke requests, as they came, to `invoke_url` (the
    parent's `LambdaInvokeMiddleware`); everything else goes to `app` (moto)."""

    def __init__(self, app: Any, invoke_url: str) -> None:
        import urllib3

        self._app = app
        self._url = invoke_url.rstrip("/")
        self._http = urllib3.PoolManager(
            maxsize=64, retries=False, timeout=urllib3.Timeout(total=INVOKE_TIMEOUT_SECONDS)
        )

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") != "POST" or not INVOKE_PATH.match(
            environ.get("PATH_INFO", "")
        ):
            return self._app(environ, start_response)
        body = read_body(environ)
        query = environ.get("QUERY_STRING", "")
        headers = {"Content-Type": environ.get("CONTENT_TYPE") or "application/json"}
        for name in ("X-Amz-Invocation-Type", "X-Amz-Client-Context"):
            value = environ.get("HTTP_" + name.upper().replace("-", "_"))
            if value:
                headers[name] = value
        response = self._http.request(
            "POST",
            self._url + environ["PATH_INFO"] + (f"?{query}" if query else ""),
            body=body,
            headers=headers,
        )
        skipped = {"content-length", "connection", "transfer-encoding", "server", "date"}
        start_response(
            f"{response.status} {response.reason}",
            [(k, v) for k, v in response.headers.items() if k.lower() not in skipped]
            + [("Content-Length", str(len(response.data)))],
        )
        return [response.data]


def serve(
    host: str, port: int, invoke_url: str, threads: int, time_scale: float
) -> BackgroundServer:
    """moto behind the invocation forwarder and the DynamoDB lock, listening on host:port."""
    from moto.core.config import default_user_config
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    from payflow.sandbox import moto_fixes, moto_speedups
    from payflow.sandbox.timewarp import scale_step_functions_time

    moto_fixes.apply()
    moto_speedups.apply()
    scale_step_functions_time(time_scale)
    # Off by default in moto: state machines are stored but never run.
    default_user_config["stepfunctions"]["execute_state_machine"] = True
    app = ForwardInvocations(
        OneAtATime(DomainDispatcherApplication(create_backend_app)), invoke_url
    )
    server = BackgroundServer(
        app,
        host=host,
        port=port,
        threads=threads,
        name=f"embedded-aws-{port}",
        port_hint="PAYFLOW_AWS_PORT",
        # moto's Step Functions engine opens a new boto3 client (connection) per task.
        connection_limit=1000,
    )
    # The Step Functions engine calls Lambda and the other services at localhost:$MOTO_PORT.
    os.environ["MOTO_PORT"] = str(server.port)
    return server.start()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="payflow.sandbox.aws_server")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=4566)
    parser.add_argument("--invoke-url", required=True)
    parser.add_argument("--threads", type=int, default=64)
    parser.add_argument("--time-scale", type=float, default=1.0)
    args = parser.parse_args(argv)
    # Ctrl-C reaches the whole process group: the parent stops this process (closing stdin).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.basicConfig(
        level=logging.WARNING, format="embedded-aws %(levelname)s %(name)s %(message)s"
    )
    # The ASL interpreter logs every failure event at ERROR, handled ones included (a retried
    # PspTimeout, an IsPresent test on a missing path): an execution's failures are in its
    # history (GetExecutionHistory), where they belong.
    logging.getLogger("moto.stepfunctions.parser").setLevel(logging.CRITICAL)
    try:
        server = serve(args.host, args.port, args.invoke_url, args.threads, args.time_scale)
    except PortInUseError as error:
        print(json.dumps({"error": "port_in_use", "message": str(error)}), flush=True)
        return 1
    print(json.dumps({"port": server.port}), flush=True)
    # Until the parent closes our stdin (stop, exit or crash).
    sys.stdin.buffer.read()
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
