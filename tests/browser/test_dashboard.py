"""The dashboard in a real browser, against the session's sandbox: sign in, a payment made
through the API appears, its timeline, resending a delivery, capture, and no console errors.

Each test is a user's path through the pages; screenshots land in build/screenshots/ (the ones
in docs/img/ are copied from there by `make screenshots`).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.browser.conftest import screenshot
from tests.conftest import Api
from tests.integration.test_analytics import own_simulators
from tests.integration.webhook_receiver import Receiver, receiving

# The pages poll every 3 s; a change must show within two polls.
SEEN_WITHIN_MS = 8000


@pytest.fixture
def receiver(api: Api) -> Iterator[Receiver]:
    """A webhook endpoint of the merchant's whose first answer is a 500, then 200s."""
    with receiving([500]) as receiving_end:
        response = api.post(
            "/v1/webhook_endpoints", {"url": receiving_end.url, "enabled_events[]": ["*"]}
        )
        assert response.status_code == 200, response.text
        yield receiving_end
        api.session.delete(f"{api.base}/v1/webhook_endpoints/{response.json()['id']}")


def pay(api: Api, **extra: str) -> dict:
    response = api.post(
        "/v1/payment_intents",
        {
            "amount": "4200",
            "currency": "usd",
            "payment_method": "pm_card_visa",
            "confirm": "true",
            **extra,
        },
    )
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def test_a_wrong_key_is_refused_and_nothing_is_kept(page: Any, api_url: str) -> None:
    page.goto(f"{api_url}/dashboard")
    page.fill("#secret-key", "sk_test_not_a_key")
    page.click("#signin button[type=submit]")
    page.wait_for_selector("#signin .error:not(:empty)")
    assert "key" in page.text_content("#signin .error").lower()
    assert page.evaluate("sessionStorage.length") == 0
    # The refused sign-in's 401 is the one console error the browser reports.
    assert [e for e in page.console_errors if "401" not in e] == []


def test_a_payment_made_through_the_api_appears_without_a_reload(dashboard: Any, api: Api) -> None:
    started = time.monotonic()
    assert "No payments match" in dashboard.text_content("#payments-body")

    paid = pay(api, **{"metadata[order_id]": "A-17"})

    row = dashboard.wait_for_selector(
        f"#payments tr[data-id='{paid['id']}']", timeout=SEEN_WITHIN_MS
    )
    assert "$42.00" in row.text_content()
    assert "order_id=A-17" in row.text_content()
    assert dashboard.evaluate("performance.getEntriesByType('navigation').length") == 1

    dashboard.fill("input[name=search]", "order_id:A-17")
    dashboard.press("input[name=search]", "Enter")
    dashboard.wait_for_selector("#payments tbody tr:only-child[data-id='" + paid["id"] + "']")
    dashboard.fill("input[name=search]", "order_id:nope")
    dashboard.press("input[name=search]", "Enter")
    dashboard.wait_for_selector("#payments-body .notice")
    dashboard.fill("input[name=search]", "")
    dashboard.press("input[name=search]", "Enter")
    dashboard.wait_for_selector(f"#payments tr[data-id='{paid['id']}']")
    screenshot(dashboard, "dashboard-payments")
    assert dashboard.console_errors == []
    assert time.monotonic() - started < 20


