"""A Stripe dispute won and then lost, reconciled through the HTTP API on the embedded sandbox:
Stripe's report names the dispute on each of its lines but not which withdrawal a line is, so
each withdrawal line takes the next withdrawal PayFlow booked that no other line settled."""

from __future__ import annotations

import time
from typing import Any

from chalicelib.container import services
from chalicelib.dal.dynamo import WriteBatch, commit
from chalicelib.dal.reconciliation import ReconciliationStore
from chalicelib.reconciliation.reports import day_of
from chalicelib.services.context import RequestContext
from chalicelib.services.reconciliation import ReconciliationService
from tests.conftest import Api
from tests.integration.test_disputes import send_stripe_dispute, stripe_dispute_webhook
from tests.integration.test_psp_webhooks import route_to
from tests.integration.test_reconciliation import balance_total, exceptions, pay, reconcile

AMOUNT, DISPUTE_FEE = 1200, 1500


def settled_by(merchant: dict, subjects: list[str]) -> dict[str, str]:
    """Which Stripe line settled each of `subjects` (the run's settled markers)."""
    store = ReconciliationStore(services().dynamodb, services().settings.payments_table)
    return store.settled_by(merchant["id"], "stripe", subjects)


def found(api: Api) -> list[tuple[str, str, int, int]]:
    """The exceptions of the merchant, told apart by what they say."""
    return [
        (e["kind"], e["subject"], e["provider_amount"], e["payflow_amount"])
        for e in exceptions(api)
    ]


def won_then_lost(api: Api) -> tuple[dict[str, Any], str, str]:
    """A Stripe payment disputed, won, then lost (Stripe's webhooks, each applied in turn):
    the PaymentIntent, Stripe's PaymentIntent and the dispute's id."""
    route_to(api, "stripe", payment_method_types=["card"])
    pi = pay(api, 2000)
    opened, dispute = stripe_dispute_webhook(api, pi, AMOUNT)
    assert opened.status_code == 200, opened.text
    for status, event in (("won", "charge.dispute.closed"), ("lost", "charge.dispute.updated")):
        response = send_stripe_dispute(api, {**dispute, "status": status}, event)
        assert response.status_code == 200, response.text
    (booked,) = api.get("/v1/disputes", params={"charge": pi["latest_charge"]}).json()["data"]
    categories = [t["reporting_category"] for t in booked["balance_transactions"]]
    assert categories == ["dispute", "dispute_reversal", "dispute"], booked
    return pi, dispute["payment_intent"], dispute["id"]


def test_a_stripe_dispute_won_then_lost_reconciles_across_two_days(
    api: Api, merchant: dict, fake_stripe
):
    # Given a dispute withdrawn, reinstated and withdrawn again, whose first withdrawal Stripe
    # itemized yesterday and the reinstatement and second withdrawal today
    _, stripe_pi, dispute_id = won_then_lost(api)
    now = int(time.time())
    yesterday = day_of(now - 86_400)
    fake_stripe.dispute_moved(dispute_id, stripe_pi, -AMOUNT, at=now - 86_400)
    fake_stripe.dispute_moved(dispute_id, stripe_pi, AMOUNT, at=now)
    second = fake_stripe.dispute_moved(dispute_id, stripe_pi, -AMOUNT, at=now)

    # When yesterday and then today are reconciled, past their SLA
    before = reconcile(api, yesterday, sla_days=0)
    run = reconcile(api, day_of(now), sla_days=0)

    # Then every line matched a movement: the second withdrawal line settled the second
    # withdrawal (not a duplicate of the first), which is not missing at Stripe
    assert found(api) == []
    assert (before["counts"]["rows"], before["counts"]["matched"]) == (1, 1), before
    assert (run["counts"]["rows"], run["counts"]["matched"]) == (3, 3), run
    assert run["counts"]["awaiting_settlement"] == 0
    subject = f"{dispute_id}:dispute:2"
    assert settled_by(merchant, [subject]) == {subject: second}

    # When today is reconciled again, nothing changes
    balance = balance_total(api)
    again = reconcile(api, day_of(now), sla_days=0)
    assert (again["counts"]["matched"], again["counts"]["exceptions"]) == (3, 0), again
    assert found(api) == [] and balance_total(api) == balance

    # When Stripe itemizes one withdrawal more than PayFlow made
    extra = fake_stripe.dispute_moved(dispute_id, stripe_pi, -AMOUNT, at=now)
    reconcile(api, day_of(now), sla_days=0)

    # Then that line alone is a duplicate settlement
    (duplicate,) = exceptions(api)
    assert (duplicate["kind"], duplicate["subject"]) == ("duplicate_settlement", extra)
    assert duplicate["provider_amount"] == -AMOUNT - DISPUTE_FEE
    assert balance_total(api) == balance
    assert services().ledger.check(merchant["id"]).ok


