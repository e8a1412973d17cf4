"""Three-way reconciliation with the merchant's own bank, through the HTTP API on the embedded
sandbox: statements uploaded as camt.053 or CSV, each provider's payouts (Stripe's
automatic_payout_id, Razorpay's settlement_id) matched with their credits by reference or by
amount in the payout's window, and every way it can go wrong an exception or a 400."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from payflow.cli import main
from tests.conftest import Api
from tests.integration.test_reconciliation import (  # noqa: F401 (adyen: a fixture)
    _paid_through,
    adyen,
    exceptions,
    reconcile,
    today,
)
from tests.unit.test_bank_statements import NS, camt, entry

STRIPE = {"id": "stripe", "kind": "stripe", "priority": 1}


def stripe_net(amount: int) -> int:
    """What the fake Stripe pays out for a charge (its fee 2.9% + 30)."""
    return amount - ((amount * 290 + 5000) // 10_000 + 30)


def stripe_payout(day: str) -> str:
    """The fake Stripe's automatic payout of a day (tests/fakes/stripe_server.py)."""
    return f"po_fake{day.replace('-', '')}usd"


def major(minor: int) -> str:
    return f"{minor // 100}.{minor % 100:02d}"


def upload(api: Api, text: str, **extra: str) -> dict:
    response = api.post("/v1/reconciliation/bank_statements", {"file": text, **extra})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["object"] == "reconciliation.bank_statement"
    return body


def statements(api: Api) -> list[dict]:
    body = api.get("/v1/reconciliation/bank_statements", params={"limit": 100}).json()
    assert body["object"] == "list" and body["url"] == "/v1/reconciliation/bank_statements"
    return body["data"]


def later(day: str, days: int) -> str:
    return (date.fromisoformat(day) + timedelta(days=days)).isoformat()


def test_a_stripe_payout_is_matched_three_way_from_an_uploaded_camt053(api: Api, fake_stripe):
    # Given a merchant routed to Stripe with two payments, and no statement yet
    _paid_through(api, STRIPE, "usd", (1200, 3400))
    day, net = today(), stripe_net(1200) + stripe_net(3400)
    first = reconcile(api, day)
    # Then Stripe's payout is not checked against a bank nobody uploaded: not covered
    assert first["counts"]["payouts"] == 1 and first["bank_covers"] == []
    assert first["bank_not_covered"]["stripe"].startswith("no bank statement uploaded")
    assert exceptions(api) == []

    # When the merchant uploads its bank's camt.053: the payout's credit and a debit
    text = camt(
        entry(major(net), "USD", end_to_end=stripe_payout(day), remittance="STRIPE", booked=day),
        entry("50.00", "USD", direction="DBIT", remittance="rent", booked=day),
        start=day,
        end=day,
    )
    statement = upload(api, text)
    # Then both entries are kept, the debit as a debit
    assert statement["counts"] == {"entries": 2, "credits": 1, "debits": 1, "skipped": 0}
    assert statement["totals"] == {"usd": {"credits": net, "debits": 5000}}
    assert statement["period"] == {"start": day, "end": day}
    # And uploading it again is the same statement, not a second one
    assert upload(api, text)["id"] == statement["id"]
    assert [s["id"] for s in statements(api)] == [statement["id"]]
    got = api.get(f"/v1/reconciliation/bank_statements/{statement['id']}").json()
    assert [e["direction"] for e in got["entries"]["data"]] == ["credit", "debit"]
    assert got["entries"]["has_more"] is False
    url = got["entries"]["url"]
    page = api.get(url, params={"limit": 1}).json()
    assert [e["direction"] for e in page["data"]] == ["credit"] and page["has_more"]
    rest = api.get(url, params={"starting_after": page["data"][0]["id"]}).json()
    assert [e["amount"] for e in rest["data"]] == [5000] and not rest["has_more"]
    back = api.get(url, params={"ending_before": rest["data"][0]["id"]}).json()
    assert back["data"] == page["data"] and not back["has_more"]
    unknown = api.get(url, params={"starting_after": "bnk_nope"})
    assert unknown.status_code == 404 and unknown.json()["error"]["param"] == "starting_after"

    # When the day is reconciled again
    run = reconcile(api, day)

    # Then Stripe's payout met its credit: three-way matched, no exception
    assert run["bank_covers"] == ["stripe"] and run["bank_not_covered"] == {}
    assert run["bank_statements"] == [statement["id"]]
    assert run["counts"]["payouts_matched"] == 1 and run["counts"]["awaiting_bank"] == 0
    assert exceptions(api) == []


def test_a_short_bank_credit_is_an_exception_of_the_difference(api: Api, fake_stripe):
    # Given a Stripe payout whose credit arrived 1.00 short, named by its reference
    _paid_through(api, STRIPE, "usd", (5000,))
    day, net = today(), stripe_net(5000)
    short = entry(major(net - 100), "USD", remittance=f"PAYOUT {stripe_payout(day)}", booked=day)
    upload(api, camt(short, start=day, end=day), format="camt.053")

    # When the day is reconciled
    run = reconcile(api, day)

    # Then the payout is an exception of the 1.00 the bank did not receive
    (short,) = exceptions(api)
    assert (short["kind"], short["subject"], short["difference"]) == (
        "payout_amount_mismatch",
        stripe_payout(day),
        -100,
    )
    assert short["provider"] == "stripe" and run["counts"]["payouts_matched"] == 0


