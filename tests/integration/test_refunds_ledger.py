"""Refunds as a saga, the double-entry ledger, balances and balance transactions."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from chalicelib.container import services
from payflow.sandbox.pollers import wait_for
from tests.conftest import Api


def paid(api: Api, amount: int = 2000, pm: str = "pm_card_visa", **extra) -> dict:
    response = api.post(
        "/v1/payment_intents",
        {"amount": amount, "currency": "usd", "payment_method": pm, "confirm": "true", **extra},
    )
    assert response.status_code == 200, response.text
    return response.json()


def balance(api: Api, currency: str = "usd") -> tuple[int, int]:
    body = api.get("/v1/balance").json()
    assert body["object"] == "balance"
    available = {b["currency"]: b["amount"] for b in body["available"]}
    pending = {b["currency"]: b["amount"] for b in body["pending"]}
    return available.get(currency, 0), pending.get(currency, 0)


def assert_ledger_balanced(api: Api) -> None:
    report = services().ledger.check(services().merchants.authenticate(api.session.auth[0]))
    assert report.ok, (report.unbalanced, report.drift)


def test_capture_posts_to_the_ledger_and_the_balance(api: Api):
    paid(api, 2000)
    held = paid(api, 5000, capture_method="manual")
    assert balance(api) == (2000, 0)
    api.post(f"/v1/payment_intents/{held['id']}/capture", {"amount_to_capture": 3000})
    assert balance(api) == (5000, 0)
    txns = api.get("/v1/balance_transactions").json()
    assert [t["type"] for t in txns["data"]] == ["charge", "charge"]
    assert [t["amount"] for t in txns["data"]] == [3000, 2000]
    only = api.get("/v1/balance_transactions", params={"source": held["latest_charge"]}).json()
    assert [t["amount"] for t in only["data"]] == [3000]
    assert_ledger_balanced(api)


def test_full_refund_settles_through_the_psp(api: Api):
    pi = paid(api, 2000)
    response = api.post(
        "/v1/refunds",
        {"payment_intent": pi["id"], "reason": "requested_by_customer", "metadata[ticket]": "42"},
    )
    assert response.status_code == 200, response.text
    refund = response.json()
    assert refund["object"] == "refund" and refund["status"] == "succeeded"
    assert refund["amount"] == 2000 and refund["charge"] == pi["latest_charge"]
    assert refund["balance_transaction"].startswith("txn_")
    assert balance(api) == (0, 0)
    types = [t["type"] for t in api.get("/v1/balance_transactions").json()["data"]]
    assert types == ["refund", "charge"]
    events = [e["type"] for e in api.get("/v1/events", params={"limit": 20}).json()["data"]]
    assert {"refund.created", "refund.updated", "charge.refunded"} <= set(events)
    refunds_of_psp = [
        r
        for r in services().simulator_ledger.all_records()
        if r.get("operation") == "refund" and r["pk"].endswith(refund["id"])
    ]
    assert len(refunds_of_psp) == 1
    assert_ledger_balanced(api)


def test_partial_refunds_never_exceed_what_was_received(api: Api):
    pi = paid(api, 1000, capture_method="manual")
    api.post(f"/v1/payment_intents/{pi['id']}/capture", {"amount_to_capture": 700})
    first = api.post("/v1/refunds", {"payment_intent": pi["id"], "amount": 300}).json()
    assert first["status"] == "succeeded"
    too_much = api.post("/v1/refunds", {"payment_intent": pi["id"], "amount": 401})
    assert too_much.status_code == 400
    assert too_much.json()["error"]["code"] == "amount_too_large"
    rest = api.post("/v1/refunds", {"payment_intent": pi["id"]}).json()
    assert rest["amount"] == 400
    done = api.post("/v1/refunds", {"payment_intent": pi["id"]})
    assert done.status_code == 400 and done.json()["error"]["code"] == "charge_already_refunded"
    listed = api.get("/v1/refunds", params={"payment_intent": pi["id"]}).json()
    assert sorted(r["amount"] for r in listed["data"]) == [300, 400]
    assert balance(api) == (0, 0)


def test_concurrent_refunds_cannot_overdraw(api: Api):
    pi = paid(api, 2000)

    def refund(_: int):
        local = Api(api.base, api.session.auth[0])
        return local.post("/v1/refunds", {"payment_intent": pi["id"], "amount": 300})

    with ThreadPoolExecutor(10) as pool:
        responses = list(pool.map(refund, range(10)))
    ok = [r for r in responses if r.status_code == 200]
    assert len(ok) == 6, [r.status_code for r in responses]
    assert all(r.status_code in (400, 409) for r in responses if r.status_code != 200)
    assert sum(r.json()["amount"] for r in ok) == 1800
    assert balance(api) == (200, 0)
    assert_ledger_balanced(api)


def test_uncaptured_payment_cannot_be_refunded_but_cancel_releases_it(api: Api):
    held = paid(api, 900, capture_method="manual")
    response = api.post("/v1/refunds", {"payment_intent": held["id"]})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "payment_intent_unexpected_state"
    canceled = api.post(f"/v1/payment_intents/{held['id']}/cancel").json()
    assert canceled["status"] == "canceled"
    assert balance(api) == (0, 0)


def test_psp_refusal_compensates_the_hold(api: Api):
    pi = paid(api, 1500, pm="pm_card_refundFail")
    refund = api.post("/v1/refunds", {"payment_intent": pi["id"], "amount": 500}).json()
    assert refund["status"] == "failed"
    assert refund["failure_reason"] == "expired_or_canceled_card"
    assert refund["failure_balance_transaction"].startswith("txn_")
    assert balance(api) == (1500, 0)
    types = [t["type"] for t in api.get("/v1/balance_transactions").json()["data"]]
    assert types == ["refund_failure", "refund", "charge"]
    events = [e["type"] for e in api.get("/v1/events", params={"limit": 20}).json()["data"]]
    assert "refund.failed" in events
    # The failed refund gave its amount back: the whole payment is refundable again.
    assert api.post("/v1/refunds", {"payment_intent": pi["id"], "amount": 1500}).status_code == 200
    assert_ledger_balanced(api)


def test_saga_steps_are_safe_to_run_twice(api: Api, merchant: dict):
    pi = paid(api, 800)
    refund = api.post("/v1/refunds", {"payment_intent": pi["id"]}).json()
    before = services().ledger.check(merchant["id"])
    task = {"refund_id": refund["id"], "merchant_id": merchant["id"]}
    refunds = services().refunds
    for step in (refunds.hold, refunds.settle, refunds.compensate):
        step(task)
    assert api.get(f"/v1/refunds/{refund['id']}").json() == refund
    after = services().ledger.check(merchant["id"])
    assert after.ok and after.entries == before.entries


def test_refund_update_and_cancel_rules(api: Api):
    pi = paid(api, 600)
    refund = api.post("/v1/refunds", {"payment_intent": pi["id"]}).json()
    updated = api.post(f"/v1/refunds/{refund['id']}", {"metadata[note]": "ok"}).json()
    assert updated["metadata"] == {"note": "ok"}
    cancel = api.post(f"/v1/refunds/{refund['id']}/cancel")
    assert cancel.status_code == 400
    assert api.get("/v1/refunds/re_missing").status_code == 404


def test_pending_funds_become_available_on_release(api: Api):
    payment_intents = services().payment_intents
    # available_on is in whole seconds: with 3 s it is due strictly after the first release.
    payment_intents._availability_delay = 3
    try:
        paid(api, 1200)
    finally:
        payment_intents._availability_delay = 0
    assert balance(api) == (0, 1200)
    assert api.get("/v1/balance_transactions").json()["data"][0]["status"] == "pending"
    assert api.post("/v1/sandbox/balance/release").json()["released"] == 0
    # Releasing early releases nothing (the call above): ask until the funds come due.
    wait_for(lambda: api.post("/v1/sandbox/balance/release").json()["released"] == 1, timeout=10)
    assert balance(api) == (1200, 0)
    assert api.get("/v1/balance_transactions").json()["data"][0]["status"] == "available"
    assert api.post("/v1/sandbox/balance/release").json()["released"] == 0
    assert_ledger_balanced(api)


@pytest.mark.parametrize("payload", [{"amount": "5"}, {"payment_intent": "pi_nope"}])
def test_refund_validation(api: Api, payload):
    response = api.post("/v1/refunds", payload)
    assert response.status_code in (400, 404)
    assert response.json()["error"]["param"] in ("payment_intent", "amount")


def test_ledger_check_command_reports_drift(api: Api, merchant: dict, sandbox, capsys):
    from payflow.cli import main

    paid(api, 700)
    check = ["ledger-check", "--aws-endpoint", sandbox.aws_url, "--merchant", merchant["id"]]
    assert main(check) == 0
    assert "0 balances drifted" in capsys.readouterr().out
    # Corrupt one materialized total behind the ledger's back: the check must catch it.
    table = services().settings.payments_table
    key = {"pk": {"S": f"balance#{merchant['id']}"}, "sk": {"S": "usd"}}
    services().dynamodb.update_item(
        TableName=table,
        Key=key,
        UpdateExpression="ADD merchant_available :x",
        ExpressionAttributeValues={":x": {"N": "1"}},
    )
    try:
        assert main(check) == 1
        assert "merchant_available" in capsys.readouterr().out
    finally:
        services().dynamodb.update_item(
            TableName=table,
            Key=key,
            UpdateExpression="ADD merchant_available :x",
            ExpressionAttributeValues={":x": {"N": "-1"}},
        )


def test_a_balance_transaction_stored_apart_before_still_reads_and_lists(api: Api, sandbox):
    # Given a payment, and its balance transaction rewritten as sandboxes stored it before
    # 2026-12-01: an item of its own, the entry without the transaction's view
    from chalicelib.dal.dynamo import from_attrs, to_attrs

    pi = paid(api, 2100)
    txn_id = f"txn_charge_{pi['latest_charge']}"
    current = api.get(f"/v1/balance_transactions/{txn_id}").json()
    client = sandbox.aws.client("dynamodb")
    table = sandbox.provisioned.physical_ids["PaymentsTable"]
    key = to_attrs({"pk": "je_" + txn_id.removeprefix("txn_"), "sk": "journal_entry"})
    entry = from_attrs(client.get_item(TableName=table, Key=key)["Item"])
    merchant = entry["merchant_id"]
    client.put_item(
        TableName=table,
        Item=to_attrs(
            {
                **{k: entry[k] for k in ("pk", "sk", "merchant_id", "data")},
                "gsi1pk": f"{merchant}#journal_entry",
                "gsi1sk": entry["pk"],
            }
        ),
    )
    client.put_item(
        TableName=table,
        Item=to_attrs(
            {
                "pk": txn_id,
                "sk": "balance_transaction",
                "gsi1pk": f"{merchant}#balance_transaction",
                "gsi1sk": entry["gsi1sk"],
                "merchant_id": merchant,
                "type": "charge",
                "source": pi["latest_charge"],
                "status": "available",
                "entry_id": entry["pk"],
                "data": current,
            }
        ),
    )
    # Then it reads, lists and balances as before
    assert api.get(f"/v1/balance_transactions/{txn_id}").json() == current
    listed = api.get("/v1/balance_transactions").json()["data"]
    assert [t["id"] for t in listed] == [txn_id]
    assert_ledger_balanced(api)
