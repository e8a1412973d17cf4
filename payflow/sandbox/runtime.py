"""The embedded sandbox: moto as AWS, the resources of infra/, the Lambda entry points driven
by pollers, and the API, all in one process.

Handlers run exactly as deployed: they read their table and queue names from the environment
that infra/environment.json describes, and reach AWS through boto3's AWS_ENDPOINT_URL.
"""

from __future__ import annotations

import json
import logging
import os
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from payflow.sandbox import signing
from payflow.sandbox.aws import EmbeddedAws
from payflow.sandbox.chalice_bridge import handler_resolver, pollers_for
from payflow.sandbox.http_api import ApiServer, port_is_free
from payflow.sandbox.persistence import DEFAULT_DATA_DIR, RUNNING_FILE
from payflow.sandbox.pollers import PollerGroup, WireStreams
from payflow.sandbox.provision import (
    AwsClients,
    Provisioned,
    load_template,
    provision,
    resolve_environment,
)
from payflow.sandbox.serving import PortInUseError
from payflow.sandbox.simulator_pollers import SIMULATOR_WEBHOOK_SECRET, SimulatorPoller

logger = logging.getLogger("payflow.sandbox")

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "infra" / "resources.json"
ENVIRONMENT = ROOT / "infra" / "environment.json"
DURABLE_START_TIMEOUT_SECONDS = 600.0
"""A restore of a large data directory takes a while (docs/persistence.md has figures)."""
DEMO_MERCHANT_ID = "acct_payflowdemo"
SANDBOX_WEBHOOK_RETRY_SCHEDULE = "0,2,5,10,30"
"""Seconds before each webhook attempt in the sandbox: production's schedule spans 28 hours."""


@dataclass(frozen=True)
class SandboxConfig:
    """Where the sandbox listens and who its demo merchant is."""

    host: str = "127.0.0.1"
    api_port: int = 8000
    aws_port: int = 4566
    secret_key: str = "sk_test_payflow"
    admin_key: str = "sk_admin_payflow"
    stack_name: str = "payflow"
    settings: tuple[tuple[str, str], ...] = ()
    """Extra PAYFLOW_* settings for the handlers (e.g. a short idempotency lease in tests)."""
    parameters: tuple[tuple[str, str], ...] = (
        ("PspRetryIntervalSeconds", "1"),
        ("PspRetryMaxAttempts", "2"),
        ("PspRetryMaxDelaySeconds", "5"),
    )
    """Template parameters for the sandbox (infra/resources.json Parameters)."""
    time_scale: float = 1.0
    """Factor on the Step Functions engine's Retry and Wait delays (tests use 0.01)."""
    extra_functions: Callable[[str], Any] | None = None
    """Resolves Lambda functions that are not the app's (tests register their own)."""
    duplicate_delivery_rate: float = 0.0
    """Share of SQS and stream batches the pollers hand to the handler twice (chaos runs)."""
    duplicate_seed: int | None = None
    """Seed of the draw that picks the duplicated batches (reproducible chaos runs)."""
    data_dir: Path | None = None
    """Where the embedded AWS keeps its state across restarts; None keeps it in memory only
    (the tests' sandbox). `from_environ` defaults to `.payflow/` in the checkout."""

    @classmethod
    def from_environ(cls, environ: dict[str, str] | None = None) -> SandboxConfig:
        env = dict(os.environ if environ is None else environ)
        return cls(
            data_dir=data_dir_from_environ(env),
            host=env.get("PAYFLOW_HOST", cls.host),
            api_port=int(env.get("PAYFLOW_PORT", cls.api_port)),
            aws_port=int(env.get("PAYFLOW_AWS_PORT", cls.aws_port)),
            secret_key=env.get("PAYFLOW_SECRET_KEY", cls.secret_key),
            admin_key=env.get("PAYFLOW_ADMIN_KEY", cls.admin_key),
            time_scale=float(env.get("PAYFLOW_SANDBOX_TIME_SCALE", cls.time_scale)),
        )


