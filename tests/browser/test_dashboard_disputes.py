"""Disputes in a real browser, against the session's sandbox: a dispute the sandbox's bank
opens appears in the list without a reload, its page shows the money withdrawn, evidence is
saved and then submitted (the API shows it under review with that evidence), a payment's page
links to its dispute, and a dispute accepted from the page is lost, the ledger balanced."""

from __future__ import annotations

from typing import Any

from chalicelib.container import services
from tests.browser.conftest import screenshot
from tests.browser.test_dashboard import SEEN_WITHIN_MS, pay
from tests.conftest import Api

DISPUTE_FEE = 1500


def open_dispute(api: Api, charge: str, **extra: str) -> dict:
    """The cardholder's bank opens a chargeback (the sandbox's provider reports it)."""
    response = api.post(
        f"/v1/sandbox/charges/{charge}/dispute", {"outcome": "needs_response", **extra}
    )
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def test_a_dispute_is_listed_and_answered_with_evidence(dashboard: Any, api: Api) -> None:
    # Given a payment, and the disputes page open before anything is disputed
    paid = pay(api)
    dashboard.click("a[data-nav=disputes]")
    assert "No disputes" in dashboard.wait_for_selector("#disputes-body .notice").text_content()

    # When the cardholder's bank disputes it
    opened = open_dispute(api, paid["latest_charge"], reason="product_not_received")

    # Then it appears in the list, linked to its payment
    row = dashboard.wait_for_selector(
        f"#disputes tr[data-id='{opened['id']}']", timeout=SEEN_WITHIN_MS
    )
    text = row.text_content()
    assert "$42.00" in text and "needs response" in text and "product not received" in text
    assert row.query_selector(f"a[href='#/payments/{paid['id']}']") is not None
    dashboard.mouse.move(0, 400)
    screenshot(dashboard, "dashboard-disputes-list")

    # And its page shows the amount and the fee withdrawn from the balance
    dashboard.click(f"#disputes tr[data-id='{opened['id']}'] a")
    withdrawal = dashboard.wait_for_selector("#dispute-transactions tbody tr").text_content()
    assert "-$42.00" in withdrawal and "$15.00" in withdrawal
    assert f"-${(4200 + DISPUTE_FEE) / 100:.2f}" in withdrawal

    # When evidence is saved, it is kept and the dispute still needs a response
    dashboard.fill("input[name='evidence[customer_name]']", "Jenny Rosen")
    dashboard.fill("input[name='evidence[shipping_tracking_number]']", "1Z999AA10123456784")
    dashboard.click("#save-evidence")
    dashboard.wait_for_selector("#dispute-result .notice")
    saved = api.get(f"/v1/disputes/{opened['id']}").json()
    assert saved["status"] == "needs_response"
    assert saved["evidence"]["customer_name"] == "Jenny Rosen"
    assert saved["evidence_details"]["has_evidence"] is True
    assert dashboard.input_value("input[name='evidence[customer_name]']") == "Jenny Rosen"

    # When more is written and submitted, after the confirmation
    dashboard.fill(
        "textarea[name='evidence[product_description]']", "A blue wool scarf, shipped by UPS."
    )
    dashboard.fill("input[name='evidence[customer_name]']", "Jenny R. Rosen")
    screenshot(dashboard, "dashboard-disputes")
    asked: list[str] = []
    dashboard.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.accept()))
    dashboard.click("#submit-evidence")

    # Then the API has it under review with every field, and the page can no longer edit it
    dashboard.wait_for_selector("#dispute-facts .badge-under_review")
    assert "cannot be changed" in asked[0]
    submitted = api.get(f"/v1/disputes/{opened['id']}").json()
    assert submitted["status"] == "under_review"
    assert submitted["evidence_details"]["submission_count"] == 1
    assert submitted["evidence"]["customer_name"] == "Jenny R. Rosen"
    assert submitted["evidence"]["shipping_tracking_number"] == "1Z999AA10123456784"
    assert submitted["evidence"]["product_description"] == "A blue wool scarf, shipped by UPS."
    assert "under review" in dashboard.text_content("#dispute-result")
    assert dashboard.query_selector("#evidence-form") is None
    assert "Jenny R. Rosen" in dashboard.text_content("#evidence-sent")

    # And the payment's page links to its dispute
    dashboard.click("#dispute-payment")
    link = dashboard.wait_for_selector(f"#payment-disputes a[data-dispute='{opened['id']}']")
    assert "under review" in link.text_content()
    # A chargeback refuses refunds, so the page offers none
    assert "charged back" in dashboard.text_content("#no-refund")
    assert dashboard.query_selector("button#refund") is None
    screenshot(dashboard, "dashboard-payment-disputed")
    link.click()
    dashboard.wait_for_selector("#dispute-facts")
    assert dashboard.console_errors == []


def test_a_dispute_accepted_from_the_page_is_lost(dashboard: Any, api: Api, merchant: dict) -> None:
    # Given an open dispute's page
    paid = pay(api)
    opened = open_dispute(api, paid["latest_charge"])
    dashboard.goto(dashboard.url.split("#")[0] + f"#/disputes/{opened['id']}")
    dashboard.wait_for_selector("#close-dispute")

    # When accepting it is dismissed at the confirmation, nothing changes
    dashboard.once("dialog", lambda dialog: dialog.dismiss())
    dashboard.click("#close-dispute")
    dashboard.wait_for_selector("#close-dispute:not([disabled])")
    assert api.get(f"/v1/disputes/{opened['id']}").json()["status"] == "needs_response"

    # When it is confirmed
    dashboard.once("dialog", lambda dialog: dialog.accept())
    dashboard.click("#close-dispute")

    # Then the dispute is lost, in the page and the API, and the ledger is balanced
    dashboard.wait_for_selector("#dispute-facts .badge-lost")
    assert api.get(f"/v1/disputes/{opened['id']}").json()["status"] == "lost"
    assert "lost" in dashboard.text_content("#dispute-result")
    report = services().ledger.check(merchant["id"])
    assert report.ok, (report.unbalanced, report.drift)

    # And its evidence can no longer change; a dispute that does not exist is the API's message
    assert "can no longer change" in dashboard.text_content("#evidence")
    dashboard.goto(dashboard.url.split("#")[0] + "#/disputes/du_nope")
    assert "No such" in dashboard.wait_for_selector("#dispute-summary .notice-error").text_content()
    assert [e for e in dashboard.console_errors if "404" not in e] == []
