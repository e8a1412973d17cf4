"""Shared fixtures: one embedded sandbox per test session, on free ports of 127.0.0.1."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests

from tests.conformance.recorder import RECORDER, recorded_session

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
CONFIRM_WAIT_MS = 3000
WEBHOOK_RETRY_SCHEDULE = "0,0,1"
STRIPE_WEBHOOK_SECRET = "whsec_psp_webhooks_in_tests"
RAZORPAY_WEBHOOK_SECRET = "razorpay_webhook_secret_in_tests"


class FunctionRegistry(dict):
    """Lambda functions tests register beside the app's (the sandbox resolves both)."""

    def resolve(self, name: str) -> object | None:
        return self.get(name)


@pytest.fixture(scope="session")
def functions() -> FunctionRegistry:
    return FunctionRegistry()


@pytest.fixture(scope="session")
def fake_stripe() -> Iterator[object]:
    """A fake Stripe API on 127.0.0.1 that the sandbox's Stripe connector talks to."""
    from tests.fakes.stripe_server import FakeStripe

    with FakeStripe() as server:
        yield server


@pytest.fixture(scope="session")
def fake_razorpay() -> Iterator[object]:
    """A fake Razorpay API on 127.0.0.1 that the sandbox's Razorpay connector talks to."""
    from tests.fakes.razorpay_server import FakeRazorpay

    with FakeRazorpay() as server:
        yield server


@pytest.fixture(scope="session")
def fake_adyen() -> Iterator[object]:
    """A fake Adyen Checkout API on 127.0.0.1 that the sandbox's Adyen connector talks to."""
    from tests.fakes.adyen_server import FakeAdyen

    with FakeAdyen() as server:
        yield server


@pytest.fixture(scope="session")
def sandbox(
    functions: FunctionRegistry, fake_stripe: object, fake_razorpay: object, fake_adyen: object
) -> Iterator[object]:
    from payflow.sandbox.runtime import Sandbox, SandboxConfig
    from tests.fakes import adyen_server, razorpay_server

    config = SandboxConfig(
        api_port=0,
        aws_port=0,
        admin_key=ADMIN_KEY,
        secret_key="sk_test_demo_for_tests",
        settings=(
            ("PAYFLOW_IDEMPOTENCY_LEASE_MS", str(IDEMPOTENCY_LEASE_MS)),
            ("PAYFLOW_CONFIRM_WAIT_MS", str(CONFIRM_WAIT_MS)),
            ("STRIPE_API_KEY", "sk_test_fake_stripe"),
            ("STRIPE_API_BASE", fake_stripe.url),  # type: ignore[attr-defined]
            ("STRIPE_WEBHOOK_SECRET", STRIPE_WEBHOOK_SECRET),
            ("RAZORPAY_KEY_ID", razorpay_server.KEY_ID),
            ("RAZORPAY_KEY_SECRET", razorpay_server.KEY_SECRET),
            ("RAZORPAY_API_BASE", fake_razorpay.url),  # type: ignore[attr-defined]
            ("RAZORPAY_WEBHOOK_SECRET", RAZORPAY_WEBHOOK_SECRET),
            ("ADYEN_API_KEY", adyen_server.API_KEY),
            ("ADYEN_MERCHANT_ACCOUNT", adyen_server.MERCHANT_ACCOUNT),
            ("ADYEN_CHECKOUT_BASE", f"{fake_adyen.url}/v72"),  # type: ignore[attr-defined]
            ("ADYEN_HMAC_KEY", adyen_server.HMAC_KEY),
            ("ADYEN_REPORT_USER", adyen_server.REPORT_USER),
            ("ADYEN_REPORT_PASSWORD", adyen_server.REPORT_PASSWORD),
            ("ADYEN_REPORT_BASE", f"{fake_adyen.url}/reports/download"),  # type: ignore[attr-defined]
            # Three webhook attempts: at once, at once again, one second later (SQS visibility
            # is in whole seconds); the queue's maxReceiveCount follows the schedule's length.
            ("PAYFLOW_WEBHOOK_RETRY_SCHEDULE", WEBHOOK_RETRY_SCHEDULE),
            ("PAYFLOW_WEBHOOK_TIMEOUT_SECONDS", "2"),
        ),
        # Step Functions Retry waits (whole seconds in ASL) pass 100 times faster.
        time_scale=0.01,
        extra_functions=functions.resolve,
    )
    with Sandbox(config) as running:
        yield running


