"""UPI (intent and collect) and the wallet at the simulator, through HTTP on the embedded
sandbox: the customer approves, refuses or stays silent away from PayFlow, the simulator says
so by its own signed webhooks (late, twice, out of order when asked), and the PaymentIntent
moves once, with its events and a balanced ledger."""

from __future__ import annotations

import base64
import json
import time
import uuid
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from chalicelib.connectors.simulator_webhooks import SIGNATURE_HEADER, sign
from chalicelib.container import services
from payflow.sandbox.pollers import wait_for
from tests.conftest import ADMIN_KEY, Api
from tests.integration.test_psp_webhooks import assert_ledger_balanced, events_of


@pytest.fixture
def simulator(api: Api) -> str:
    """This merchant routes every method to a simulator of its own (its settings are its own)."""
    connector_id = f"sim_{uuid.uuid4().hex[:10]}"
    connector = {
        "id": connector_id,
        "kind": "simulator",
        "payment_method_types": ["card", "upi", "wallet"],
    }
    response = api.session.post(api.base + "/v1/routing", json={"connectors": [connector]})
    assert response.status_code == 200, response.text
    return connector_id


def set_simulator(api: Api, connector_id: str, **settings: Any) -> None:
    response = requests.post(
        f"{api.base}/v1/connectors/{connector_id}",
        data={k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in settings.items()},
        headers={"Authorization": f"Bearer {ADMIN_KEY}"},
        timeout=10,
    )
    assert response.status_code == 200, response.text


def upi_method(api: Api, vpa: str | None = None) -> dict[str, Any]:
    params = {"type": "upi", **({"upi[vpa]": vpa} if vpa else {})}
    response = api.post("/v1/payment_methods", params)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def confirm(api: Api, pm: str, **extra: str) -> dict[str, Any]:
    response = api.post(
        "/v1/payment_intents",
        {"amount": 2000, "currency": "inr", "payment_method": pm, "confirm": "true", **extra},
    )
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def decide(api: Api, pi_id: str, outcome: str) -> requests.Response:
    return api.post(f"/v1/sandbox/payment_intents/{pi_id}/customer_action", {"outcome": outcome})


def settled(api: Api, pi_id: str) -> dict[str, Any]:
    """The PaymentIntent once the simulator's webhook has moved it on from requires_action."""
    found: dict[str, Any] = {}

    def moved() -> bool:
        found.update(api.get(f"/v1/payment_intents/{pi_id}").json())
        return found["status"] != "requires_action"

    wait_for(moved, timeout=15)
    return found


def test_a_upi_intent_shows_a_qr_code_and_succeeds_when_the_customer_approves(
    api: Api, simulator: str
):
    # Given a UPI method without a VPA: an intent
    pm = upi_method(api)
    assert pm["upi"] == {"vpa": None}

    # When the PaymentIntent is confirmed
    pi = confirm(api, pm["id"])

    # Then it waits for the customer with a QR code and a upi://pay deep link, in Stripe's shape
    assert pi["status"] == "requires_action", pi
    action = pi["next_action"]
    assert action["type"] == "upi_handle_redirect_or_display_qr_code"
    shown = action["upi_handle_redirect_or_display_qr_code"]
    assert shown["hosted_instructions_url"].endswith(f"/{pi['id']}/customer_action")
    qr = shown["qr_code"]
    assert qr["expires_at"] - time.time() == pytest.approx(600, abs=30)
    png = base64.b64decode(qr["image_url_png"].removeprefix("data:image/png;base64,"))
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    svg = base64.b64decode(qr["image_url_svg"].removeprefix("data:image/svg+xml;base64,"))
    assert svg.startswith(b'<svg xmlns="http://www.w3.org/2000/svg"')
    uri = action["use_stripe_sdk"]["payflow_upi_uri"]
    link = urlsplit(uri)
    query = parse_qs(link.query)
    assert (link.scheme, link.netloc) == ("upi", "pay")
    assert (query["am"], query["cu"], query["tn"]) == (["20.00"], ["INR"], [pi["id"]])

    # When the customer approves in their UPI app
    decided = decide(api, pi["id"], "approve")
    assert decided.status_code == 200, decided.text
    assert decided.json()["decision"] == "approved"

    # Then the simulator's webhook makes it succeed, once
    done = settled(api, pi["id"])
    assert (done["status"], done["amount_received"]) == ("succeeded", 2000)
    assert done["next_action"] is None
    assert events_of(api, pi["id"]).count("payment_intent.succeeded") == 1
    assert_ledger_balanced(api)
    # A second decision changes nothing: the first one stands.
    again = decide(api, pi["id"], "refuse")
    assert (
        again.status_code == 400
        and again.json()["error"]["code"] == "payment_intent_unexpected_state"
    )


def test_a_refused_collect_request_fails_with_the_customers_decline(api: Api, simulator: str):
    pm = upi_method(api, "customer@okaxis")
    assert pm["upi"] == {"vpa": "customer@okaxis"}
    pi = confirm(api, pm["id"])
    assert pi["status"] == "requires_action"
    assert pi["next_action"]["type"] == "upi_await_notification"
    sdk = pi["next_action"]["use_stripe_sdk"]
    assert sdk["payflow_expires_at"] - time.time() == pytest.approx(480, abs=30)

    assert decide(api, pi["id"], "refuse").json()["decision"] == "refused"

    failed = settled(api, pi["id"])
    assert failed["status"] == "requires_payment_method"
    assert failed["last_payment_error"]["code"] == "payment_method_customer_decline"
    assert events_of(api, pi["id"]).count("payment_intent.payment_failed") == 1
    assert_ledger_balanced(api)


