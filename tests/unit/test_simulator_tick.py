"""The simulator's clock where no sandbox poller runs (the scheduled simulator_tick function on
AWS), without a sandbox: a ledger in a dict, a clock the test moves, and a post that verifies
what it was sent as PayFlow does."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from chalicelib.connectors.simulator_customer import CustomerAction, SimulatorCustomer
from chalicelib.connectors.simulator_webhooks import SimulatorOutbox, post_with
from chalicelib.services.simulator import SimulatorService
from chalicelib.webhooks.sender import SendResult
from tests.unit.test_simulator_customer import request
from tests.unit.test_simulator_webhooks import SECRET, Clock, DictLedger, Receiver, settings

API_URL = "https://abc123.execute-api.eu-west-1.amazonaws.com/api"


class Registry:
    """The one thing the tick asks of the connector registry: a simulator's settings."""

    simulator_settings = staticmethod(settings())


class RecordingReceiver(Receiver):
    """A Receiver that also keeps the URLs it was posted to."""

    def __init__(self, clock: Clock, status: int = 200) -> None:
        super().__init__(clock, status)
        self.urls: list[str] = []

    def __call__(self, url: str, body: bytes, headers: dict[str, str]) -> int:
        self.urls.append(url)
        return super().__call__(url, body, headers)


def simulator(
    clock: Clock, post: Any, *, api_url: str | None = API_URL, secret: str | None = SECRET
) -> tuple[SimulatorService, SimulatorCustomer]:
    ledger = DictLedger()
    outbox = SimulatorOutbox(ledger, clock=clock, wall_clock=clock)  # type: ignore[arg-type]
    customer = SimulatorCustomer(ledger, outbox, clock=clock)  # type: ignore[arg-type]
    service = SimulatorService(
        customer,
        outbox,
        Registry(),  # type: ignore[arg-type]
        None,  # type: ignore[arg-type]  # the tick reads no PaymentIntent
        api_url=api_url,
        webhook_secret=secret,
        post=post,
    )
    return service, customer


def open_collect(customer: SimulatorCustomer, reference: str, ttl: int) -> None:
    customer.open(
        "sim",
        CustomerAction.UPI_COLLECT,
        request(f"pi_{reference}"),
        psp_reference=reference,
        charge_id=f"ch_{reference}",
        ttl_seconds=ttl,
    )


def test_a_tick_expires_what_is_due_and_posts_its_webhooks_signed_to_the_api():
    # Given two UPI collect requests, one past its expiry by the clock
    clock = Clock()
    receiver = RecordingReceiver(clock)
    service, customer = simulator(clock, receiver)
    open_collect(customer, "sim_due", 480)
    open_collect(customer, "sim_later", 600)
    clock.now += 500

    # When the scheduled function ticks
    done = service.tick()

    # Then the due one expired and its failure reached PayFlow's simulator webhook, signed
    assert done == {"object": "simulator_tick", "expired": 1, "delivered": 1, "webhooks": "sent"}
    assert receiver.received == [("evt_sim_sim_due_failed", "payment.failed")]
    assert receiver.urls == [f"{API_URL}/v1/psp_webhooks/simulator"]

    # And a second tick at the same moment changes nothing (a schedule may fire twice)
    assert service.tick()["expired"] == 0 and service.tick()["delivered"] == 0
    assert len(receiver.received) == 1


def test_a_webhook_payflow_refuses_stays_pending_for_a_later_tick():
    # Given an expired request and an API that answers 500
    clock = Clock()
    receiver = RecordingReceiver(clock, status=500)
    service, customer = simulator(clock, receiver)
    open_collect(customer, "sim_1", 480)
    clock.now += 480
    assert service.tick()["delivered"] == 0

    # When the API answers again and the backoff has passed
    receiver.status = 200
    clock.now += 60

    # Then the next tick delivers it
    assert service.tick()["delivered"] == 1
    assert receiver.received[-1] == ("evt_sim_sim_1_failed", "payment.failed")


@pytest.mark.parametrize(
    ("api_url", "secret", "named"),
    [
        (None, SECRET, "PAYFLOW_API_URL"),
        (API_URL, None, "PAYFLOW_SIMULATOR_WEBHOOK_SECRET"),
    ],
)
def test_without_an_api_url_or_a_secret_actions_still_expire_and_webhooks_wait(
    api_url: str | None, secret: str | None, named: str, caplog: pytest.LogCaptureFixture
):
    # Given a function that was not told where the API is, or what to sign with
    clock = Clock()
    receiver = RecordingReceiver(clock)
    service, customer = simulator(clock, receiver, api_url=api_url, secret=secret)
    open_collect(customer, "sim_1", 480)
    clock.now += 480

    # When it ticks
    with caplog.at_level(logging.WARNING, logger="payflow.simulator"):
        done = service.tick()

    # Then the action expired, nothing was posted, and the log says what is missing
    assert done == {"object": "simulator_tick", "expired": 1, "delivered": 0, "webhooks": "waiting"}
    assert receiver.received == []
    assert named in caplog.text and "webhooks wait" in caplog.text


class FakeSender:
    """The webhook HTTP client's interface, answering `result` and keeping what it was sent."""

    def __init__(self, result: SendResult) -> None:
        self.result = result
        self.sent: list[tuple[str, bytes, dict[str, str]]] = []

    def post(self, url: str, body: bytes, headers: Any) -> SendResult:
        self.sent.append((url, body, dict(headers)))
        return self.result


def test_posting_through_the_webhook_client_answers_its_status_or_raises_when_none_came():
    # Given the webhook client answering 202, then failing to connect
    answered = FakeSender(SendResult(202, 5, response="ok"))
    unreachable = FakeSender(SendResult(None, 5, error="connection refused"))

    # Then a post over it gives the status, or the OSError the outbox keeps an event pending on
    assert post_with(answered)("https://api/x", b"{}", {"A": "b"}) == 202
    assert answered.sent == [("https://api/x", b"{}", {"A": "b"})]
    with pytest.raises(OSError, match="connection refused"):
        post_with(unreachable)("https://api/x", b"{}", {})