def test_both_withdrawals_of_a_dispute_in_one_report_settle_one_each(
    api: Api, merchant: dict, fake_stripe
):
    # Given a dispute won then lost whose three lines Stripe itemized on one day, the second
    # withdrawal's line listed first
    _, stripe_pi, dispute_id = won_then_lost(api)
    now = int(time.time())
    second = fake_stripe.dispute_moved(dispute_id, stripe_pi, -AMOUNT, at=now)
    fake_stripe.dispute_moved(dispute_id, stripe_pi, AMOUNT, at=now - 2)
    first = fake_stripe.dispute_moved(dispute_id, stripe_pi, -AMOUNT, at=now - 4)

    # When the day is reconciled, past its SLA
    run = reconcile(api, day_of(now), sla_days=0)

    # Then the older line settled the first withdrawal and the newer the second
    assert found(api) == []
    assert (run["counts"]["rows"], run["counts"]["matched"]) == (4, 4), run
    subjects = [f"{dispute_id}:dispute", f"{dispute_id}:dispute:2"]
    assert settled_by(merchant, subjects) == {subjects[0]: first, subjects[1]: second}


class RacingStore(ReconciliationStore):
    """The settled markers as a match task reads them, with a parallel task (a run of another
    day) settling `subject` by its own line just after this task first read it: the race the
    task's line loses."""

    def __init__(self, client: Any, table: str, subject: str, winner: str) -> None:
        super().__init__(client, table)
        self.subject, self.winner, self.raced = subject, winner, False

    def settled_by(self, merchant_id: str, provider: str, object_ids: list[str]) -> dict[str, str]:
        found = super().settled_by(merchant_id, provider, object_ids)
        if self.subject in object_ids and not self.raced:
            self.raced = True
            batch = WriteBatch()
            self.mark_settled(batch, merchant_id, provider, self.subject, self.winner)
            commit(self._client, batch)
        return found


class Started:
    """Workflows that start nothing: the test runs the run's tasks itself, in its order."""

    def start(self, name: str, payload: dict[str, Any]) -> str:
        return name


def test_a_line_that_loses_its_withdrawal_to_a_parallel_run_takes_the_next(
    api: Api, merchant: dict, fake_stripe
):
    # Given a dispute won then lost, whose second withdrawal's line is in today's report,
    # and a run of another day settling the first withdrawal at the same moment
    _, stripe_pi, dispute_id = won_then_lost(api)
    now = int(time.time())
    fake_stripe.dispute_moved(dispute_id, stripe_pi, AMOUNT, at=now - 2)
    second = fake_stripe.dispute_moved(dispute_id, stripe_pi, -AMOUNT, at=now)
    first = f"{dispute_id}:dispute"
    svc = services()
    store = RacingStore(svc.dynamodb, svc.settings.payments_table, first, "txn_parallel")
    racing = ReconciliationService(
        svc.objects,
        store,
        svc.committer,
        svc.ledger_store,
        svc.connectors,
        svc.simulator_settlement,
        Started(),  # type: ignore[arg-type]
        lambda: svc.payment_intents,
        svc.dynamodb,
        disputes=lambda: svc.disputes,
        sandbox=True,
        clock=svc.business_time,
    )

    # When today's run matches its lines (the tasks the workflow runs, in its order)
    started = racing.start(
        merchant["id"], RequestContext(request_id=None), date=day_of(now), sla_days=0
    )
    task = {"run_id": started.body["id"], "merchant_id": merchant["id"]}
    prepared = racing.prepare(task)
    matched = [racing.match_chunk(chunk) for chunk in prepared["chunks"]]
    racing.finish({**task, "prepared": prepared, "matched": matched})

    # Then the line lost the first withdrawal to the parallel run and settled the second:
    # no duplicate, nothing missing
    assert store.raced
    subjects = [first, f"{dispute_id}:dispute:2"]
    assert settled_by(merchant, subjects) == {subjects[0]: "txn_parallel", subjects[1]: second}
    assert found(api) == []
    run = racing.retrieve_run(merchant["id"], task["run_id"])
    assert (run.matched, run.exceptions) == (3, 0), run