def test_the_timeline_tells_the_story_and_a_delivery_is_resent(
    dashboard: Any, api: Api, receiver: Receiver
) -> None:
    paid = pay(api)
    receiver.wait_for(lambda got: len(got) >= 4)

    dashboard.click(f"#payments tr[data-id='{paid['id']}'] a", timeout=SEEN_WITHIN_MS)
    dashboard.wait_for_selector("ol.timeline li[data-kind=event]")
    # The page's CSP forbids eval, so waits are selectors and locators, not JS expressions.
    dashboard.locator("ol.timeline li", has_text="charge.succeeded").first.wait_for(
        timeout=SEEN_WITHIN_MS
    )
    kinds = dashboard.eval_on_selector_all(
        "ol.timeline li", "items => items.map(li => li.dataset.kind)"
    )
    assert kinds[0] == "created"
    for kind in ("routing", "attempt", "charge", "ledger", "event"):
        assert kind in kinds, kinds
    # Time order: the PSP call comes before the charge it made, which comes before its event.
    assert kinds.index("attempt") < kinds.index("charge")
    text = dashboard.text_content("ol.timeline")
    assert "PSP call to simulator" in text
    assert re.search(r"payment_intent\.created.*payment_intent\.succeeded", text, re.S)

    delivered_before = receiver.count()
    delivery = dashboard.locator("li.delivery").first
    delivery.locator("button.resend").click()
    receiver.wait_for(lambda got: len(got) > delivered_before)
    dashboard.locator("ul.attempts li", has_text="manual").first.wait_for(timeout=SEEN_WITHIN_MS)
    screenshot(dashboard, "dashboard-payment")
    assert dashboard.console_errors == []


def test_capture_from_the_payment_page(dashboard: Any, api: Api) -> None:
    held = pay(api, capture_method="manual")
    assert held["status"] == "requires_capture"
    dashboard.goto(dashboard.url.split("#")[0] + f"#/payments/{held['id']}")
    dashboard.fill("#capture-amount", "30")
    dashboard.click("button#capture")
    dashboard.wait_for_selector("#summary .badge-succeeded", timeout=SEEN_WITHIN_MS)
    assert api.get(f"/v1/payment_intents/{held['id']}").json()["amount_received"] == 3000
    dashboard.wait_for_selector("button#refund")
    assert dashboard.console_errors == []


def test_webhook_endpoints_are_managed_from_the_page(dashboard: Any, api: Api) -> None:
    with receiving() as hook:
        dashboard.click("a[data-nav=webhooks]")
        dashboard.fill("#create-endpoint input[name=url]", hook.url)
        dashboard.click("button#add-endpoint")
        secret = dashboard.wait_for_selector("#new-secret").text_content()
        assert secret.startswith("whsec_")
        card = dashboard.locator(".endpoint").first
        endpoint_id = card.get_attribute("data-endpoint")
        assert card.locator(".badge").text_content() == "enabled"

        pay(api)
        # payment_intent.created, payment_intent.succeeded, charge.succeeded
        hook.wait_for(lambda got: len(got) >= 3)
        dashboard.reload()
        dashboard.locator(".endpoint li.delivery", has_text="charge.succeeded").first.wait_for()
        assert "Dead-letter queue" in dashboard.text_content("#dlq-state")
        dashboard.click("button#redrive")
        dashboard.locator("#dlq-state", has_text="moved back").wait_for()
        screenshot(dashboard, "dashboard-webhooks")

        dashboard.locator(".endpoint button", has_text="Disable").click()
        dashboard.locator(".endpoint .badge-disabled").first.wait_for()
        assert api.get(f"/v1/webhook_endpoints/{endpoint_id}").json()["status"] == "disabled"

        dashboard.on("dialog", lambda dialog: dialog.accept())
        dashboard.locator(".endpoint button", has_text="Delete").click()
        dashboard.wait_for_selector("#endpoints .notice")
        assert api.get(f"/v1/webhook_endpoints/{endpoint_id}").status_code == 404
    # The 404 above came from the test's own client, not the page.
    assert dashboard.console_errors == []


