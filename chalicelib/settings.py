"""All configuration, read from the environment once into one model.

Handlers never branch on where they run: the embedded sandbox, LocalStack and AWS differ only in
these values (and in boto3's own AWS_ENDPOINT_URL).
"""

from __future__ import annotations

import functools
import os

from pydantic import BaseModel, Field


class Settings(BaseModel):
    """PayFlow's configuration (environment variable names in each field's alias)."""

    payments_table: str = Field(alias="PAYFLOW_PAYMENTS_TABLE")
    idempotency_table: str = Field(alias="PAYFLOW_IDEMPOTENCY_TABLE")
    simulator_table: str = Field(alias="PAYFLOW_SIMULATOR_TABLE")
    webhook_queue_url: str | None = Field(default=None, alias="PAYFLOW_WEBHOOK_QUEUE_URL")
    admin_key: str = Field(default="sk_admin_payflow", alias="PAYFLOW_ADMIN_KEY")
    idempotency_ttl_seconds: int = Field(default=86_400, alias="PAYFLOW_IDEMPOTENCY_TTL_SECONDS")
    idempotency_lease_ms: int = Field(default=60_000, alias="PAYFLOW_IDEMPOTENCY_LEASE_MS")
    """How long an in-progress Idempotency-Key stays locked if its request dies."""
    api_key_cache_seconds: float = Field(default=60.0, alias="PAYFLOW_API_KEY_CACHE_SECONDS")
    """How long a Lambda instance trusts a resolved API key before asking DynamoDB again."""
    faults: str = Field(default="", alias="PAYFLOW_FAULTS")
    """Fault-injection points to arm, for chaos runs (empty in production)."""

    @classmethod
    def from_environ(cls, environ: dict[str, str] | None = None) -> Settings:
        source = os.environ if environ is None else environ
        return cls.model_validate({k: v for k, v in source.items() if k.startswith("PAYFLOW_")})


@functools.cache
def get_settings() -> Settings:
    """The process's settings, read on first use."""
    return Settings.from_environ()
