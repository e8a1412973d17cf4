"""Reconciliation's rules without I/O: report formats read back what they wrote, and each
line, booking and payout decides the exception it should."""

from __future__ import annotations

import pytest

from chalicelib.connectors.simulator_settlement import fee_for
from chalicelib.reconciliation.matching import (
    Booked,
    ExceptionKind,
    Repair,
    dispute_subject,
    match_row,
    missing_at_provider,
)
from chalicelib.reconciliation.reports import (
    DisputeMovement,
    Payout,
    RowType,
    SettlementRow,
    day_start,
    payouts_of,
    read_simulator,
    read_stripe_itemized,
    write_simulator,
    write_stripe_itemized,
)

DAY = "2026-11-30"


def line(**changes: object) -> SettlementRow:
    values: dict[str, object] = {
        "provider": "sim",
        "row_id": "ch_1",
        "type": RowType.CHARGE,
        "psp_reference": "sim_1",
        "charge_id": "ch_1",
        "payment_intent": "pi_1",
        "amount": 1000,
        "fee": 59,
        "currency": "usd",
        "created": day_start(DAY) + 60,
        "settled_on": DAY,
        "payout": "po_sim_20261130_usd",
    }
    values.update(changes)
    return SettlementRow.model_validate(values)


def charge(**changes: object) -> Booked:
    values: dict[str, object] = {
        "kind": "charge",
        "id": "ch_1",
        "payment_intent": "pi_1",
        "amount": 1000,
        "currency": "usd",
        "connector": "sim",
        "created": day_start(DAY) + 30,
    }
    values.update(changes)
    return Booked(**values)  # type: ignore[arg-type]


def withdrawal(**changes: object) -> SettlementRow:
    values: dict[str, object] = {
        "row_id": "sim:dp_1:dispute",
        "type": RowType.DISPUTE,
        "dispute_id": "dp_1",
        "amount": -1000,
        "fee": 1500,
    }
    values.update(changes)
    return line(**values)


def dispute_move(movement: DisputeMovement = DisputeMovement.WITHDRAWAL, **changes: object):
    taken = movement == DisputeMovement.WITHDRAWAL
    values: dict[str, object] = {
        "kind": movement.value,
        "id": dispute_subject("dp_1", movement),
        "fee": 1500 if taken else -1500,
        "object_id": "du_1",
    }
    values.update(changes)
    return charge(**values)


def test_each_report_format_reads_back_what_it_wrote():
    rows = [
        line(),
        line(row_id="sim:re_1", type=RowType.REFUND, amount=-250, fee=0, refund_id="re_1"),
        line(row_id="ch_2", charge_id="ch_2", currency="jpy", amount=500, fee=45, payout="po_j"),
        withdrawal(),
    ]
    assert read_simulator("sim", write_simulator(rows)) == rows
    stripe_rows = read_stripe_itemized("sim", write_stripe_itemized(rows))
    assert [(r.amount, r.fee, r.net, r.currency, r.type, m) for r, m in stripe_rows] == [
        (r.amount, r.fee, r.net, r.currency, r.type, None) for r in rows
    ]
    assert stripe_rows[-1][0].dispute_id == "dp_1"
    assert "10.00,0.59,9.41" in write_stripe_itemized(rows[:1])
    assert "-2.50" in write_stripe_itemized(rows[1:2])


def test_a_report_whose_net_is_not_gross_less_fee_is_refused():
    text = write_simulator([line()]).replace(",941,", ",940,")
    with pytest.raises(ValueError, match="gross - fee != net"):
        read_simulator("sim", text)


def test_payouts_add_up_each_provider_currency_and_day():
    rows = [line(), line(row_id="ch_2", charge_id="ch_2", amount=2000, fee=88)]
    assert payouts_of(rows) == [
        Payout(
            provider="sim",
            id="po_sim_20261130_usd",
            amount=941 + 1912,
            currency="usd",
            settled_on=DAY,
        )
    ]


def test_fees_are_the_simulators_price_rounded_half_up():
    assert fee_for(1000) == 59
    assert fee_for(1500) == 74
    assert fee_for(10) == 10  # never more than the amount


def test_a_line_matching_its_charge_is_no_exception():
    finding = match_row(line(), charge(), "succeeded", duplicate=False)
    assert finding.matched and finding.delta == 0


@pytest.mark.parametrize(
    ("settled", "kind", "delta"),
    [(1200, ExceptionKind.AMOUNT_OVER, 200), (900, ExceptionKind.AMOUNT_UNDER, -100)],
)
def test_another_amount_is_over_or_under(settled: int, kind: ExceptionKind, delta: int):
    finding = match_row(line(amount=settled), charge(), "succeeded", duplicate=False)
    assert finding.kind == kind and finding.delta == delta and finding.repair is None


def test_another_currency_is_a_currency_mismatch():
    finding = match_row(line(currency="eur"), charge(), "succeeded", duplicate=False)
    assert finding.kind == ExceptionKind.CURRENCY_MISMATCH