def test_a_payout_that_never_arrives_is_awaited_then_missing_once_its_window_is_over(
    api: Api, fake_stripe, business_clock
):
    # Given a Stripe payout and a statement of its whole window that holds no credit for it,
    # but a credit naming a Stripe payout PayFlow does not know
    _paid_through(api, STRIPE, "usd", (2500,))
    day = today()
    upload(
        api,
        camt(
            entry("3.00", "USD", end_to_end="po_fakeUnknown", booked=day),
            entry("80.00", "USD", remittance="customer transfer", booked=day),
            start=day,
            end=later(day, 3),
        ),
    )

    # When the day is reconciled while the window is open
    waiting = reconcile(api, day)

    # Then the payout is awaited, not missing, and the stray credit is not judged yet
    assert waiting["counts"]["awaiting_bank"] == 1 and exceptions(api) == []

    # When the business clock passes the window (payout day + 3) and the day runs again
    business_clock(5 * 86_400)
    overdue = reconcile(api, day)

    # Then the payout is missing in the bank, and the Stripe credit no payout took is too
    found = {e["kind"]: e for e in exceptions(api)}
    assert set(found) == {"payout_missing_in_bank", "bank_credit_unmatched"}, found
    assert found["payout_missing_in_bank"]["subject"] == stripe_payout(day)
    assert found["payout_missing_in_bank"]["difference"] == -stripe_net(2500)
    assert found["bank_credit_unmatched"]["provider_amount"] == 300
    assert overdue["counts"]["awaiting_bank"] == 0
    # And a person can close the stray credit, which moves no money in PayFlow's ledger
    closed = api.post(
        f"/v1/reconciliation/exceptions/{found['bank_credit_unmatched']['id']}/resolve",
        {"resolution": "write_off"},
    )
    assert closed.status_code == 200 and closed.json()["ledger_entries"] == []


def test_a_credit_judged_unmatched_is_closed_when_its_payouts_day_runs_later(
    api: Api, fake_stripe, business_clock
):
    # Given a Stripe payout of D that the bank booked on D+1, and the clock past both windows
    _paid_through(api, STRIPE, "usd", (3100,))
    day, net = today(), stripe_net(3100)
    next_day = later(day, 1)
    upload(
        api,
        camt(
            entry(major(net), "USD", end_to_end=stripe_payout(day), booked=next_day),
            start=day,
            end=later(day, 4),
        ),
    )
    business_clock(6 * 86_400)

    # When D+1 is reconciled first: its Stripe credit is no payout of that day
    reconcile(api, next_day)
    (stray,) = exceptions(api)
    assert (stray["kind"], stray["status"]) == ("bank_credit_unmatched", "open")

    # When D is reconciled: its payout takes the credit
    run = reconcile(api, day)

    # Then the payout is matched, and the credit's exception closed by itself
    assert run["counts"]["payouts_matched"] == 1
    (closed,) = exceptions(api)
    assert closed["id"] == stray["id"]
    assert (closed["status"], closed["resolution"]) == ("resolved", "settled_late")


def test_a_razorpay_settlement_matches_its_one_credit_by_amount(api: Api, fake_razorpay):
    # Given a merchant routed to Razorpay, whose settlement reached the bank with no reference
    _paid_through(
        api, {"id": "razorpay", "kind": "razorpay", "currencies": ["inr"]}, "inr", (5000,)
    )
    day = today()
    fee = (5000 * 2 + 50) // 100
    fee += (fee * 18 + 50) // 100
    net = 5000 - fee
    csv = (
        "booking_date,value_date,reference,description,amount,currency\n"
        f"{later(day, 1)},{later(day, 1)},NEFT-123,RAZORPAY SOFTWARE,{net},inr\n"
    )
    upload(api, csv)

    # When the day is reconciled
    run = reconcile(api, day)

    # Then the settlement matched its one credit of that amount within the window
    assert run["bank_covers"] == ["razorpay"] and run["counts"]["payouts_matched"] == 1
    assert exceptions(api) == []


def _adyen_batch_credited(api: Api, short_by: int) -> tuple[str, dict]:
    """Two EUR payments through Adyen in the day's batch, its payout credited `short_by`
    short under Adyen's transfer reference; the batch's payout id and the day's run."""
    _paid_through(
        api, {"id": "adyen", "kind": "adyen", "payment_method_types": ["card"]}, "eur", (2500, 4000)
    )
    day = today()
    fee = lambda a: 12 + a * 6 // 1000 + a * 2 // 1000 + a * 3 // 1000  # noqa: E731
    batch = date.fromisoformat(day).toordinal() - date(2020, 1, 1).toordinal()
    net = 2500 - fee(2500) + 4000 - fee(4000)
    upload(
        api,
        camt(
            entry(
                major(net - short_by), "EUR", remittance=f"ADYEN TX{batch}XT", booked=later(day, 2)
            ),
            start=day,
            end=later(day, 2),
        ),
    )
    return f"TX{batch}XT", reconcile(api, day)


