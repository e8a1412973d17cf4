"""Shared fixtures: one embedded sandbox per test session, on free ports of 127.0.0.1."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
# Never let a test reach a real AWS account, whatever the developer's shell holds.
os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
)
os.environ.pop("AWS_PROFILE", None)

ADMIN_KEY = "sk_admin_tests"
IDEMPOTENCY_LEASE_MS = 1500


@pytest.fixture(scope="session")
def sandbox() -> Iterator[object]:
    from payflow.sandbox.runtime import Sandbox, SandboxConfig

    config = SandboxConfig(
        api_port=0,
        aws_port=0,
        admin_key=ADMIN_KEY,
        secret_key="sk_test_demo_for_tests",
        settings=(("PAYFLOW_IDEMPOTENCY_LEASE_MS", str(IDEMPOTENCY_LEASE_MS)),),
    )
    with Sandbox(config) as running:
        yield running


@pytest.fixture(scope="session")
def api_url(sandbox: object) -> str:
    return sandbox.api_url  # type: ignore[attr-defined,no-any-return]


def new_merchant(api_url: str) -> dict:
    response = requests.post(
        f"{api_url}/v1/sandbox/merchants",
        headers={"Authorization": f"Bearer {ADMIN_KEY}"},
        data={"name": "test merchant"},
        timeout=10,
    )
    response.raise_for_status()
    return response.json()


@pytest.fixture
def merchant(api_url: str) -> dict:
    """A merchant of its own for each test, so lists and keys never collide."""
    return new_merchant(api_url)


class Api:
    """A small client for tests: a merchant's key, Stripe's form encoding, keep-alive."""

    def __init__(self, base: str, key: str) -> None:
        self.base = base
        self.session = requests.Session()
        self.session.auth = (key, "")

    def post(self, path: str, data: dict | None = None, **kwargs: object) -> requests.Response:
        return self.session.post(self.base + path, data=data, timeout=30, **kwargs)

    def get(self, path: str, **kwargs: object) -> requests.Response:
        return self.session.get(self.base + path, timeout=30, **kwargs)


@pytest.fixture
def api(api_url: str, merchant: dict) -> Api:
    return Api(api_url, merchant["secret_key"])
