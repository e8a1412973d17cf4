"""`python -m payflow.sandbox` in a child process, as `make dev` runs it: started on free
ports with a data directory, found through its `sandbox.json`, stopped with Ctrl-C or killed.

For the durable-state tests and figures, which need the real process (its signals, its moto
child) rather than a `Sandbox` inside the caller.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from payflow.sandbox.persistence import RUNNING_FILE

ROOT = Path(__file__).resolve().parents[2]


class ChildSandboxError(RuntimeError):
    """The child sandbox exited or did not start in time; the message ends with its log."""


class ChildSandbox:
    """One sandbox process on `data_dir`, its output appended to `log`.

    It runs in a session of its own, so `kill()` reaches its moto process too (as closing a
    terminal would), and the caller's Ctrl-C does not.
    """

    def __init__(
        self, data_dir: Path, log: Path, settings: Mapping[str, str] | None = None
    ) -> None:
        self.data_dir = data_dir
        self.log = log
        self.settings = dict(settings or {})
        self.process: subprocess.Popen[bytes] | None = None
        self.api_url = ""
        self.aws_url = ""

    def start(self, timeout: float = 600.0) -> float:
        """Start it and wait until it serves; returns the seconds that took."""
        # A clean environment: a caller's own sandbox sets AWS_* and PAYFLOW_* variables.
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("PAYFLOW_", "AWS_", "MOTO_", "STRIPE_"))
        }
        env.update(PAYFLOW_DATA_DIR=str(self.data_dir), PAYFLOW_PORT="0", PAYFLOW_AWS_PORT="0")
        env.update(self.settings)
        started = time.monotonic()
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "payflow.sandbox"],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        running = self.data_dir / RUNNING_FILE
        while time.monotonic() - started < timeout:
            if self.process.poll() is not None:
                raise ChildSandboxError(f"exited with {self.process.returncode}:\n{self.tail()}")
            if running.exists():
                found = json.loads(running.read_text())
                if found["pid"] == self.process.pid:
                    self.api_url, self.aws_url = found["api_url"], found["aws_url"]
                    return time.monotonic() - started
            time.sleep(0.05)
        self.kill()
        raise ChildSandboxError(f"did not start within {timeout:.0f} s:\n{self.tail()}")

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float = 600.0) -> int:
        """Ctrl-C, as in a terminal; returns the exit code once it has stopped."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGINT)
        return self.process.wait(timeout)

    def kill(self) -> None:
        """SIGKILL to the sandbox and its moto process at once."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(60)

    def tail(self, size: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-size:]

    def client(self, service: str) -> Any:
        """A boto3 client for its embedded AWS."""
        import boto3

        return boto3.client(
            service,  # type: ignore[call-overload]
            endpoint_url=self.aws_url,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    def restored(self) -> dict[str, Any]:
        """What its embedded AWS restored on start (GET /_payflow/state)."""
        import requests

        return dict(requests.get(f"{self.aws_url}/_payflow/state", timeout=30).json())
