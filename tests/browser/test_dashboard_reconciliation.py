"""Reconciliation in a real browser, against the session's sandbox: payments with discrepancies
injected in the simulator's book, a run started from the page, its exceptions listed and
filtered, one resolved with its confirmation (the API then shows it resolved, the merchant's
balance moved by the difference and the ledger balanced), and the API's refusals shown as its
messages."""

from __future__ import annotations

import time
from datetime import date, timedelta
from typing import Any

from chalicelib.container import services
from tests.browser.conftest import screenshot
from tests.browser.test_dashboard import SEEN_WITHIN_MS, pay
from tests.conftest import Api
from tests.integration.test_orchestration import simulators
from tests.integration.test_reconciliation import (
    balance_total,
    exceptions,
    inject,
    reconcile,
    today,
)

# A run of a few lines ends within a second or two; the page polls every 3 s.
RUN_SHOWN_WITHIN_MS = 20_000


def yesterday() -> str:
    return (date.fromisoformat(today()) - timedelta(days=1)).isoformat()


def usd(minor: int) -> str:
    return f"${minor / 100:,.2f}"


def signed_usd(minor: int) -> str:
    return ("+" if minor > 0 else "-") + usd(abs(minor))


def wait_for_exceptions(page: Any, wanted: list[str]) -> None:
    """Until the exceptions list shows exactly `wanted` (in any order: same-second ids)."""
    deadline = time.monotonic() + SEEN_WITHIN_MS / 1000
    while True:
        listed = page.eval_on_selector_all(
            "#exceptions-table tbody tr", "trs => trs.map(tr => tr.dataset.exception)"
        )
        if sorted(listed) == sorted(wanted):
            return
        assert time.monotonic() < deadline, f"the list shows {listed}, not {wanted}"
        page.wait_for_timeout(100)


def test_a_run_started_from_the_page_finds_the_discrepancies_and_one_is_resolved(
    dashboard: Any, api: Api, merchant: dict
) -> None:
    # Given a day of payments on the merchant's own simulator, with two amounts that differ
    # and a charge PayFlow never heard of in the simulator's book
    (sim,) = simulators(api, "recon")
    for _ in range(4):
        pay(api)
    made = inject(
        api,
        today(),
        sim,
        seed=5,
        count=3,
        kinds=["amount_differs", "amount_differs", "unknown_charge"],
    )
    assert len(made) == 3

    # When a run of the day is started from the page, with a zero-day SLA
    dashboard.click("a[data-nav=reconciliation]")
    dashboard.wait_for_selector("#runs .notice")
    dashboard.fill("#start-run input[name=date]", today())
    dashboard.fill("#start-run input[name=sla_days]", "0")
    dashboard.click("#start-run-button")

    # Then the run's page shows it ending, with its counts and its three exceptions
    dashboard.wait_for_selector("#run-summary .badge-succeeded", timeout=RUN_SHOWN_WITHIN_MS)
    screenshot(dashboard, "dashboard-reconciliation-run")
    (run,) = api.get("/v1/reconciliation/runs").json()["data"]
    assert dashboard.url.endswith(f"#/reconciliation/runs/{run['id']}")
    assert run["counts"]["exceptions"] == 3 and run["counts"]["repaired"] == 1, run
    facts = dashboard.text_content("#run-facts")
    assert (
        f"Lines{run['counts']['rows']}" in facts and f"Matched{run['counts']['matched']}" in facts
    )
    assert f"Fees booked{usd(run['fees']['usd'])}" in facts
    found = {e["id"]: e for e in exceptions(api)}
    wait_for_exceptions(dashboard, list(found))

    # And the list filters by status: the unknown charge was repaired (refunded at the
    # simulator), the two amounts wait for a person
    dashboard.select_option("select[name=exception-status]", "open")
    open_ones = sorted(i for i, e in found.items() if e["status"] == "open")
    assert len(open_ones) == 2
    wait_for_exceptions(dashboard, open_ones)

    # When a person opens one, sees both sides, and accepts the provider's figures
    chosen = found[open_ones[0]]
    dashboard.click(f"#exceptions-table tr[data-exception='{chosen['id']}'] a")
    dashboard.wait_for_selector("#comparison")
    assert dashboard.text_content("[data-side=provider]") == usd(chosen["provider_amount"])
    assert dashboard.text_content("[data-side=payflow]") == usd(chosen["payflow_amount"])
    assert dashboard.text_content("[data-side=difference]") == signed_usd(chosen["difference"])
    asked: list[str] = []
    dashboard.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.dismiss()))
    before = balance_total(api)
    dashboard.click("#accept-provider")
    # A dismissed confirmation changes nothing
    dashboard.wait_for_selector("#accept-provider:not([disabled])")
    assert signed_usd(chosen["difference"]) in asked[0]
    assert api.get(f"/v1/reconciliation/exceptions/{chosen['id']}").json()["status"] == "open"
    dashboard.once("dialog", lambda dialog: dialog.accept())
    dashboard.click("#accept-provider")

    # Then the page shows the resolution, and so does the API, with its balanced entry
    result = dashboard.wait_for_selector("#resolve-result .notice").text_content()
    after = api.get(f"/v1/reconciliation/exceptions/{chosen['id']}").json()
    assert after["status"] == "resolved" and after["resolution"] == "accept_provider"
    assert after["ledger_entries"][0] in result
    dashboard.wait_for_selector("#exception-facts .badge-resolved")
    assert dashboard.query_selector("#accept-provider") is None
    assert balance_total(api) == before + chosen["difference"]
    report = services().ledger.check(merchant["id"])
    assert report.ok, (report.unbalanced, report.drift)

    # And the runs list shows the runs with their counts, newest first; the exceptions list
    # filters by run
    quiet = reconcile(api, yesterday())
    dashboard.click("a[data-nav=reconciliation]")
    dashboard.wait_for_selector(f"#runs-table tr[data-run='{quiet['id']}']")
    runs = dashboard.eval_on_selector_all(
        "#runs-table tbody tr", "trs => trs.map(tr => tr.dataset.run)"
    )
    assert runs == [quiet["id"], run["id"]]
    row = dashboard.text_content(f"#runs-table tr[data-run='{run['id']}']")
    assert today() in row and "amount" in row and usd(run["fees"]["usd"]) in row
    wait_for_exceptions(dashboard, list(found))
    dashboard.select_option("select[name=exception-run]", quiet["id"])
    dashboard.wait_for_selector("#exceptions-body .notice", timeout=SEEN_WITHIN_MS)
    assert "No exception matches" in dashboard.text_content("#exceptions-body")
    dashboard.select_option("select[name=exception-run]", run["id"])
    wait_for_exceptions(dashboard, list(found))
    dashboard.mouse.move(0, 400)
    screenshot(dashboard, "dashboard-reconciliation")
    assert dashboard.console_errors == []