@pytest.mark.usefixtures("adyen")
def test_an_adyen_batch_payout_matches_its_credit_by_its_transfer_reference(api: Api):
    # Given the bank credit of the day's Adyen batch, under Adyen's transfer reference
    # When the day is reconciled
    _, run = _adyen_batch_credited(api, short_by=0)

    # Then the batch's payout is the one its MerchantPayout line states, and it is matched
    assert run["bank_covers"] == ["adyen"] and run["counts"]["payouts"] == 1, run
    assert run["counts"]["payouts_matched"] == 1
    assert exceptions(api) == []


@pytest.mark.usefixtures("adyen")
def test_an_adyen_batch_credited_short_is_its_payouts_amount_mismatch(api: Api):
    # Given the batch's credit 1.00 short: only its reference can tie it to the payout
    payout, run = _adyen_batch_credited(api, short_by=100)

    # Then the mismatch names the payout Adyen stated
    found = exceptions(api)
    assert [(e["kind"], e["object_id"]) for e in found] == [("payout_amount_mismatch", payout)]
    assert run["counts"]["payouts_matched"] == 0


def test_two_credits_that_could_each_be_the_payout_are_an_exception(api: Api, fake_stripe):
    _paid_through(api, STRIPE, "usd", (4200,))
    day, net = today(), stripe_net(4200)
    upload(
        api,
        camt(
            entry(major(net), "USD", booked=day, bank_ref="A1"),
            entry(major(net), "USD", booked=later(day, 1), bank_ref="A2"),
            start=day,
            end=later(day, 1),
        ),
    )
    run = reconcile(api, day)
    (ambiguous,) = exceptions(api)
    assert ambiguous["kind"] == "payout_match_ambiguous" and ambiguous["subject"] == stripe_payout(
        day
    )
    assert run["counts"]["payouts_matched"] == 0


HOSTILE = {
    "malformed XML": f'<Document xmlns="{NS}"><BkToCstmrStmt>',
    "entity bomb": '<?xml version="1.0"?><!DOCTYPE b [<!ENTITY a "aaaaaaaa"><!ENTITY b '
    '"&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]><Document xmlns="' + NS + '">&b;</Document>',
    "external entity": '<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM '
    '"file:///etc/hostname">]><Document xmlns="' + NS + '">&x;</Document>',
    "wrong currency": camt(entry("10.00", "ZZZ")),
    "non-numeric amount": camt(entry("ten")),
    "CSV amount in major units": "booking_date,value_date,reference,description,amount,"
    "currency\n2026-11-30,,po_1,x,12.50,usd\n",
}


@pytest.mark.parametrize("what", sorted(HOSTILE))
def test_a_file_that_is_not_a_statement_is_a_400_that_writes_nothing(api: Api, what: str):
    response = api.post("/v1/reconciliation/bank_statements", {"file": HOSTILE[what]})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and error["param"] == "file"
    assert statements(api) == []


def test_bad_requests_to_the_statement_routes_are_refused_stripe_style(api: Api):
    unknown = api.post("/v1/reconciliation/bank_statements", {"file": "x", "colour": "red"})
    assert unknown.json()["error"]["code"] == "parameter_unknown"
    bad_format = api.post("/v1/reconciliation/bank_statements", {"file": "x", "format": "mt940"})
    assert bad_format.status_code == 400 and bad_format.json()["error"]["param"] == "format"
    missing = api.post("/v1/reconciliation/bank_statements", {})
    assert missing.json()["error"]["param"] == "file"
    absent = api.get("/v1/reconciliation/bank_statements/bstmt_nope")
    assert absent.status_code == 404 and absent.json()["error"]["code"] == "resource_missing"
    # Another content under a statement id already uploaded is refused, the first kept
    kept = upload(api, camt(entry("1.00"), statement="S-9"))
    other = api.post(
        "/v1/reconciliation/bank_statements", {"file": camt(entry("2.00"), statement="S-9")}
    )
    assert other.status_code == 400
    assert other.json()["error"]["code"] == "resource_already_exists"
    assert [s["id"] for s in statements(api)] == [kept["id"]]


def test_payflow_recon_bank_statement_uploads_a_file(api: Api, api_url: str, tmp_path, capsys):
    path = tmp_path / "statement.xml"
    path.write_text(camt(entry("12.34", "EUR"), entry("1.00", "EUR", direction="DBIT")))
    key = api.session.auth[0]
    args = ["recon", "bank-statement", str(path), "--api-base", api_url, "--api-key", key]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "camt.053" in printed and "2 entries (1 credits, 1 debits)" in printed
    assert "1234 in / 100 out eur" in printed
    assert len(statements(api)) == 1
