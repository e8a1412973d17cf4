"""Which withdrawal a dispute line settles when its report does not say (Stripe's and
Razorpay's lines name the dispute only): the one it settled before, else the next no other line
settled, else it is a duplicate; and the lines of one dispute kept in one chunk, oldest first."""

from __future__ import annotations

from chalicelib.reconciliation.matching import (
    dispute_occurrence,
    dispute_subject,
    dispute_subjects,
    in_occurrence_order,
)
from chalicelib.reconciliation.reports import (
    DisputeMovement,
    RowType,
    SettlementRow,
    read_stripe_itemized,
    write_stripe_itemized,
)
from chalicelib.services.reconciliation import _chunks_of

WITHDRAWN, REINSTATED = DisputeMovement.WITHDRAWAL, DisputeMovement.REINSTATEMENT
FIRST = dispute_subject("du_1", WITHDRAWN)
SECOND = dispute_subject("du_1", WITHDRAWN, 2)
WON_THEN_LOST = {FIRST, dispute_subject("du_1", REINSTATED), SECOND}
"""What PayFlow booked for a dispute withdrawn, reinstated and withdrawn again."""


def line(
    row_id: str, amount: int = -1200, *, created: int = 100, **changes: object
) -> SettlementRow:
    values: dict[str, object] = {
        "provider": "stripe",
        "row_id": row_id,
        "type": RowType.DISPUTE,
        "psp_reference": "pi_1",
        "dispute_id": "du_1",
        "amount": amount,
        "fee": 1500 if amount < 0 else -1500,
        "currency": "usd",
        "created": created,
        "settled_on": "2026-12-01",
    }
    values.update(changes)
    return SettlementRow(**values)  # type: ignore[arg-type]


def occurrence(row: SettlementRow, settled: dict[str, str], booked=WON_THEN_LOST) -> int | None:
    return dispute_occurrence(row, booked, settled).occurrence


def test_a_withdrawal_line_takes_the_first_withdrawal_no_other_line_settled():
    assert dispute_subjects(line("txn_a"), WON_THEN_LOST) == [FIRST, SECOND]
    assert occurrence(line("txn_a"), {}) == 1
    assert occurrence(line("txn_b"), {FIRST: "txn_a"}) == 2
    # A reinstatement has one occurrence here: the one PayFlow booked
    assert occurrence(line("txn_r", 1200), {FIRST: "txn_a"}) == 1


def test_the_same_line_seen_again_settles_what_it_settled_before():
    both = {FIRST: "txn_a", SECOND: "txn_b"}
    assert occurrence(line("txn_a"), both) == 1
    assert occurrence(line("txn_b"), both) == 2
    # Even when it alone settled the second (the first's line came later, in another run)
    assert occurrence(line("txn_b"), {SECOND: "txn_b"}) == 2


def test_one_line_more_than_payflow_moved_is_the_duplicate_of_the_last():
    placed = dispute_occurrence(line("txn_c"), WON_THEN_LOST, {FIRST: "txn_a", SECOND: "txn_b"})
    assert placed.occurrence == 2  # settled by txn_b: the caller finds it a duplicate
    # A dispute PayFlow withdrew once: a second line is a duplicate of that one
    assert occurrence(line("txn_b"), {FIRST: "txn_a"}, {FIRST}) == 1
    # A dispute PayFlow never moved: its first, missing in PayFlow
    assert occurrence(line("txn_a"), {}, set()) == 1


def test_a_report_that_says_which_occurrence_is_taken_at_its_word():
    second = line("adyen_2", occurrence=2)
    assert dispute_subjects(second, WON_THEN_LOST) == [SECOND]
    assert occurrence(second, {}) == 2


def test_lines_of_one_dispute_are_ordered_by_time_then_id_and_kept_in_one_chunk():
    later, earlier, tie = line("txn_b", created=200), line("txn_z", created=100), line("txn_a")
    assert [r.row_id for r in in_occurrence_order([later, earlier, tie])] == [
        "txn_a",
        "txn_z",
        "txn_b",
    ]
    charges = [
        line(f"ch_{n}", 1000, type=RowType.CHARGE, dispute_id=None, fee=59) for n in range(3)
    ]
    rows = [charges[0], later, charges[1], earlier, charges[2]]
    chunks = [[r.row_id for r in chunk] for chunk in _chunks_of(rows, 2)]
    assert chunks == [["ch_0"], ["txn_z", "txn_b"], ["ch_1", "ch_2"]]
    assert [len(c) for c in _chunks_of(charges, 2)] == [2, 1]


def test_stripes_dispute_reversal_lines_are_read_as_reinstatements():
    report = (
        "balance_transaction_id,created_utc,available_on_utc,currency,gross,fee,net,"
        "reporting_category,source_id,description,automatic_payout_id,"
        "automatic_payout_effective_at_utc,charge_id,payment_intent_id\n"
        "txn_w,2026-12-01 10:00:00,2026-12-01 00:00:00,usd,-12.00,15.00,-27.00,dispute,du_1,,"
        "po_1,2026-12-01 00:00:00,ch_1,pi_1\n"
        "txn_r,2026-12-01 11:00:00,2026-12-01 00:00:00,usd,12.00,-15.00,27.00,dispute_reversal,"
        "du_1,,po_1,2026-12-01 00:00:00,ch_1,pi_1\n"
    )
    rows = [row for row, _ in read_stripe_itemized("stripe", report)]
    assert [(r.row_id, r.dispute_id, r.movement, r.net) for r in rows] == [
        ("txn_w", "du_1", WITHDRAWN, -2700),
        ("txn_r", "du_1", REINSTATED, 2700),
    ]
    # PayFlow's own writer names them the same way
    assert ",dispute_reversal,du_1," in write_stripe_itemized(rows[1:])
