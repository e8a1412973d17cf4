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

moto answers behind `JsonProtocolDispatch` (payflow/sandbox/moto_dispatch.py): the JSON
requests of DynamoDB, DynamoDB Streams and SQS, most of the traffic, reach moto's handlers
without Flask's per-request work; everything else goes to moto's Flask apps as before.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

from payflow.sandbox.lambda_invoke import INVOKE_PATH, read_body
from payflow.sandbox.moto_version import MotoVersionError, check_moto_version
from payflow.sandbox.persistence import DataDirError, Durability, Recorder
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

    With a `recorder` (a durable sandbox, payflow/sandbox/persistence.py), what each request
    changed is journaled inside its lock, before the response leaves: the journal's order is
    the order the requests took effect, and a snapshot taken under `quiesce()` falls between
    whole requests.
    """

    DYNAMODB, SQS, STEPFUNCTIONS = "DynamoDB_", "AmazonSQS.", "AWSStepFunctions."
    SERVICES = (DYNAMODB, SQS)

    def __init__(
        self,
        app: Any,
        recorder: Recorder | None = None,
        after_request: Callable[[], None] = lambda: None,
    ) -> None:
        self._app = app
        self._locks = {prefix: threading.Lock() for prefix in self.SERVICES}
        self._recorder = recorder
        self._after_request = after_request

    @contextlib.contextmanager
    def quiesce(self) -> Iterator[None]:
        """Hold every service lock: no DynamoDB or SQS request runs meanwhile."""
        with contextlib.ExitStack() as stack:
            for prefix in self.SERVICES:
                stack.enter_context(self._locks[prefix])
            yield

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        operation = target.rpartition(".")[2]
        recorder = self._recorder
        service = next((p for p in self.SERVICES if target.startswith(p)), None)
        if recorder is not None and recorder.journal is None and (service or target):
            # Stopping: the last snapshot is written, so nothing more may be acknowledged.
            # An execution still running fails its next call; it was saved as running, and
            # runs again after the restart.
            return _json(
                start_response,
                "503 Service Unavailable",
                {"__type": "ServiceUnavailable", "message": "the embedded AWS is stopping"},
            )
        if service is None:
            if recorder is None or not target.startswith(self.STEPFUNCTIONS):
                return self._app(environ, start_response)
            body = list(self._app(environ, start_response))
            recorder.stepfunctions_done(operation)
            self._after_request()
            return body
        params = _json_params(environ) if service == self.SQS else {}
        if operation == "ReceiveMessage" and _long_poll(params):
            body = list(self._app(environ, start_response))
            if recorder is not None:
                with self._locks[service]:
                    recorder.sqs_queue_whole(str(params.get("QueueUrl") or ""))
            return body
        with self._locks[service]:
            if recorder is None:
                # Drain the body inside the lock: the write happens while it is produced.
                return list(self._app(environ, start_response))
            if service == self.SQS:
                recorder.sqs_begin(operation, params.get("QueueUrl"))
            try:
                body = list(self._app(environ, start_response))
            finally:
                if service == self.SQS:
                    recorder.sqs_done(operation)
                else:
                    recorder.dynamodb_done(operation)
        self._after_request()
        return body


def _json_params(environ: dict[str, Any]) -> dict[str, Any]:
    """A JSON-protocol request's parameters; its body is read and put back."""
    body = read_body(environ)
    environ["wsgi.input"] = io.BytesIO(body)
    try:
        params = json.loads(body or b"{}")
    except ValueError:
        return {}
    return params if isinstance(params, dict) else {}


def _long_poll(params: dict[str, Any]) -> bool:
    """Whether a ReceiveMessage request waits."""
    try:
        return int(params.get("WaitTimeSeconds") or 0) > 0
    except (ValueError, TypeError):
        return False


CONTROL_PREFIX = "/_payflow/"