def data_dir_from_environ(environ: dict[str, str]) -> Path | None:
    """``PAYFLOW_DATA_DIR`` (default `.payflow/` in the checkout); None when
    ``PAYFLOW_EPHEMERAL`` is set to 1 or true (state kept in memory only)."""
    if environ.get("PAYFLOW_EPHEMERAL", "").lower() in ("1", "true", "yes"):
        return None
    return Path(environ.get("PAYFLOW_DATA_DIR") or DEFAULT_DATA_DIR)


class Sandbox:
    """Start with `start()` (or `with Sandbox(...)`), stop with `stop()`."""

    def __init__(self, config: SandboxConfig | None = None) -> None:
        self.config = config or SandboxConfig()
        self.aws: EmbeddedAws | None = None
        self.api: ApiServer | None = None
        self.pollers = PollerGroup()
        self.simulator_pollers = PollerGroup()
        self.provisioned: Provisioned | None = None
        self.demo_merchant: dict[str, Any] | None = None
        self.restored: dict[str, Any] = {}
        """What the embedded AWS restored from its data directory (``durable``: False if none)."""

    @property
    def api_url(self) -> str:
        assert self.api is not None, "the sandbox is not started"
        return self.api.url

    @property
    def aws_url(self) -> str:
        assert self.aws is not None, "the sandbox is not started"
        return self.aws.endpoint_url

    def start(self) -> Sandbox:
        config = self.config
        for name, port in (
            ("PAYFLOW_PORT", config.api_port),
            ("PAYFLOW_AWS_PORT", config.aws_port),
        ):
            if port and not port_is_free(config.host, port):
                raise PortInUseError(
                    f"port {port} on {config.host} is in use (another sandbox?): stop that "
                    f"program or set {name} to a free port"
                )
        # Imported only now: the app's modules must see the environment set up below.
        from app import app

        app_functions = handler_resolver(app)
        extra = config.extra_functions

        def resolve(name: str) -> Any:
            return app_functions(name) or (extra(name) if extra else None)

        self.aws = EmbeddedAws(
            config.host,
            config.aws_port,
            resolve=resolve,
            time_scale=config.time_scale,
            data_dir=config.data_dir,
            start_timeout=DURABLE_START_TIMEOUT_SECONDS if config.data_dir else 30.0,
        )
        self.aws.start()
        self.restored = self.aws.restored()
        if self.restored.get("durable"):
            logger.info("state restored from %s: %s", config.data_dir, self.restored)
        self._configure_environment()
        clients = AwsClients.for_endpoint(self.aws.endpoint_url)
        self.provisioned = provision(
            load_template(TEMPLATE),
            config.stack_name,
            clients,
            parameters={
                # The queue's maxReceiveCount must match the number of scheduled attempts.
                "WebhookMaxAttempts": len(self.webhook_retry_schedule.split(",")),
                **dict(config.parameters),
            },
        )
        environment = resolve_environment(json.loads(ENVIRONMENT.read_text()), self.provisioned)
        os.environ.update(environment)
        self._reset_handler_state()

        from chalicelib.container import services

        self.demo_merchant = services().merchants.create(
            name="PayFlow demo", merchant_id=DEMO_MERCHANT_ID, secret_key=config.secret_key
        )
        durable_options: dict[str, Any] = (
            {"checkpoints": self.aws.checkpoints()} if config.data_dir else {}
        )
        self.pollers = PollerGroup(
            pollers_for(
                app,
                self.provisioned,
                self.aws.client("sqs"),
                WireStreams(self.aws.client("dynamodbstreams"), self.aws.endpoint_url),
                duplicate_rate=config.duplicate_delivery_rate,
                rng=random.Random(config.duplicate_seed),
                **durable_options,
            )
        ).start()
        if config.data_dir:
            # Now that the handlers can answer: executions a stop cut off run again.
            self.aws.resume_executions()
        self.api = ApiServer(app, config.host, config.api_port).start()
        # The simulator PSP's own clock and webhooks, sent to the API just started.
        self.simulator_pollers = PollerGroup(
            [SimulatorPoller(self.api.url, os.environ["PAYFLOW_SIMULATOR_WEBHOOK_SECRET"])]
        ).start()
        self._write_running_file()
        return self

    def stop(self) -> None:
        self.simulator_pollers.stop()
        if self.api is not None:
            self.api.stop()
        self.pollers.stop()
        if self.aws is not None:
            self.aws.stop()
        if self.config.data_dir is not None:
            (self.config.data_dir / RUNNING_FILE).unlink(missing_ok=True)

    def _write_running_file(self) -> None:
        """`<data dir>/sandbox.json`: how tools find this sandbox (removed on stop)."""
        if self.config.data_dir is None or self.aws is None:
            return
        running = {
            "api_url": self.api_url,
            "aws_url": self.aws_url,
            "pid": os.getpid(),
            "aws_pid": self.aws.pid,
        }
        path = self.config.data_dir / RUNNING_FILE
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps(running, indent=2) + "\n")
        os.replace(temporary, path)

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def webhook_retry_schedule(self) -> str:
        """The handlers' PAYFLOW_WEBHOOK_RETRY_SCHEDULE: the config's, the shell's, or the
        sandbox's compressed default."""
        configured = dict(self.config.settings).get("PAYFLOW_WEBHOOK_RETRY_SCHEDULE")
        return configured or os.environ.get(
            "PAYFLOW_WEBHOOK_RETRY_SCHEDULE", SANDBOX_WEBHOOK_RETRY_SCHEDULE
        )

    def _configure_environment(self) -> None:
        assert self.aws is not None
        # The handlers run in this process, so this is their Lambda environment. Dummy
        # credentials: nothing the sandbox does can reach a real AWS account.
        os.environ.update(
            {
                "AWS_ENDPOINT_URL": self.aws.endpoint_url,
                "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing",
                "AWS_DEFAULT_REGION": "us-east-1",
                "AWS_REGION": "us-east-1",
                "PAYFLOW_ADMIN_KEY": self.config.admin_key,
                # Webhook endpoints on localhost are allowed, retries come within a minute.
                "PAYFLOW_SANDBOX": "true",
                # Captured funds are available at once (AWS default: two days, as Stripe).
                "PAYFLOW_AVAILABILITY_DELAY_SECONDS": os.environ.get(
                    "PAYFLOW_AVAILABILITY_DELAY_SECONDS", "0"
                ),
                "PAYFLOW_WEBHOOK_RETRY_SCHEDULE": self.webhook_retry_schedule,
                # The simulator signs its webhooks to /v1/psp_webhooks/simulator with this.
                "PAYFLOW_SIMULATOR_WEBHOOK_SECRET": os.environ.get(
                    "PAYFLOW_SIMULATOR_WEBHOOK_SECRET", SIMULATOR_WEBHOOK_SECRET
                ),
                # Metrics aggregated in-process (/v1/sandbox/metrics, /metrics); no X-Ray here.
                "PAYFLOW_METRICS_SINK": os.environ.get("PAYFLOW_METRICS_SINK", "memory"),
                "PAYFLOW_TRACING": "false",
                "POWERTOOLS_TRACE_DISABLED": "true",
                **dict(self.config.settings),
            }
        )
        os.environ.pop("AWS_SESSION_TOKEN", None)
        os.environ.pop("AWS_PROFILE", None)
        signing.install(urlsplit(self.aws.endpoint_url).netloc)

    @staticmethod
    def _reset_handler_state() -> None:
        # Settings and clients are read once per process; this process just changed them.
        from chalicelib.container import services, webhooks
        from chalicelib.observability import observability
        from chalicelib.settings import get_settings

        get_settings.cache_clear()
        services.cache_clear()
        webhooks.cache_clear()
        observability.cache_clear()