@pytest.fixture(scope="session")
def api_url(sandbox: object) -> str:
    return sandbox.api_url  # type: ignore[attr-defined,no-any-return]


def new_merchant(api_url: str) -> dict:
    response = recorded_session().post(
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
    """A small client for tests: a merchant's key, Stripe's form encoding, keep-alive; every
    body it receives is checked against Stripe's schemas."""

    def __init__(self, base: str, key: str) -> None:
        self.base = base
        self.session = recorded_session()
        self.session.auth = (key, "")

    def post(self, path: str, data: dict | None = None, **kwargs: object) -> requests.Response:
        return self.session.post(self.base + path, data=data, timeout=30, **kwargs)

    def get(self, path: str, **kwargs: object) -> requests.Response:
        return self.session.get(self.base + path, timeout=30, **kwargs)


@pytest.fixture
def api(api_url: str, merchant: dict) -> Api:
    return Api(api_url, merchant["secret_key"])


@pytest.fixture
def business_clock(api_url: str) -> Iterator[Callable[[int], None]]:
    """`advance(seconds)` sets the sandbox's business clock that far ahead of now (what UPI
    expiry and `created` times read; never the wall clock); the test's end puts it back."""

    def admin(data: dict[str, str]) -> requests.Response:
        return requests.post(
            f"{api_url}/v1/sandbox/clock",
            data=data,
            headers={"Authorization": f"Bearer {ADMIN_KEY}"},
            timeout=10,
        )

    def advance(seconds: int) -> None:
        response = admin({"now": str(int(time.time()) + seconds)})
        assert response.status_code == 200, response.text

    yield advance
    admin({"reset": "true"})


@pytest.fixture(autouse=True)
def _moto_port_restored(monkeypatch: pytest.MonkeyPatch) -> None:
    """A test that starts an embedded AWS of its own rewrites the process-wide MOTO_PORT; the
    session sandbox's comes back after it (in parallel runs, test files meet in other orders)."""
    if "MOTO_PORT" in os.environ:
        monkeypatch.setenv("MOTO_PORT", os.environ["MOTO_PORT"])


# -- conformance: every body the suite receives validates against Stripe's schemas ------------


@pytest.fixture(autouse=True)
def conforming_bodies(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail the test (at teardown) when a body it received deviates from Stripe's schema."""
    RECORDER.current_test = request.node.nodeid
    yield
    RECORDER.current_test = None
    failures = RECORDER.failures_of(request.node.nodeid)
    if failures:
        pytest.fail(
            "bodies that do not validate against Stripe's schemas:\n"
            + "\n".join(f"  {f.source}: {f.problem}" for f in failures),
            pytrace=False,
        )


class ParallelTally:
    """Under pytest-xdist each worker has its own recorder: the workers send their tallies to
    the controller, which prints the sum and fails the run on any failure."""

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: object, error: object) -> None:
        tally = getattr(node, "workeroutput", {}).get("conformance")
        if tally:
            RECORDER.add(tally)


def pytest_configure(config: pytest.Config) -> None:
    if config.pluginmanager.hasplugin("xdist") and not hasattr(config, "workerinput"):
        config.pluginmanager.register(ParallelTally(), "conformance-tally")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if RECORDER.validated or RECORDER.failures:
        terminalreporter.section("Stripe schema conformance")
        for line in RECORDER.summary():
            terminalreporter.write_line(line)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput["conformance"] = RECORDER.tally()
        return
    # Bodies recorded outside any test (a receiver thread after its test ended) count too.
    if RECORDER.failures and exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