class SandboxControl:
    """WSGI middleware answering the sandbox's own calls under ``/_payflow/``:

    - ``GET checkpoints`` / ``POST checkpoints``: where the stream pollers are (kept with the
      data, so that after a restart they go on from where the restored state stands);
    - ``POST resume``: run again the executions a stop cut off (the parent calls it once its
      handlers can answer);
    - ``GET state``: what the start restored; ``POST snapshot``: write a snapshot now.
    """

    def __init__(
        self, app: Any, recorder: Recorder, durability: Durability | None, restored: dict[str, Any]
    ) -> None:
        self._app = app
        self._recorder = recorder
        self._durability = durability
        self._restored = restored

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        path = environ.get("PATH_INFO", "")
        if not path.startswith(CONTROL_PREFIX):
            return self._app(environ, start_response)
        method = environ.get("REQUEST_METHOD")
        route = (method, path[len(CONTROL_PREFIX) :])
        if route == ("GET", "checkpoints"):
            answer: Any = {
                "checkpoints": [
                    {
                        "consumer": consumer,
                        "stream_arn": stream_arn,
                        "shard_id": shard_id,
                        "sequence_number": sequence,
                    }
                    for (consumer, stream_arn, shard_id), sequence in sorted(
                        self._recorder.checkpoints.items()
                    )
                ]
            }
        elif route == ("POST", "checkpoints"):
            given = _json_params(environ)
            try:
                self._recorder.checkpoint(
                    str(given["consumer"]),
                    str(given["stream_arn"]),
                    str(given["shard_id"]),
                    str(int(given["sequence_number"])),
                )
            except (KeyError, ValueError, TypeError):
                return _json(start_response, "400 Bad Request", {"error": "bad checkpoint"})
            answer = {"ok": True}
        elif route == ("POST", "resume"):
            answer = {"resumed": self._recorder.resume_executions()}
        elif route == ("GET", "state"):
            answer = self._restored
        elif route == ("POST", "snapshot") and self._durability is not None:
            answer = {"bytes": self._durability.snapshot()}
        else:
            return _json(start_response, "404 Not Found", {"error": f"no route {method} {path}"})
        return _json(start_response, "200 OK", answer)


def _json(start_response: Any, status: str, body: Any) -> list[bytes]:
    data = json.dumps(body).encode()
    start_response(
        status, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))]
    )
    return [data]


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
    host: str,
    port: int,
    invoke_url: str,
    threads: int,
    time_scale: float,
    data_dir: Path | None = None,
) -> tuple[BackgroundServer, Durability | None]:
    """moto behind the invocation forwarder and the request locks, listening on host:port;
    with `data_dir`, its state restored from there and journaled there."""
    from moto.core.config import default_user_config
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    from payflow.sandbox import moto_fixes, moto_speedups
    from payflow.sandbox.moto_dispatch import JsonProtocolDispatch
    from payflow.sandbox.timewarp import scale_step_functions_time

    moto_fixes.apply()
    moto_speedups.apply()
    scale_step_functions_time(time_scale)
    # Off by default in moto: state machines are stored but never run.
    default_user_config["stepfunctions"]["execute_state_machine"] = True
    backend = JsonProtocolDispatch(DomainDispatcherApplication(create_backend_app))
    durability: Durability | None = None
    restored: dict[str, Any] = {"durable": False}
    recorder = Recorder()
    if data_dir is None:
        locked = OneAtATime(backend)
    else:
        # The snapshot holds the locks of `locked`, made once the restore is done.
        durability = Durability(data_dir, lambda: locked.quiesce())
        report = durability.open()
        restored = {"durable": True, "data_dir": str(data_dir), **asdict(report)}
        recorder = durability.recorder
        locked = OneAtATime(backend, recorder, after_request=durability.after_append)
    app = SandboxControl(ForwardInvocations(locked, invoke_url), recorder, durability, restored)
    try:
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
    except BaseException:
        if durability is not None:
            durability.close()
        raise
    # The Step Functions engine calls Lambda and the other services at localhost:$MOTO_PORT.
    os.environ["MOTO_PORT"] = str(server.port)
    return server.start(), durability


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="payflow.sandbox.aws_server")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=4566)
    parser.add_argument("--invoke-url", required=True)
    parser.add_argument("--threads", type=int, default=64)
    parser.add_argument("--time-scale", type=float, default=1.0)
    parser.add_argument("--data-dir", default="", help="keep state here (none: ephemeral)")
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
    # Ctrl-C reaches the whole process group: the parent decides when this process stops (by
    # closing its stdin). SIGTERM sent here stops it the graceful way too.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda *_: os.close(sys.stdin.fileno()))
    data_dir = Path(args.data_dir) if args.data_dir else None
    try:
        check_moto_version()
        server, durability = serve(
            args.host, args.port, args.invoke_url, args.threads, args.time_scale, data_dir
        )
    except PortInUseError as error:
        print(json.dumps({"error": "port_in_use", "message": str(error)}), flush=True)
        return 1
    except (DataDirError, MotoVersionError) as error:
        print(json.dumps({"error": "cannot_start", "message": str(error)}), flush=True)
        return 1
    print(json.dumps({"port": server.port}), flush=True)
    # Until the parent closes our stdin (stop, exit or crash).
    with contextlib.suppress(OSError, ValueError):
        sys.stdin.buffer.read()
    if durability is not None:
        # The last snapshot before the server goes: requests after it are refused (see
        # OneAtATime), so a graceful stop loses nothing that was acknowledged.
        durability.close()
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
