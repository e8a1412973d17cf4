"""`payflow seed`'s plan: a history in time order, spread over the days, follow-ups after."""

from __future__ import annotations

import random
from collections import Counter

from payflow.seed import DAY, plan, slots

NOW = 1_796_000_000


def test_the_plan_spreads_payments_over_thirty_days_in_time_order() -> None:
    # When
    operations = plan(2000, 3, now=NOW, days=30, rng=random.Random(7))

    # Then
    creates = [op for op in operations if op.kind == "create"]
    assert len(creates) == 2000
    assert [op.at for op in operations] == sorted(op.at for op in operations)
    assert all(NOW - 30 * DAY <= op.at < NOW for op in operations)
    days = Counter((op.at - (NOW - 30 * DAY)) // DAY for op in creates)
    assert len(days) == 30 and min(days.values()) > 20
    # busier by day than by night (HOURLY)
    hours = Counter(op.at % DAY // 3600 for op in creates)
    assert hours[12] > 3 * hours[3]
    assert {op.merchant for op in creates} == {0, 1, 2}


def test_every_follow_up_comes_after_its_payment_in_a_later_slot() -> None:
    # Given
    operations = plan(500, 2, now=NOW, rng=random.Random(3))

    # When
    grouped = list(slots(operations, 16))

    # Then
    slot_of = {id(op): index for index, slot in enumerate(grouped) for op in slot}
    follow_ups = [op for op in operations if op.parent is not None]
    assert {op.kind for op in follow_ups} == {"authenticate", "capture", "cancel", "refund"}
    for op in follow_ups:
        assert op.at > op.parent.at  # type: ignore[union-attr]
        assert slot_of[id(op)] > slot_of[id(op.parent)]
    assert all(len(slot) <= 16 for slot in grouped)
    assert sum(len(slot) for slot in grouped) == len(operations)


def test_the_mix_has_declines_three_d_secure_partial_captures_and_refunds() -> None:
    operations = plan(1000, 3, now=NOW, rng=random.Random(1))
    methods = Counter(op.params.get("payment_method") for op in operations if op.kind == "create")
    assert methods["pm_card_threeDSecure2Required"] > 0
    assert methods["pm_card_refundFail"] > 0
    assert sum(n for pm, n in methods.items() if "Declined" in str(pm)) > 40
    partial = [op for op in operations if op.kind == "capture" and op.params]
    assert partial and all(
        op.params["amount_to_capture"] < op.parent.params["amount"]  # type: ignore[union-attr]
        for op in partial
    )
    assert any(op.kind == "refund" and "amount" in op.params for op in operations)
