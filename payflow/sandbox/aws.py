"""Serve moto over HTTP in this process, with Lambda invocations answered in-process.

Server choice (measured with boto3 against moto 5.2.5 on this machine, 200 sequential calls):
waitress keeps boto3's connection alive (1 TCP connection for 50 calls) and answers PutItem in
about 2.0 ms and SendMessage in 6.8 ms; werkzeug 3.1's threaded server answers every request
with ``Connection: close`` (50 connections for 50 calls) and takes 3.2 ms and 8.3 ms. Neither
showed a Nagle/delayed-ACK stall, so waitress it is. Its worker pool is bounded, and a Lambda
handler invoked through the middleware holds a worker while it calls moto back on another one,
so the pool is sized well above the number of concurrent invocations (`threads`).
"""

from __future__ import annotations

import json
import os
import threading
import time
import urllib.error
import urllib.request
from typing import Any

from payflow.sandbox.lambda_invoke import REGION, LambdaInvokeMiddleware, Resolver
from payflow.sandbox.serving import BackgroundServer, PortInUseError

__all__ = ["EmbeddedAws", "PortInUseError"]

DUMMY_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
SFN_CONFIG = {"stepfunctions": {"execute_state_machine": True}}


def _no_function(name: str) -> None:
    return None


class AtomicDynamoDB:
    """WSGI middleware that runs DynamoDB requests one at a time.

    DynamoDB guarantees that a conditional write is atomic; moto's backend evaluates the
    condition and writes without a lock, so two server threads can both pass one condition.
    Serializing DynamoDB calls gives the sandbox AWS's guarantee (they take ~2 ms each here).
    """

    def __init__(self, app: Any) -> None:
        self._app = app
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        if not environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB_"):
            return self._app(environ, start_response)
        with self._lock:
            # Drain the body inside the lock: the write happens while it is produced.
            return list(self._app(environ, start_response))


class EmbeddedAws:
    """moto's WSGI app behind `LambdaInvokeMiddleware`, served by waitress on a daemon thread.

    ``port=0`` picks a free port; `.port` and `.endpoint_url` tell which one after `start()`.
    `start()` also sets ``MOTO_PORT`` (moto's Step Functions engine calls Lambda and other services
    at ``http://localhost:$MOTO_PORT``) and turns on state machine execution.

    Isolation: moto keeps its backends (tables, queues, state machines...) in module-level
    globals, so two EmbeddedAws in one process serve the *same* resources, and ``MOTO_PORT`` and
    moto's config are process-wide too (the last started instance wins). Run one per process;
    tests should share one session-scoped instance and name their resources uniquely.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 4566,
        resolve: Resolver = _no_function,
        *,
        threads: int = 32,
        region: str = REGION,
        start_timeout: float = 10.0,
    ) -> None:
        self.host = host
        self.region = region
        self._requested_port = port
        self._resolve = resolve
        self._threads = threads
        self._start_timeout = start_timeout
        self._server: BackgroundServer | None = None
        self.port = port

    @property
    def endpoint_url(self) -> str:
        """Base URL for boto3's ``endpoint_url`` (or ``AWS_ENDPOINT_URL``)."""
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"http://{host}:{self.port}"

    def start(self) -> EmbeddedAws:
        """Bind, serve on a daemon thread and return once moto answers.

        Raises `PortInUseError` when the port is taken.
        """
        # Imported here: moto's server pulls in Flask and every backend's URL map, which only the
        # sandbox process needs.
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            create_backend_app,
        )

        from payflow.sandbox import moto_fixes

        moto_fixes.apply()
        app = LambdaInvokeMiddleware(
            AtomicDynamoDB(DomainDispatcherApplication(create_backend_app)),
            self._resolve,
            region=self.region,
        )
        self._server = BackgroundServer(
            app,
            host=self.host,
            port=self._requested_port,
            threads=self._threads,
            name=f"embedded-aws-{self._requested_port}",
            port_hint="PAYFLOW_AWS_PORT",
            # moto's Step Functions engine opens a new boto3 client (connection) per task.
            connection_limit=1000,
        )
        self.port = self._server.port
        os.environ["MOTO_PORT"] = str(self.port)
        self._server.start()
        self._configure_moto()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Close the listener and every connection, then stop the worker threads."""
        server, self._server = self._server, None
        if server is not None:
            server.stop(timeout)

    def client(self, service_name: str, **kwargs: Any) -> Any:
        """A boto3 client for `service_name` pointed at this endpoint with dummy credentials."""
        import boto3

        kwargs.setdefault("region_name", self.region)
        return boto3.client(
            service_name,  # type: ignore[call-overload]
            endpoint_url=self.endpoint_url,
            **DUMMY_CREDENTIALS,
            **kwargs,
        )

    def __enter__(self) -> EmbeddedAws:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _configure_moto(self) -> None:
        """POST moto's config until the server answers (that is the readiness check)."""
        request = urllib.request.Request(
            f"{self.endpoint_url}/moto-api/config",
            data=json.dumps(SFN_CONFIG).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        # No proxy: a developer's HTTP(S)_PROXY must not capture calls to our own loopback port.
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        deadline = time.monotonic() + self._start_timeout
        while True:
            try:
                with opener.open(request, timeout=2) as response:
                    response.read()
                return
            except (urllib.error.URLError, ConnectionError):
                if time.monotonic() > deadline:
                    self.stop()
                    raise
                time.sleep(0.05)