def test_the_apis_refusals_are_shown_as_its_messages(dashboard: Any, api: Api) -> None:
    # Given an open exception whose page is open
    (sim,) = simulators(api, "recon")
    pay(api)
    inject(api, today(), sim, seed=1, count=1, kinds=["amount_differs"])
    run = api.post("/v1/reconciliation/runs", {"date": today(), "sla_days": 0}).json()
    dashboard.goto(dashboard.url.split("#")[0] + f"#/reconciliation/runs/{run['id']}")
    dashboard.wait_for_selector("#exceptions-table tbody tr", timeout=RUN_SHOWN_WITHIN_MS)
    (found,) = exceptions(api)
    dashboard.click(f"#exceptions-table tr[data-exception='{found['id']}'] a")
    dashboard.wait_for_selector("#write-off")
    screenshot(dashboard, "dashboard-reconciliation-exception")

    # When someone else resolves it first, and then the page's Write off is confirmed
    assert api.post(
        f"/v1/reconciliation/exceptions/{found['id']}/resolve", {"resolution": "write_off"}
    ).ok
    dashboard.once("dialog", lambda dialog: dialog.accept())
    dashboard.click("#write-off")

    # Then the page says what the API said, and nothing more was posted
    message = dashboard.wait_for_selector("#resolve .action-message.error").text_content()
    assert "only an open one can be resolved" in message
    after = api.get(f"/v1/reconciliation/exceptions/{found['id']}").json()
    assert after["resolution"] == "write_off" and len(after["ledger_entries"]) == 1

    # And an exception or a run that does not exist is the API's message, not a blank page
    dashboard.goto(dashboard.url.split("#")[0] + "#/reconciliation/exceptions/rcx_nope")
    assert "No such" in dashboard.wait_for_selector("#exception .notice-error").text_content()
    dashboard.goto(dashboard.url.split("#")[0] + "#/reconciliation/runs/rcnrun_nope")
    assert "No such" in dashboard.wait_for_selector("#run-summary .notice-error").text_content()
    # The refusals (a 400, two 404s) are the only console errors
    assert [e for e in dashboard.console_errors if "400" not in e and "404" not in e] == []