@pytest.mark.parametrize(
    ("status", "repair"),
    [
        ("succeeded", Repair.REFUND_AT_PROVIDER),
        ("requires_payment_method", Repair.REFUND_AT_PROVIDER),
        ("processing", None),  # its execution may still record this very charge
        (None, None),  # no PaymentIntent of PayFlow's names it: not certain whose it is
    ],
)
def test_an_unknown_charge_is_refunded_only_where_that_is_certain(status, repair):
    finding = match_row(line(charge_id="ch_x"), None, status, duplicate=False)
    assert finding.kind == ExceptionKind.MISSING_IN_PAYFLOW and finding.repair == repair


def test_a_capture_payflow_missed_is_recorded_while_the_payment_awaits_capture():
    held = charge(captured=False)
    assert match_row(line(), held, "requires_capture", duplicate=False).repair == (
        Repair.RECORD_CAPTURE
    )
    assert match_row(line(), held, "canceled", duplicate=False).repair is None


def test_a_second_settlement_of_one_refund_is_a_duplicate():
    refund_line = line(type=RowType.REFUND, amount=-300, fee=0, refund_id="re_1", row_id="x:2")
    finding = match_row(refund_line, None, "succeeded", duplicate=True)
    assert finding.kind == ExceptionKind.DUPLICATE_SETTLEMENT and finding.delta == -300


def test_a_dispute_line_matches_payflows_movement_of_that_dispute_by_amount_and_fee():
    # A withdrawal and a reinstatement, each against PayFlow's movement the same way
    reinstated = withdrawal(row_id="sim:dp_1:dispute_reversal", amount=1000, fee=-1500)
    assert reinstated.movement == DisputeMovement.REINSTATEMENT
    back = dispute_move(DisputeMovement.REINSTATEMENT)
    for row, booked in ((withdrawal(), dispute_move()), (reinstated, back)):
        finding = match_row(row, booked, "succeeded", duplicate=False)
        assert finding.matched and finding.object_id == "du_1", finding
        assert finding.provider_amount == finding.payflow_amount == row.net


@pytest.mark.parametrize(
    ("changes", "kind", "delta"),
    [
        ({"amount": -1200}, ExceptionKind.AMOUNT_OVER, -200),
        ({"amount": -900}, ExceptionKind.AMOUNT_UNDER, 100),
        ({"fee": 1000}, ExceptionKind.AMOUNT_UNDER, 500),
        ({"currency": "eur"}, ExceptionKind.CURRENCY_MISMATCH, 0),
    ],
)
def test_a_dispute_line_that_differs_is_an_exception_for_a_person(changes, kind, delta):
    finding = match_row(withdrawal(**changes), dispute_move(), "succeeded", duplicate=False)
    assert finding.kind == kind and finding.repair is None
    assert finding.delta == delta


def test_a_dispute_payflow_never_heard_of_is_missing_in_payflow_and_not_repaired():
    finding = match_row(withdrawal(), None, "succeeded", duplicate=False)
    assert finding.kind == ExceptionKind.MISSING_IN_PAYFLOW and finding.repair is None
    assert finding.object_id == "dp_1:dispute" and finding.delta == -2500
    # A reinstatement PayFlow has not booked is the same (its withdrawal alone does not match it)
    back = withdrawal(amount=1000, fee=-1500)
    assert match_row(back, None, None, duplicate=False).kind == ExceptionKind.MISSING_IN_PAYFLOW
    assert (
        match_row(withdrawal(), dispute_move(), None, duplicate=True).kind
        == ExceptionKind.DUPLICATE_SETTLEMENT
    )


def test_an_unsettled_dispute_movement_is_missing_at_provider_past_the_sla():
    overdue, _ = missing_at_provider(
        [dispute_move()], set(), day=DAY, now=day_start(DAY) + 3 * 86_400, sla_days=3
    )
    assert [(f.kind, f.object_id, f.delta) for f in overdue] == [
        (ExceptionKind.MISSING_AT_PROVIDER, "du_1", 2500)
    ]


def test_an_unsettled_booking_is_awaited_until_its_sla_passes():
    booked = [charge(), charge(id="ch_2")]
    start = day_start(DAY)
    waiting = missing_at_provider(booked, {"ch_1"}, day=DAY, now=start + 86_400, sla_days=3)
    assert waiting == ([], 1)
    overdue, awaited = missing_at_provider(
        booked, {"ch_1"}, day=DAY, now=start + 3 * 86_400, sla_days=3
    )
    assert awaited == 0 and [f.object_id for f in overdue] == ["ch_2"]
    assert overdue[0].kind == ExceptionKind.MISSING_AT_PROVIDER and overdue[0].delta == -1000


def test_the_same_finding_is_the_same_exception():
    first = match_row(line(amount=1200), charge(), "succeeded", duplicate=False)
    again = match_row(line(amount=1200), charge(), "succeeded", duplicate=False)
    assert first.exception_id == again.exception_id
    assert first.exception_id != match_row(line(), None, None, duplicate=False).exception_id
