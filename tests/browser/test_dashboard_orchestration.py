"""The dashboard's orchestration views in a real browser: the payments list filtered by
connector and payment method (read through their indexes), a payment's Step Functions
execution with its state history and each call's raw connector answer, and the circuit history
on the connectors page."""

from __future__ import annotations

import time
from typing import Any

from tests.browser.conftest import screenshot
from tests.browser.test_dashboard import SEEN_WITHIN_MS, pay
from tests.conftest import Api
from tests.integration.test_orchestration import set_simulator, simulators, wait_for_cooldown


def route_first(api: Api, *connectors: str) -> None:
    """The merchant's simulators, tried in this order."""
    body = {
        "connectors": [
            {"id": c, "kind": "simulator", "priority": i + 1, "payment_method_types": ["card"]}
            for i, c in enumerate(connectors)
        ]
    }
    response = api.session.post(api.base + "/v1/routing", json=body, timeout=10)
    assert response.status_code == 200, response.text


def rows(page: Any) -> list[str]:
    return page.eval_on_selector_all("#payments tbody tr", "trs => trs.map(tr => tr.dataset.id)")


def wait_for_rows(page: Any, wanted: list[str]) -> None:
    """Until the list shows exactly `wanted`, in that order (a filter redraws the list)."""
    deadline = time.monotonic() + SEEN_WITHIN_MS / 1000
    while rows(page) != wanted:
        assert time.monotonic() < deadline, f"the list shows {rows(page)}, not {wanted}"
        page.wait_for_timeout(100)


def test_the_payments_list_filters_by_connector_and_method(dashboard: Any, api: Api) -> None:
    # Given: two payments at one connector, then one at another and a decline there
    first, second = simulators(api, "first", "second")
    at_first = [pay(api)["id"] for _ in range(2)]
    route_first(api, second, first)
    at_second = pay(api)["id"]
    declined = api.post(
        "/v1/payment_intents",
        {"amount": "900", "currency": "usd", "payment_method": "pm_card_chargeDeclined"},
    ).json()["id"]
    api.post(f"/v1/payment_intents/{declined}/confirm")
    dashboard.reload()
    dashboard.wait_for_selector(f"#payments tr[data-id='{declined}']", timeout=SEEN_WITHIN_MS)
    # The connector choices are the merchant's routing's
    dashboard.wait_for_selector(f"select[name=connector] option[value={second}]", state="attached")

    # When / Then: a connector alone is the list through its index
    dashboard.select_option("select[name=connector]", first)
    wait_for_rows(dashboard, list(reversed(at_first)))
    dashboard.select_option("select[name=connector]", second)
    wait_for_rows(dashboard, [declined, at_second])
    # With a status too it is a search that pins the connector
    dashboard.select_option("select[name=status]", "succeeded")
    wait_for_rows(dashboard, [at_second])
    dashboard.select_option("select[name=status]", "")
    dashboard.select_option("select[name=method]", "upi")
    dashboard.wait_for_selector("#payments-body .notice", timeout=SEEN_WITHIN_MS)
    assert "No payments match" in dashboard.text_content("#payments-body")
    dashboard.select_option("select[name=method]", "card")
    wait_for_rows(dashboard, [declined, at_second])
    screenshot(dashboard, "dashboard-payments-filtered")
    assert dashboard.console_errors == []


def test_a_payment_page_shows_its_execution_and_the_connectors_answers(
    dashboard: Any, api: Api
) -> None:
    # Given: the primary fails the confirm handler's call and the state machine's first try,
    # so the payment is handed to Step Functions, which retries and gets the answer
    primary, _ = simulators(api, "primary", "backup", minimum_calls=10)
    set_simulator(api, primary, fail_next_calls=2, fail_with="unavailable")
    paid = pay(api)

    # When
    dashboard.goto(dashboard.url.split("#")[0] + f"#/payments/{paid['id']}")
    execution = dashboard.wait_for_selector("ol.timeline li[data-kind=execution]")

    # Then: the execution with its state history in the timeline, after the handler's call
    assert f"{paid['id']}-attempt-1" in execution.text_content()
    assert "succeeded" in execution.text_content()
    history = execution.query_selector_all("tbody tr")
    types = [tr.get_attribute("data-type") for tr in history]
    assert types[0] == "ExecutionStarted" and types[-1] == "ExecutionSucceeded"
    failed = execution.query_selector_all("tbody tr.failed")
    assert failed and "PspUnavailable" in failed[0].text_content()
    assert "Authorize" in execution.text_content() and primary in execution.text_content()
    kinds = dashboard.eval_on_selector_all(
        "ol.timeline li", "items => items.map(li => li.dataset.kind)"
    )
    assert kinds.index("attempt") < kinds.index("execution")
    # And each PSP call's answer, folded: the failure's words, the authorization's fields
    answers = dashboard.locator("li[data-kind=attempt] details.answer")
    assert answers.count() == 3
    answers.first.locator("summary").click()
    assert "scripted unavailable" in answers.first.locator("pre").text_content()
    answers.last.locator("summary").click()
    last = answers.last.locator("pre").text_content()
    assert '"status": "authorized"' in last and "psp_reference" in last
    execution.scroll_into_view_if_needed()
    screenshot(dashboard, "dashboard-payment-execution")
    assert dashboard.console_errors == []


def test_the_connectors_page_shows_when_a_circuit_opened_and_closed(
    dashboard: Any, api: Api
) -> None:
    # Given: the primary's circuit opened on 3 failures, cooled down and closed on a probe
    primary, _ = simulators(api, "primary", "backup", minimum_calls=3, cooldown_seconds=1)
    set_simulator(api, primary, fail_next_calls=3, fail_with="unavailable")
    pay(api)
    wait_for_cooldown(primary, 1)
    pay(api)

    # When
    dashboard.click("a[data-nav=connectors]")
    dashboard.wait_for_selector(f"#circuit-moves tr[data-move='{primary}:open']")

    # Then: newest first, each move with its reason
    moves = dashboard.eval_on_selector_all(
        "#circuit-moves tbody tr", "trs => trs.map(tr => tr.dataset.move)"
    )
    assert moves == [f"{primary}:closed", f"{primary}:half_open", f"{primary}:open"]
    text = dashboard.text_content("#circuit-moves")
    assert "3 of 3 calls failed in 60 s" in text and "the probe call succeeded" in text
    screenshot(dashboard, "dashboard-connectors-circuits")
    assert dashboard.console_errors == []
