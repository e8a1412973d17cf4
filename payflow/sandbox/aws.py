"""The embedded AWS: moto served over HTTP by a process of its own, with Lambda invocations
answered in this process, where the handlers are.

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
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from payflow.sandbox.lambda_invoke import REGION, LambdaInvokeMiddleware, Resolver
from payflow.sandbox.serving import BackgroundServer, PortInUseError

__all__ = ["EmbeddedAws", "EmbeddedAwsError", "PortInUseError"]

ROOT = Path(__file__).resolve().parents[2]
DUMMY_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


def _no_function(name: str) -> None:
    return None


class EmbeddedAwsError(RuntimeError):
    """The embedded AWS cannot start: its message says why in one line (data directory taken,
    wrong moto version)."""


class EmbeddedAws:
    """moto in a child process (payflow/sandbox/aws_server.py), with Lambda invocations
    answered here by `LambdaInvokeMiddleware` and the handlers `resolve` finds.

    ``port=0`` picks a free port; `.port` and `.endpoint_url` tell which one after `start()`.
    `start()` also sets ``MOTO_PORT`` here, for tools that look for moto there.

    Two processes, two cores: the handlers and moto are both pure Python, and in one process
    they would take turns under the GIL. Each EmbeddedAws has its own moto (its own tables,
    queues and state machines); tests share one session-scoped instance and name their
    resources uniquely. The child stops when `stop()` is called or this process ends.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 4566,
        resolve: Resolver = _no_function,
        *,
        threads: int = 64,
        region: str = REGION,
        start_timeout: float = 30.0,
        time_scale: float = 1.0,
        data_dir: Path | None = None,
    ) -> None:
        self.host = host
        self.data_dir = data_dir
        self.region = region
        self._requested_port = port
        self._resolve = resolve
        self._threads = threads
        self._start_timeout = start_timeout
        self._time_scale = time_scale
        self._invoke_server: BackgroundServer | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self.port = port

    @property
    def endpoint_url(self) -> str:
        """Base URL for boto3's ``endpoint_url`` (or ``AWS_ENDPOINT_URL``)."""
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"http://{host}:{self.port}"

    def start(self) -> EmbeddedAws:
        """Start the invoke endpoint and the moto process; return once moto listens.

        Raises `PortInUseError` when the port is taken.
        """
        self._invoke_server = BackgroundServer(
            LambdaInvokeMiddleware(_not_found, self._resolve, region=self.region),
            host="127.0.0.1",
            port=0,
            threads=self._threads,
            name="lambda-invoke",
            port_hint="PAYFLOW_AWS_PORT",
        ).start()
        command = [
            sys.executable,
            "-m",
            "payflow.sandbox.aws_server",
            f"--host={self.host}",
            f"--port={self._requested_port}",
            f"--invoke-url=http://127.0.0.1:{self._invoke_server.port}",
            f"--threads={self._threads}",
            f"--time-scale={self._time_scale}",
            f"--data-dir={self.data_dir or ''}",
        ]
        self._process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=ROOT
        )
        try:
            ready = self._read_ready_line()
        except BaseException:
            self.stop()
            raise
        if "port" not in ready:
            self.stop()
            if ready.get("error") == "port_in_use":
                raise PortInUseError(ready["message"])
            if ready.get("error") == "cannot_start":
                raise EmbeddedAwsError(ready["message"])
            raise RuntimeError(f"the embedded AWS did not start: {ready}")
        self.port = int(ready["port"])
        os.environ["MOTO_PORT"] = str(self.port)
        return self

    def stop(self, timeout: float | None = None) -> None:
        """Stop the moto process (it exits when its stdin closes) and the invoke endpoint.

        A durable one writes its last snapshot first: it gets the start timeout for that,
        an ephemeral one 5 s.
        """
        if timeout is None:
            timeout = self._start_timeout if self.data_dir else 5.0
        process, self._process = self._process, None
        if process is not None:
            if process.stdin is not None:
                process.stdin.close()
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout)
            if process.stdout is not None:
                process.stdout.close()
        server, self._invoke_server = self._invoke_server, None
        if server is not None:
            server.stop(timeout)

    @property
    def pid(self) -> int | None:
        """The moto process's id while it runs."""
        return self._process.pid if self._process is not None else None

    def control(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """Call the moto process's own routes (``/_payflow/<path>``, aws_server.SandboxControl)."""
        request = urllib.request.Request(
            f"{self.endpoint_url}/_payflow/{path}",
            data=None if body is None else json.dumps(body).encode(),
            method=method,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=self._start_timeout) as response:
            return json.loads(response.read())

    def restored(self) -> dict[str, Any]:
        """What the start found in the data directory (``{"durable": False}`` without one)."""
        return dict(self.control("GET", "state"))

    def resume_executions(self) -> int:
        """Start again the executions that a stop cut off; returns how many."""
        return int(self.control("POST", "resume")["resumed"])

    def checkpoints(self) -> StreamCheckpoints:
        """Where the stream pollers stand, kept in the moto process with the data."""
        return StreamCheckpoints(self)

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

    def _read_ready_line(self) -> dict[str, Any]:
        """The child's first stdout line, within the start timeout."""
        assert self._process is not None and self._process.stdout is not None
        lines: list[bytes] = []
        reader = threading.Thread(
            target=lambda: lines.append(self._process.stdout.readline()),  # type: ignore[union-attr]
            daemon=True,
        )
        reader.start()
        reader.join(self._start_timeout)
        if not lines or not lines[0]:
            code = self._process.poll()
            if code is not None:
                raise RuntimeError(f"the embedded AWS process exited with code {code}")
            raise RuntimeError(
                f"the embedded AWS process did not report its port within "
                f"{self._start_timeout:.0f} s"
            )
        return dict(json.loads(lines[0]))


class StreamCheckpoints:
    """A stream poller's position per shard, stored in the moto process: journaled with the
    records it read, so a restored state never has a position past its own stream."""

    def __init__(self, aws: EmbeddedAws) -> None:
        self._aws = aws

    def load(self, consumer: str, stream_arn: str) -> dict[str, str]:
        """Shard id -> sequence number of the last record `consumer` handled."""
        return {
            c["shard_id"]: c["sequence_number"]
            for c in self._aws.control("GET", "checkpoints")["checkpoints"]
            if c["consumer"] == consumer and c["stream_arn"] == stream_arn
        }

    def save(self, consumer: str, stream_arn: str, shard_id: str, sequence_number: str) -> None:
        """`consumer` handled every record of the shard up to `sequence_number`."""
        self._aws.control(
            "POST",
            "checkpoints",
            {
                "consumer": consumer,
                "stream_arn": stream_arn,
                "shard_id": shard_id,
                "sequence_number": sequence_number,
            },
        )


def _not_found(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    """The invoke endpoint answers only Lambda Invoke."""
    start_response("404 Not Found", [("Content-Type", "text/plain")])
    return [b"not a Lambda Invoke request"]
