"""The scheduled simulator_tick function, as AWS runs it, against the sandbox's API on
127.0.0.1: it delivers the simulator's webhooks over PayFlow's own HTTP client and the
PaymentIntent completes; and the sandbox never runs it beside its own simulator poller."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from payflow.sandbox.runtime import Sandbox
from tests.conftest import Api
from tests.integration.test_async_methods import confirm, decide, settled, upi_method
from tests.integration.test_async_methods import simulator as simulator  # the fixture
from tests.integration.test_psp_webhooks import events_of

# What EventBridge hands a function on a schedule.
SCHEDULED_EVENT = {
    "version": "0",
    "id": "f5e6c0c6-0000-4000-8000-000000000001",
    "detail-type": "Scheduled Event",
    "source": "aws.events",
    "account": "000000000000",
    "time": "2026-12-01T16:00:00Z",
    "region": "us-east-1",
    "resources": ["arn:aws:events:us-east-1:000000000000:rule/payflow-dev-SimulatorTick"],
    "detail": {},
}


@pytest.fixture
def deployed_tick(sandbox: Sandbox) -> Iterator[Any]:
    """The simulator_tick handler with PAYFLOW_API_URL set as the template sets it, and the
    sandbox's own simulator poller stopped meanwhile, so that only the function delivers."""
    from app import simulator_tick

    sandbox.simulator_pollers.stop()
    os.environ["PAYFLOW_API_URL"] = sandbox.api_url
    Sandbox._reset_handler_state()
    try:
        yield simulator_tick
    finally:
        os.environ.pop("PAYFLOW_API_URL")
        Sandbox._reset_handler_state()
        sandbox.simulator_pollers.start()


def test_the_scheduled_function_delivers_the_customers_approval_and_the_payment_succeeds(
    api: Api, simulator: str, deployed_tick: Any
):
    # Given a UPI payment its customer approved while no simulator poller runs
    pi = confirm(api, upi_method(api)["id"])
    assert pi["status"] == "requires_action", pi
    assert decide(api, pi["id"], "approve").status_code == 200
    assert api.get(f"/v1/payment_intents/{pi['id']}").json()["status"] == "requires_action"

    # When EventBridge runs the function
    done = deployed_tick(SCHEDULED_EVENT, None)

    # Then it posted the simulator's webhooks to the API, which took them
    assert done["object"] == "simulator_tick" and done["webhooks"] == "sent"
    assert done["delivered"] >= 2  # authorized, captured (other tests' events may be due too)
    finished = settled(api, pi["id"])
    assert (finished["status"], finished["amount_received"]) == ("succeeded", 2000)

    # And a second run (a schedule may fire twice) moves it no further
    deployed_tick(SCHEDULED_EVENT, None)
    assert events_of(api, pi["id"]).count("payment_intent.succeeded") == 1


def test_the_sandbox_runs_the_simulators_clock_by_its_poller_and_never_the_schedule(
    sandbox: Sandbox,
):
    from app import app

    # Given the app's scheduled function
    assert "simulator_tick" in app.handler_map

    # Then none of the sandbox's pollers calls it: schedules are not event source mappings
    assert sandbox.provisioned is not None
    mapped = {mapping.function for mapping in sandbox.provisioned.event_source_mappings}
    assert mapped and mapped.isdisjoint({"simulator_tick", "SimulatorTick"})
    names = [poller.name for poller in sandbox.pollers.pollers]
    assert not any("simulator" in name.lower() for name in names), names
    # And the simulator's clock runs once, by its own poller
    assert [poller.name for poller in sandbox.simulator_pollers.pollers] == ["simulator"]
