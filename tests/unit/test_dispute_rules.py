"""Dispute rules without a sandbox: statuses only move forward, money follows the status, and
every movement balances with the fee where Stripe shows it."""

from __future__ import annotations

import itertools

import pytest

from chalicelib.domain import disputes as rules
from chalicelib.domain import ledger
from chalicelib.domain.disputes import (
    Dispute,
    DisputeReport,
    DisputeStatus,
    Funds,
    FundsMove,
)
from chalicelib.errors import UnexpectedState

S = DisputeStatus


def dispute(status: DisputeStatus, **extra: object) -> Dispute:
    return Dispute(
        id="du_1",
        merchant_id="acct_1",
        charge="ch_1",
        amount=2000,
        currency="usd",
        created=1,
        status=status,
        provider="simulator",
        provider_reference="dp_1",
        funds=rules.funds_for(status),
        **extra,  # type: ignore[arg-type]
    )


def report(status: DisputeStatus) -> DisputeReport:
    return DisputeReport(reference="dp_1", charge_id="ch_1", status=status)


def test_reports_move_a_dispute_only_forward():
    assert rules.reported(None, report(S.WON)) == S.WON
    assert rules.reported(dispute(S.NEEDS_RESPONSE), report(S.UNDER_REVIEW)) == S.UNDER_REVIEW
    assert rules.reported(dispute(S.UNDER_REVIEW), report(S.NEEDS_RESPONSE)) is None
    assert rules.reported(dispute(S.WON), report(S.LOST)) == S.LOST  # a second chargeback
    assert rules.reported(dispute(S.LOST), report(S.WON)) is None
    assert rules.reported(dispute(S.WARNING_CLOSED), report(S.NEEDS_RESPONSE)) == S.NEEDS_RESPONSE
    assert rules.reported(dispute(S.WON), report(S.WON)) is None


def test_a_provider_asking_for_evidence_again_reopens_only_a_dispute_under_review():
    again = DisputeReport(reference="dp_1", charge_id="ch_1", status=S.NEEDS_RESPONSE, reopens=True)
    assert rules.reported(dispute(S.UNDER_REVIEW), again) == S.NEEDS_RESPONSE
    assert rules.reported(dispute(S.WARNING_UNDER_REVIEW), again) == S.WARNING_NEEDS_RESPONSE
    assert rules.reported(dispute(S.WON), again) is None
    assert rules.reported(dispute(S.NEEDS_RESPONSE), again) is None
    # The money stays held: reopening moves none
    assert rules.moves_between(Funds.HELD, rules.funds_for(S.NEEDS_RESPONSE)) == []


@pytest.mark.parametrize("order", list(itertools.permutations([S.NEEDS_RESPONSE, S.WON, S.LOST])))
def test_any_order_of_reports_ends_in_the_same_place_with_the_money_moved_once(order):
    # Given the reports of one dispute, in any order
    current: Dispute | None = None
    net = 0
    for status in order:
        moved_to = rules.reported(current, report(status))
        if moved_to is None:
            continue
        before = current.funds if current else Funds.UNTOUCHED
        for move in rules.moves_between(before, rules.funds_for(moved_to)):
            net += {FundsMove.WITHDRAW: -1, FundsMove.REINSTATE: 1, FundsMove.PAY_OUT: 0}[move]
        current = dispute(moved_to)
    # Then it ends lost (nothing follows lost) with the money withdrawn exactly once, net
    assert current is not None and current.status == S.LOST
    assert net == -1


def test_funds_moves_between_states():
    assert rules.moves_between(Funds.UNTOUCHED, Funds.HELD) == [FundsMove.WITHDRAW]
    assert rules.moves_between(Funds.HELD, Funds.HELD) == []
    assert rules.moves_between(Funds.UNTOUCHED, Funds.REINSTATED) == [
        FundsMove.WITHDRAW,
        FundsMove.REINSTATE,
    ]
    assert rules.moves_between(Funds.HELD, Funds.PAID_OUT) == [FundsMove.PAY_OUT]
    assert rules.moves_between(Funds.REINSTATED, Funds.PAID_OUT) == [
        FundsMove.WITHDRAW,
        FundsMove.PAY_OUT,
    ]
    assert rules.moves_between(Funds.UNTOUCHED, Funds.UNTOUCHED) == []


