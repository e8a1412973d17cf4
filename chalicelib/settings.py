"""All configuration, read from the environment once into one model.

Handlers never branch on where they run: the embedded sandbox, LocalStack and AWS differ only in
these values (and in boto3's own AWS_ENDPOINT_URL).
"""

from __future__ import annotations

import os
from typing import Literal

from pydantic import BaseModel, Field

from chalicelib.concurrency import Once

STRIPE_TEST_MODE_LIMIT = 25
"""Stripe's per-second limit for reads and for writes in test mode (live mode: 100 each)."""


class Settings(BaseModel):
    """PayFlow's configuration (environment variable names in each field's alias)."""

    payments_table: str = Field(alias="PAYFLOW_PAYMENTS_TABLE")
    idempotency_table: str = Field(alias="PAYFLOW_IDEMPOTENCY_TABLE")
    simulator_table: str = Field(alias="PAYFLOW_SIMULATOR_TABLE")
    webhook_queue_url: str | None = Field(default=None, alias="PAYFLOW_WEBHOOK_QUEUE_URL")
    webhook_dlq_url: str | None = Field(default=None, alias="PAYFLOW_WEBHOOK_DLQ_URL")
    webhook_retry_schedule: str = Field(
        default="0,5,300,1800,7200,18000,36000,36000", alias="PAYFLOW_WEBHOOK_RETRY_SCHEDULE"
    )
    """Seconds before each delivery attempt; its length must equal the queue's maxReceiveCount
    (template parameter WebhookMaxAttempts)."""
    webhook_timeout_seconds: float = Field(
        default=10.0, gt=0, alias="PAYFLOW_WEBHOOK_TIMEOUT_SECONDS"
    )
    webhook_disable_after_seconds: int = Field(
        default=5 * 86_400, ge=0, alias="PAYFLOW_WEBHOOK_DISABLE_AFTER_SECONDS"
    )
    """An endpoint failing for this long is disabled (with a webhook_endpoint.disabled event)."""
    sandbox: bool = Field(default=False, alias="PAYFLOW_SANDBOX")
    """Sandbox mode: webhook endpoints may point at loopback and private addresses."""
    admin_key: str = Field(default="sk_admin_payflow", alias="PAYFLOW_ADMIN_KEY")
    idempotency_ttl_seconds: int = Field(default=86_400, alias="PAYFLOW_IDEMPOTENCY_TTL_SECONDS")
    idempotency_lease_ms: int = Field(default=60_000, alias="PAYFLOW_IDEMPOTENCY_LEASE_MS")
    """How long an in-progress Idempotency-Key stays locked if its request dies."""
    api_key_cache_seconds: float = Field(
        default=5.0, ge=0, le=300, alias="PAYFLOW_API_KEY_CACHE_SECONDS"
    )
    """How long a Lambda instance trusts a resolved API key before asking DynamoDB again: the
    bound on how long a revoked key, or a deleted merchant's, keeps working on a warm instance
    other than the one that revoked it (docs/security.md)."""
    analytics_table: str | None = Field(default=None, alias="PAYFLOW_ANALYTICS_TABLE")
    """The table of analytics counters and connector alerts (none: /v1/analytics answers 404)."""
    rate_limit_table: str | None = Field(default=None, alias="PAYFLOW_RATE_LIMIT_TABLE")
    """The table of per-key request counters that every instance shares (none: no limits)."""
    rate_limit_read: int | None = Field(default=None, ge=0, alias="PAYFLOW_RATE_LIMIT_READ")
    rate_limit_write: int | None = Field(default=None, ge=0, alias="PAYFLOW_RATE_LIMIT_WRITE")
    """Requests per second per API key, GET (read) and every other method (write), for merchants
    without limits of their own; 0 means unlimited. Unset: Stripe's test-mode limits (25 and
    25) on AWS, unlimited in the sandbox so that tests, chaos runs and benchmarks are never
    throttled (a merchant's own limits apply everywhere)."""
    rate_limit_lease: float = Field(default=0.1, gt=0, le=1, alias="PAYFLOW_RATE_LIMIT_LEASE")
    """Share of a key's per-second limit an instance takes from the shared counter at once and
    then spends locally: the DynamoDB cost is one conditional write per lease, not per request."""
    payment_state_machine_arn: str = Field(alias="PAYFLOW_PAYMENT_STATE_MACHINE_ARN")
    refund_state_machine_arn: str = Field(alias="PAYFLOW_REFUND_STATE_MACHINE_ARN")
    reconciliation_state_machine_arn: str | None = Field(
        default=None, alias="PAYFLOW_RECONCILIATION_STATE_MACHINE_ARN"
    )
    availability_delay_seconds: int = Field(
        default=172_800, ge=0, alias="PAYFLOW_AVAILABILITY_DELAY_SECONDS"
    )
    """How long captured funds stay pending before a release makes them available (Stripe's
    standard is two days; the sandbox uses 0)."""
    confirm_wait_ms: int = Field(default=5000, ge=0, alias="PAYFLOW_CONFIRM_WAIT_MS")
    """How long a confirm waits for the payment execution before answering `processing`."""
    stripe_api_key: str | None = Field(default=None, alias="STRIPE_API_KEY")
    """Enables the Stripe connector."""
    stripe_api_base: str | None = Field(default=None, alias="STRIPE_API_BASE")
    """Where the Stripe connector sends requests (tests point it at a local fake)."""
    stripe_webhook_secret: str | None = Field(default=None, alias="STRIPE_WEBHOOK_SECRET")
    """The whsec_ secret of Stripe's webhook to POST /v1/psp_webhooks/stripe."""
    razorpay_key_id: str | None = Field(default=None, alias="RAZORPAY_KEY_ID")
    razorpay_key_secret: str | None = Field(default=None, alias="RAZORPAY_KEY_SECRET")
    """Both enable the Razorpay connector."""
    razorpay_api_base: str | None = Field(default=None, alias="RAZORPAY_API_BASE")
    """Where the Razorpay connector sends requests (default: Razorpay's API)."""
    razorpay_webhook_secret: str | None = Field(default=None, alias="RAZORPAY_WEBHOOK_SECRET")
    """The secret of Razorpay's webhook to POST /v1/psp_webhooks/razorpay."""
    adyen_api_key: str | None = Field(default=None, alias="ADYEN_API_KEY")
    adyen_merchant_account: str | None = Field(default=None, alias="ADYEN_MERCHANT_ACCOUNT")
    """Both enable the Adyen connector."""
    adyen_checkout_base: str | None = Field(default=None, alias="ADYEN_CHECKOUT_BASE")
    """Adyen's Checkout API address with its version, such as
    https://checkout-test.adyen.com/v72 (the default); tests point it at a local fake."""
    adyen_hmac_key: str | None = Field(default=None, alias="ADYEN_HMAC_KEY")
    """The HMAC key (hex) of Adyen's webhook to POST /v1/psp_webhooks/adyen."""
    adyen_report_user: str | None = Field(default=None, alias="ADYEN_REPORT_USER")
    adyen_report_password: str | None = Field(default=None, alias="ADYEN_REPORT_PASSWORD")
    """The report user's credentials: both let reconciliation download Adyen's reports."""
    adyen_report_base: str | None = Field(default=None, alias="ADYEN_REPORT_BASE")
    """Where Adyen's reports are downloaded, such as https://ca-test.adyen.com/reports/download
    (the default); tests point it at a local fake."""
    simulator_webhook_secret: str | None = Field(
        default=None, alias="PAYFLOW_SIMULATOR_WEBHOOK_SECRET"
    )
    """What the simulator signs its own webhooks to POST /v1/psp_webhooks/simulator with (the
    sandbox sets one; unset: PayFlow refuses them and the simulator keeps them pending)."""
    api_url: str | None = Field(default=None, alias="PAYFLOW_API_URL")
    """The stack's own API address (no trailing slash), where the simulator_tick function POSTs
    the simulator's webhooks. The template sets it on that function only, from the RestAPI (on
    every function it would be a circular dependency: the API references its handler)."""
    faults: str = Field(default="", alias="PAYFLOW_FAULTS")
    """Fault-injection points to arm, for chaos runs (empty in production)."""
    log_level: str = Field(default="INFO", alias="PAYFLOW_LOG_LEVEL")
    """Level of the handlers' logs."""
    log_format: Literal["json", "text"] | None = Field(default=None, alias="PAYFLOW_LOG_FORMAT")
    """"json" or "text" (one readable line per request); unset: JSON in Lambda, text elsewhere."""
    lambda_function_name: str | None = Field(default=None, alias="AWS_LAMBDA_FUNCTION_NAME")
    """Set by the Lambda runtime: tells the handlers they run in Lambda (for the log format)."""
    tracing: bool = Field(default=True, alias="PAYFLOW_TRACING")
    """X-Ray traces through Powertools' Tracer (the sandbox turns it off: no daemon there)."""
    metrics_sink: str = Field(default="stdout", alias="PAYFLOW_METRICS_SINK")
    """Where EMF metric lines go: "stdout" (CloudWatch, via Lambda's logs), "memory" (the
    in-process aggregate behind /v1/sandbox/metrics and /metrics), both comma-separated, or
    "none"."""

    def default_rate_limits(self) -> tuple[int, int]:
        """(read, write) requests per second for a key without limits of its own; 0: none."""
        fallback = 0 if self.sandbox else STRIPE_TEST_MODE_LIMIT
        read = fallback if self.rate_limit_read is None else self.rate_limit_read
        write = fallback if self.rate_limit_write is None else self.rate_limit_write
        return read, write

    @classmethod
    def from_environ(cls, environ: dict[str, str] | None = None) -> Settings:
        source = os.environ if environ is None else environ
        return cls.model_validate(
            {
                k: v
                for k, v in source.items()
                if k.startswith(("PAYFLOW_", "STRIPE_", "RAZORPAY_", "ADYEN_"))
                or k == "AWS_LAMBDA_FUNCTION_NAME"
            }
        )


@Once
def get_settings() -> Settings:
    """The process's settings, read on first use."""
    return Settings.from_environ()