def test_routing_rules_are_validated_before_and_by_the_api(dashboard: Any, api: Api) -> None:
    dashboard.click("a[data-nav=connectors]")
    dashboard.wait_for_selector("#connectors tr[data-connector=simulator]")
    dashboard.wait_for_selector("#routing-json")
    screenshot(dashboard, "dashboard-connectors")

    dashboard.fill("#routing-json", "{not json")
    dashboard.click("button#save-routing")
    assert (
        "Not JSON" in dashboard.wait_for_selector("#routing-message .notice-error").text_content()
    )

    dashboard.fill(
        "#routing-json",
        '{"connectors": [{"id": "simulator", "kind": "simulator", "min_amount": -5}]}',
    )
    dashboard.click("button#save-routing")
    refused = dashboard.wait_for_selector("#routing-message .notice-error").text_content()
    assert "min_amount" in refused
    assert api.get("/v1/routing").json()["custom"] is False

    dashboard.fill(
        "#routing-json", '{"connectors": [{"id": "simulator_backup", "kind": "simulator"}]}'
    )
    dashboard.click("button#save-routing")
    dashboard.wait_for_selector("#routing-message .notice-info")
    routing = api.get("/v1/routing").json()
    assert routing["custom"] is True
    assert [c["id"] for c in routing["connectors"]] == ["simulator_backup"]
    # The refused save's 400 is the only console error the browser reports.
    assert [e for e in dashboard.console_errors if "400" not in e] == []


def test_a_connector_fault_switched_on_in_the_page_raises_the_alert(
    dashboard: Any, api: Api, api_url: str
) -> None:
    # Given a merchant with simulators of its own, whose rule alerts under 50% success over 3
    # calls in 2 minutes
    settings = {"threshold": "0.5", "window_seconds": "120", "minimum_calls": "3"}
    assert api.post("/v1/alert_settings", settings).status_code == 200
    primary, _ = own_simulators(api)
    dashboard.click("a[data-nav=connectors]")
    switch = dashboard.locator(f"form.switch[data-connector={primary}]")
    try:
        # When the simulator's error rate is switched to 1 from the page, and payments follow
        switch.locator("input[name=error_rate]").fill("1")
        switch.locator("button.apply").click()
        dashboard.locator(f"#connectors tr[data-connector={primary}]").wait_for()
        simulator = requests_connector(api, primary)
        assert simulator["simulator"]["error_rate"] == 1
        for _ in range(3):
            pay(api)
        # Then the alert shows in the top bar and in the history, and went out as an event
        dashboard.wait_for_selector(f".alert-pill[data-alert={primary}]", timeout=SEEN_WITHIN_MS)
        dashboard.wait_for_selector("#alerts-table .badge-firing", timeout=SEEN_WITHIN_MS)
        events = api.get("/v1/events", params={"type": "payflow.connector.alert"}).json()["data"]
        assert [e["data"]["object"]["connector"] for e in events] == [primary]
        screenshot(dashboard, "dashboard-connectors")
    finally:
        switch.locator("button.reset").click()
        dashboard.wait_for_selector(f"form.switch[data-connector={primary}] input[value='0']")
    assert requests_connector(api, primary)["simulator"]["error_rate"] == 0
    assert dashboard.console_errors == []


def requests_connector(api: Api, connector: str) -> dict:
    listed = api.get("/v1/connectors").json()["data"]
    return next(c for c in listed if c["id"] == connector)  # type: ignore[no-any-return]


def test_analytics_page_draws_the_merchants_calls(dashboard: Any, api: Api) -> None:
    for _ in range(2):
        pay(api)
    declined = api.post(
        "/v1/payment_intents",
        {"amount": "900", "currency": "usd", "payment_method": "pm_card_chargeDeclined"},
    )
    assert declined.status_code == 200
    api.post(f"/v1/payment_intents/{declined.json()['id']}/confirm")
    # The calls reach the counters through the stream, a moment after the answers.
    deadline = time.monotonic() + 15
    while api.get("/v1/analytics").json()["total"]["reasons"].get("generic_decline") is None:
        assert time.monotonic() < deadline, "the decline was not folded"
        time.sleep(0.2)
    dashboard.click("a[data-nav=analytics]")
    dashboard.wait_for_selector("#chart-connector canvas")
    dashboard.wait_for_selector("#latency tbody tr")
    assert "generic_decline" in dashboard.text_content("#reasons")
    timing = dashboard.locator("#analytics-timing")
    assert int(timing.get_attribute("data-render-ms")) < 1000
    screenshot(dashboard, "dashboard-analytics")
    assert dashboard.console_errors == []