def test_a_silent_customer_lets_the_collect_request_expire_by_the_clock(
    api: Api, simulator: str, business_clock: Any
):
    # Given a collect request nobody answers
    pi = confirm(api, upi_method(api, "silent@okhdfc")["id"])
    assert pi["status"] == "requires_action"

    # When the business clock passes its 480 seconds (no test sleeps through them)
    business_clock(481)

    # Then the simulator's sweep expires it and its webhook fails the payment
    failed = settled(api, pi["id"])
    assert failed["status"] == "requires_payment_method"
    assert failed["last_payment_error"]["code"] == "payment_intent_payment_attempt_expired"
    late = decide(api, pi["id"], "approve")
    assert late.status_code == 400


def test_an_intent_waits_its_own_expiry_set_at_run_time(
    api: Api, simulator: str, business_clock: Any
):
    set_simulator(api, simulator, upi_intent_expiry_seconds=30)
    pi = confirm(api, upi_method(api)["id"])
    qr = pi["next_action"]["upi_handle_redirect_or_display_qr_code"]["qr_code"]
    assert qr["expires_at"] - time.time() == pytest.approx(30, abs=10)
    business_clock(20)
    assert services().simulator.expire_due() == 0
    assert api.get(f"/v1/payment_intents/{pi['id']}").json()["status"] == "requires_action"
    business_clock(45)
    assert settled(api, pi["id"])["last_payment_error"]["code"] == (
        "payment_intent_payment_attempt_expired"
    )


def test_duplicated_and_reordered_webhooks_are_applied_once(api: Api, simulator: str):
    # Given a simulator that sends every webhook twice and each batch shuffled
    set_simulator(api, simulator, webhook_duplicate_rate=1, webhook_reorder=True, seed=7)
    pis = [confirm(api, upi_method(api)["id"]) for _ in range(3)]

    # When every customer approves at once (one batch: authorized and captured of each)
    for pi in pis:
        decide(api, pi["id"], "approve")

    # Then each payment succeeded exactly once, and every provider event was stored once
    for pi in pis:
        done = settled(api, pi["id"])
        assert done["status"] == "succeeded"
        assert events_of(api, pi["id"]).count("payment_intent.succeeded") == 1
        reference = services().payment_intents.retrieve(api_merchant(api), pi["id"]).psp_reference
        for kind in ("authorized", "captured"):
            # The PaymentIntent succeeds on the first of them; the other may still be on its way.
            event_id = f"evt_sim_{reference}_{kind}"
            wait_for(lambda event_id=event_id: applied(event_id), timeout=15)
    assert_ledger_balanced(api)


def applied(event_id: str) -> bool:
    stored = services().psp_events.stored("simulator", event_id)
    return bool(stored and stored["applied"])


def api_merchant(api: Api) -> str:
    return services().merchants.authenticate(api.session.auth[0])


def test_the_wallet_asks_for_approval_on_its_page_and_declines(api: Api, simulator: str):
    # A wallet payment goes to the wallet's approval page and back
    pi = confirm(api, "pm_wallet", return_url="https://shop.example/done")
    assert pi["status"] == "requires_action"
    redirect = pi["next_action"]["redirect_to_url"]
    assert redirect == {
        "url": f"/v1/sandbox/payment_intents/{pi['id']}/customer_action",
        "return_url": "https://shop.example/done",
    }
    assert decide(api, pi["id"], "approve").status_code == 200
    assert settled(api, pi["id"])["status"] == "succeeded"

    # The customer may decline there
    refused = confirm(api, "pm_wallet")
    decide(api, refused["id"], "refuse")
    assert settled(api, refused["id"])["last_payment_error"]["code"] == (
        "payment_method_customer_decline"
    )

    # And the wallet itself may decline at once
    declined = api.post(
        "/v1/payment_intents",
        {
            "amount": 2000,
            "currency": "inr",
            "payment_method": "pm_wallet_declined",
            "confirm": "true",
        },
    )
    assert declined.status_code == 402
    error = declined.json()["error"]
    assert (error["code"], error["decline_code"]) == (
        "payment_method_provider_decline",
        "insufficient_funds",
    )


def test_bad_upi_input_is_refused_and_changes_nothing(api: Api, simulator: str):
    bad = api.post("/v1/payment_methods", {"type": "upi", "upi[vpa]": "not a vpa"})
    assert bad.status_code == 400
    assert (bad.json()["error"]["code"], bad.json()["error"]["param"]) == (
        "payment_method_invalid_parameter",
        "upi[vpa]",
    )
    unknown = api.post("/v1/payment_methods", {"type": "upi", "upi[flow]": "collect"})
    assert unknown.status_code == 400
    assert unknown.json()["error"]["code"] == "parameter_unknown"
    card = api.post("/v1/payment_methods", {"type": "card", "upi[vpa]": "a@okaxis"})
    assert card.status_code == 400
    outcome = decide(api, confirm(api, upi_method(api)["id"])["id"], "maybe")
    assert outcome.status_code == 400
    assert outcome.json()["error"]["param"] == "outcome"


def test_a_forged_simulator_webhook_is_refused(api: Api, simulator: str):
    pi = confirm(api, upi_method(api)["id"])
    body = json.dumps(
        {
            "id": f"evt_forged_{uuid.uuid4().hex}",
            "type": "payment.captured",
            "data": {"object": {"payment_intent": pi["id"], "psp_reference": "sim_x"}},
        }
    ).encode()
    forged = requests.post(
        f"{api.base}/v1/psp_webhooks/simulator",
        data=body,
        headers={SIGNATURE_HEADER: sign("guess", body, int(time.time()))},
        timeout=10,
    )
    assert forged.status_code == 400
    assert forged.json()["error"]["code"] == "psp_webhook_invalid"
    assert api.get(f"/v1/payment_intents/{pi['id']}").json()["status"] == "requires_action"
