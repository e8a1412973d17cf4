"""The simulator's customer actions (UPI intent and collect, the wallet) without a sandbox: a
decision stands once, silence expires by the clock, and each sends its webhooks."""

from __future__ import annotations

from chalicelib.connectors.base import AuthorizationRequest
from chalicelib.connectors.simulator_customer import (
    CustomerAction,
    Decision,
    SimulatorCustomer,
    upi_uri,
)
from chalicelib.connectors.simulator_webhooks import SimulatorOutbox
from tests.unit.test_simulator_webhooks import SECRET, Clock, DictLedger, Receiver, settings


def request(pi: str = "pi_1", capture: bool = True) -> AuthorizationRequest:
    return AuthorizationRequest(pi, 2050, "inr", "pm_upi_intent", capture, f"{pi}:1:sim")


def test_an_approval_sends_authorized_then_captured_and_each_once():
    clock = Clock()
    ledger = DictLedger()
    outbox = SimulatorOutbox(ledger, clock=clock, wall_clock=clock)  # type: ignore[arg-type]
    customer = SimulatorCustomer(ledger, outbox, clock=clock)  # type: ignore[arg-type]
    customer.open(
        "sim",
        CustomerAction.UPI_INTENT,
        request(),
        psp_reference="sim_1",
        charge_id="ch_1",
        ttl_seconds=600,
    )
    assert customer.decide("sim_1", Decision.APPROVED)["decision"] == "approved"
    # A second decision (a refusal, the sweep) changes nothing and sends nothing new.
    assert customer.decide("sim_1", Decision.REFUSED)["decision"] == "approved"
    receiver = Receiver(clock)
    assert outbox.deliver(receiver, "http://payflow", SECRET, settings()) == 2
    assert receiver.received == [
        ("evt_sim_sim_1_authorized", "payment.authorized"),
        ("evt_sim_sim_1_captured", "payment.captured"),
    ]
    assert outbox.deliver(receiver, "http://payflow", SECRET, settings()) == 0


def test_silence_expires_by_the_clock_and_only_when_due():
    clock = Clock()
    ledger = DictLedger()
    outbox = SimulatorOutbox(ledger, clock=clock, wall_clock=clock)  # type: ignore[arg-type]
    customer = SimulatorCustomer(ledger, outbox, clock=clock)  # type: ignore[arg-type]
    for reference, ttl in (("sim_a", 480), ("sim_b", 600)):
        customer.open(
            "sim",
            CustomerAction.UPI_COLLECT,
            request(reference),
            psp_reference=reference,
            charge_id="ch",
            ttl_seconds=ttl,
        )
    clock.now += 479
    assert customer.expire_due() == 0
    clock.now += 1
    assert customer.expire_due() == 1
    clock.now += 200
    assert customer.expire_due() == 1
    assert customer.expire_due() == 0
    receiver = Receiver(clock)
    outbox.deliver(receiver, "http://payflow", SECRET, settings())
    assert sorted(receiver.received) == [
        ("evt_sim_sim_a_failed", "payment.failed"),
        ("evt_sim_sim_b_failed", "payment.failed"),
    ]


def test_the_deep_link_names_the_payee_amount_and_reference():
    uri = upi_uri("sim_1", 2050, "inr", "pi_1")
    assert uri == (
        "upi://pay?pa=payflow.simulator%40upi&pn=PayFlow%20Simulator&tr=sim_1&tn=pi_1"
        "&am=20.50&cu=INR"
    )