@pytest.mark.parametrize(
    ("kind", "net", "fee", "amount"),
    [
        (ledger.EntryKind.DISPUTE_WITHDRAWAL, -3500, 1500, -2000),
        (ledger.EntryKind.DISPUTE_REINSTATEMENT, 3500, -1500, 2000),
        (ledger.EntryKind.DISPUTE_PAYOUT, 0, 0, 0),
    ],
)
def test_each_dispute_entry_balances_and_shows_stripes_fee(kind, net, fee, amount):
    entry = ledger.dispute_move(
        kind=kind,
        dispute="du_1",
        sequence=0,
        merchant_id="acct_1",
        currency="usd",
        connector="simulator",
        amount=2000,
        fee=1500,
        created=1,
    )
    assert sum(p.amount for p in entry.postings) == 0
    assert entry.merchant_effect == net
    txn = ledger.balance_transaction(entry, "available")
    assert (txn["amount"], txn["fee"], txn["net"]) == (amount, fee, net)
    assert txn["amount"] - txn["fee"] == txn["net"]


def test_a_lost_dispute_pays_the_held_funds_out_through_the_psp():
    moves = [
        ledger.dispute_move(
            kind=kind,
            dispute="du_1",
            sequence=n,
            merchant_id="acct_1",
            currency="usd",
            connector="stripe",
            amount=2000,
            fee=1500,
            created=1,
        )
        for n, kind in enumerate(
            [ledger.EntryKind.DISPUTE_WITHDRAWAL, ledger.EntryKind.DISPUTE_PAYOUT]
        )
    ]
    totals = ledger.sums(moves)
    assert totals[("acct_1", "usd", ledger.DISPUTES_HELD)] == 0
    assert totals[("acct_1", "usd", ledger.AVAILABLE)] == 3500
    assert totals[("acct_1", "usd", "psp_clearing:stripe")] == -3500


def test_events_of_each_change():
    opened = dispute(S.NEEDS_RESPONSE)
    assert rules.event_types(None, opened, [FundsMove.WITHDRAW]) == [
        "charge.dispute.created",
        "charge.dispute.funds_withdrawn",
    ]
    assert rules.event_types(opened, dispute(S.UNDER_REVIEW), []) == ["charge.dispute.updated"]
    assert rules.event_types(opened, dispute(S.WON), [FundsMove.REINSTATE]) == [
        "charge.dispute.funds_reinstated",
        "charge.dispute.closed",
    ]
    assert rules.event_types(None, dispute(S.WARNING_NEEDS_RESPONSE), []) == [
        "charge.dispute.created"
    ]


def test_evidence_and_submission_rules():
    opened = dispute(S.NEEDS_RESPONSE, evidence={"customer_name": "Jane"})
    changed = rules.with_evidence(opened, {"customer_name": "", "receipt": "file_1"}, False, {})
    assert changed.evidence == {"receipt": "file_1"} and changed.status == S.NEEDS_RESPONSE
    submitted = rules.with_evidence(changed, None, True, {"k": "v"})
    assert (submitted.status, submitted.submission_count) == (S.UNDER_REVIEW, 1)
    with pytest.raises(UnexpectedState) as again:
        rules.with_evidence(submitted, None, True, {})
    assert again.value.code == "dispute_already_submitted"
    inquiry = rules.with_evidence(dispute(S.WARNING_NEEDS_RESPONSE), None, True, {})
    assert inquiry.status == S.WARNING_UNDER_REVIEW
    assert rules.closed_by_merchant(dispute(S.UNDER_REVIEW)) == S.LOST
    assert rules.closed_by_merchant(dispute(S.WARNING_UNDER_REVIEW)) == S.WARNING_CLOSED
    with pytest.raises(UnexpectedState):
        rules.closed_by_merchant(dispute(S.WON))


def test_network_reason_codes_map_to_stripes_reasons():
    assert rules.reason_for("10.4") == rules.DisputeReason.FRAUDULENT
    assert rules.reason_for("4855") == rules.DisputeReason.PRODUCT_NOT_RECEIVED
    assert rules.reason_for("unheard-of") == rules.DisputeReason.GENERAL
    assert rules.reason_for(None) == rules.DisputeReason.GENERAL
