"""Adyen's Settlement details report: read from a body written after Adyen's documented
columns (payments, refunds, a dispute's chargeback, reversal and second chargeback, the
batch's payout), and downloaded by the Adyen connector from a fake Adyen's report URL: the
lines booked on a day from every batch that holds them, narrowed to one PayFlow merchant's."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from chalicelib.connectors.adyen_connector import (
    AdyenAccount,
    AdyenConnector,
    Notifications,
    webhook_events,
)
from chalicelib.connectors.base import AuthorizationRequest, ReportsUnavailable
from chalicelib.reconciliation.matching import Booked, ExceptionKind, dispute_subject, match_row
from chalicelib.reconciliation.reports import (
    DisputeMovement,
    Payout,
    RowType,
    minor_units,
    payouts_of,
    read_adyen_payouts,
    read_adyen_settlement,
)
from tests.fakes.adyen_server import (
    API_KEY,
    CHARGEBACK_FEE,
    HMAC_KEY,
    MERCHANT_ACCOUNT,
    REPORT_PASSWORD,
    REPORT_USER,
    FakeAdyen,
    notification_body,
)

HEADER = (
    "Company Account,Merchant Account,Psp Reference,Merchant Reference,Payment Method,"
    "Creation Date,TimeZone,Type,Modification Reference,Gross Currency,Gross Debit (GC),"
    "Gross Credit (GC),Exchange Rate,Net Currency,Net Debit (NC),Net Credit (NC),"
    "Commission (NC),Markup (NC),Scheme Fees (NC),Interchange (NC),Payment Method Variant,"
    "Modification Merchant Reference,Batch Number,Reserved4,Reserved5"
)
REPORT = "\n".join(
    [
        HEADER,
        # A capture of 50.00 EUR, 0.88 kept (commission, markup, scheme fees, interchange)
        "Co,PayFlowECOM,8813702551707653,pi_A:1:adyen,visa,2026-11-30 11:26:49,CET,Settled,"
        "8813702551795048,EUR,,50.00,1,EUR,,49.12,0.12,0.30,0.10,0.36,visaclassic,"
        "pi_A:capture,7,,",
        # A refund of 12.50 EUR of it, the refund PayFlow asked with as its reference
        "Co,PayFlowECOM,8813702551707653,pi_A:1:adyen,visa,2026-11-30 14:02:00,CET,Refunded,"
        "8813702551799999,EUR,12.50,,1,EUR,12.50,,,,,,visaclassic,re_A,7,,",
        # A chargeback with its fee (a debit: gross 349.99, net 357.49), the dispute's own
        # PSP reference as its Modification Reference
        "Co,PayFlowECOM,1313642467023511,pi_B:1:adyen,mc,2026-11-30 22:37:26,CEST,Chargeback,"
        "2313642467170922,EUR,349.99,,1,EUR,357.49,,7.50,,,,mccredit,,7,,",
        # ... reversed after midnight CET, which is still 30 November in UTC
        "Co,PayFlowECOM,1313642467023511,pi_B:1:adyen,mc,2026-12-01 00:30:00,CET,"
        "ChargebackReversed,2313642467170922,EUR,,349.99,1,EUR,,357.49,-7.50,,,,mccredit,,7,,",
        # ... and charged back a second time on 1 December
        "Co,PayFlowECOM,1313642467023511,pi_B:1:adyen,mc,2026-12-01 09:00:00,CET,"
        "SecondChargeback,2313642467170922,EUR,349.99,,1,EUR,357.49,,7.50,,,,mccredit,,7,,",
        # Zero- and three-decimal currencies
        "Co,PayFlowECOM,7713702551700001,pi_C:1:adyen,visa,2026-11-30 01:00:00,UTC,Settled,"
        "7713702551700002,JPY,,5000,1,JPY,,4950,50,,,,visaclassic,,7,,",
        "Co,PayFlowECOM,6613702551700001,pi_D:1:adyen,visa,2026-11-30 01:00:00,GMT,Settled,"
        "6613702551700002,KWD,,10.125,1,KWD,,10.000,0.125,,,,visaclassic,,7,,",
        # Batch-level lines: not payment lines; the payout is paid only in EUR
        "Co,PayFlowECOM,,,,2026-12-01 23:59:00,CET,Fee,Transaction Fees,,,,,EUR,0.35,,,,,,,,7,,",
        "Co,PayFlowECOM,,,,2026-12-01 23:59:59,CET,MerchantPayout,"
        "TX7XT PayFlowECOM batch 7,,,,,EUR,36.27,,,,,,,,7,,",
    ]
)


def test_payment_lines_are_read_in_minor_units_signed_from_the_merchants_side():
    rows = read_adyen_settlement("adyen", REPORT)

    assert [(r.type, r.amount, r.fee, r.currency, r.settled_on) for r in rows] == [
        (RowType.CHARGE, 5000, 88, "eur", "2026-11-30"),
        (RowType.REFUND, -1250, 0, "eur", "2026-11-30"),
        (RowType.DISPUTE, -34999, 750, "eur", "2026-11-30"),
        (RowType.DISPUTE, 34999, -750, "eur", "2026-11-30"),
        (RowType.DISPUTE, -34999, 750, "eur", "2026-12-01"),
        (RowType.CHARGE, 5000, 50, "jpy", "2026-11-30"),
        (RowType.CHARGE, 10125, 125, "kwd", "2026-11-30"),
    ]
    charge, refund = rows[0], rows[1]
    assert charge.row_id == "8813702551795048" and charge.psp_reference == "8813702551707653"
    assert charge.charge_id == "ch_8813702551707653" and charge.payment_intent == "pi_A"
    assert charge.refund_id is None and charge.dispute_id is None and charge.net == 4912
    assert refund.refund_id == "re_A" and refund.payment_intent == "pi_A"
    # Creation dates are in the account's time zone: 11:26:49 CET is 10:26:49 UTC
    assert charge.created == int(datetime(2026, 11, 30, 10, 26, 49, tzinfo=UTC).timestamp())
    assert rows[2].created == int(datetime(2026, 11, 30, 20, 37, 26, tzinfo=UTC).timestamp())


def test_a_disputes_lines_name_the_dispute_and_carry_its_fee():
    chargeback, reversed_, second = read_adyen_settlement("adyen", REPORT)[2:5]

    # The dispute is the Modification Reference (the pspReference of its notifications); the
    # disputed payment is the Psp Reference
    assert {r.dispute_id for r in (chargeback, reversed_, second)} == {"2313642467170922"}
    assert {r.psp_reference for r in (chargeback, reversed_, second)} == {"1313642467023511"}
    assert chargeback.charge_id == "ch_1313642467023511" and chargeback.payment_intent == "pi_B"
    # One line per journal type: three lines of one dispute, three ids
    assert [r.row_id for r in (chargeback, reversed_, second)] == [
        "2313642467170922:Chargeback",
        "2313642467170922:ChargebackReversed",
        "2313642467170922:SecondChargeback",
    ]
    # A chargeback takes the amount and its fee, its reversal gives both back
    assert (chargeback.movement, chargeback.net) == (DisputeMovement.WITHDRAWAL, -35749)
    assert (reversed_.movement, reversed_.net) == (DisputeMovement.REINSTATEMENT, 35749)
    assert (second.movement, second.net) == (DisputeMovement.WITHDRAWAL, -35749)


def test_a_batch_spanning_days_is_one_payout_each_line_names():
    rows = read_adyen_settlement("adyen", REPORT)

    # Each line is paid out by its batch: the MerchantPayout's reference (the payout
    # description's TX...XT reference the bank statement shows) where the batch paid one, the
    # batch itself for a currency it paid nothing in
    assert {r.payout for r in rows if r.currency == "eur"} == {"TX7XT"}
    assert {r.payout for r in rows if r.currency != "eur"} == {"PayFlowECOM_batch_7"}
    # What the batch paid: the MerchantPayout's amount on the day Adyen booked it, else the
    # batch's net in that currency
    assert read_adyen_payouts("adyen", REPORT) == [
        Payout(
            provider="adyen",
            id="PayFlowECOM_batch_7",
            amount=4950,
            currency="jpy",
            settled_on="2026-11-30",
        ),
        Payout(
            provider="adyen",
            id="PayFlowECOM_batch_7",
            amount=10000,
            currency="kwd",
            settled_on="2026-11-30",
        ),
        Payout(provider="adyen", id="TX7XT", amount=3627, currency="eur", settled_on="2026-12-01"),
    ]


def booked(movement: DisputeMovement, occurrence: int = 1, **changes: object) -> Booked:
    """PayFlow's movement of the sample's dispute, as its balance transactions say."""
    values: dict[str, object] = {
        "kind": movement.value,
        "id": dispute_subject("2313642467170922", movement, occurrence),
        "payment_intent": "pi_B",
        "amount": 34999,
        "currency": "eur",
        "connector": "adyen",
        "created": int(datetime(2026, 11, 30, 20, tzinfo=UTC).timestamp()),
        "fee": 750 if movement == DisputeMovement.WITHDRAWAL else -750,
        "object_id": "du_B",
    }
    values.update(changes)
    return Booked(**values)  # type: ignore[arg-type]


def test_dispute_lines_match_the_disputes_movements_as_other_providers_do():
    chargeback, reversed_, second = read_adyen_settlement("adyen", REPORT)[2:5]
    withdrawn, reinstated = DisputeMovement.WITHDRAWAL, DisputeMovement.REINSTATEMENT

    def kind(row, record, duplicate=False):
        return match_row(row, record, "succeeded", duplicate=duplicate).kind

    # Each line settles its own movement: the second chargeback the second withdrawal
    subjects = [
        dispute_subject(r.dispute_id or "", r.movement or withdrawn, r.occurrence)
        for r in (chargeback, reversed_, second)
    ]
    assert subjects == [booked(withdrawn).id, booked(reinstated).id, booked(withdrawn, 2).id]
    assert len(set(subjects)) == 3
    assert kind(chargeback, booked(withdrawn)) is None
    assert kind(reversed_, booked(reinstated)) is None
    assert kind(second, booked(withdrawn, 2)) is None
    # Amount, fee and currency compared; unknown disputes and second lines are exceptions
    assert kind(chargeback, booked(withdrawn, amount=35099)) == ExceptionKind.AMOUNT_UNDER
    assert kind(chargeback, booked(withdrawn, amount=34899)) == ExceptionKind.AMOUNT_OVER
    assert kind(chargeback, booked(withdrawn, fee=1500)) == ExceptionKind.AMOUNT_UNDER
    assert kind(reversed_, booked(reinstated, fee=-1500)) == ExceptionKind.AMOUNT_UNDER
    assert kind(chargeback, booked(withdrawn, currency="usd")) == ExceptionKind.CURRENCY_MISMATCH
    assert kind(chargeback, None) == ExceptionKind.MISSING_IN_PAYFLOW
    assert kind(chargeback, booked(withdrawn), True) == ExceptionKind.DUPLICATE_SETTLEMENT
    finding = match_row(chargeback, booked(withdrawn, amount=35099), None, duplicate=False)
    assert (finding.object_id, finding.provider_amount, finding.payflow_amount) == (
        "du_B",
        -35749,
        -35849,
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ((",49.12,0.12,", ",49.13,0.12,"), "gross - net"),
        ((",EUR,,49.12,", ",USD,,49.12,"), "another currency"),
        ((",50.00,1,", ",50.001,1,"), "more decimals"),
        (("11:26:49,CET,", "11:26:49,PST,"), "time zone"),
        ((",50.00,1,", ",fifty,1,"), "not an amount"),
    ],
)
def test_a_line_that_does_not_add_up_is_refused(change: tuple[str, str], message: str):
    broken = REPORT.replace(*change, 1)
    with pytest.raises(ValueError, match=message):
        read_adyen_settlement("adyen", broken)


def test_major_units_follow_each_currencys_decimals():
    assert minor_units("12.34", "eur") == 1234
    assert minor_units("-0.5", "usd") == -50
    assert minor_units("5000", "jpy") == 5000
    assert minor_units("1.005", "bhd") == 1005
    assert minor_units("", "eur") == 0
    with pytest.raises(ValueError):
        minor_units("1.5", "jpy")


# -- downloaded by the connector ---------------------------------------------------------------


@pytest.fixture
def fake() -> Iterator[FakeAdyen]:
    with FakeAdyen() as server:
        yield server


def connector(
    fake: FakeAdyen,
    owners: dict[str, str],
    password: str = REPORT_PASSWORD,
    notifications: Notifications | None = None,
) -> AdyenConnector:
    account = AdyenAccount(
        API_KEY,
        MERCHANT_ACCOUNT,
        f"{fake.url}/v72",
        report_user=REPORT_USER,
        report_password=password,
        report_base=f"{fake.url}/reports/download",
    )
    return AdyenConnector(
        account, notifications or fake.find_notification, timeout_ms=2000, owner=owners.get
    )


def pay(adyen: AdyenConnector, pi: str, amount: int) -> str:
    result = adyen.authorize(
        AuthorizationRequest(pi, amount, "eur", "pm_card_visa", True, f"{pi}:1:adyen")
    )
    return result.psp_reference


def downloads(fake: FakeAdyen) -> list[str]:
    """The report files asked for, by name, in order."""
    return [r.path.rsplit("/", 1)[-1] for r in fake.requests if r.path.startswith("/reports/")]


def test_without_an_announcement_the_day_named_files_are_read(fake: FakeAdyen):
    # Given two merchants' payments on one Adyen merchant account, and a refund of one
    owners = {"pi_mine": "acct_me", "pi_theirs": "acct_other"}
    adyen = connector(fake, owners)
    mine = pay(adyen, "pi_mine", 2000)
    pay(adyen, "pi_theirs", 3000)
    adyen.refund(mine, 500, idempotency_key="re_mine")
    day = fake.journal[0]["at"].date()

    # When the merchant's lines of the day are asked for, no batch announced
    rows = adyen.settlement_report("acct_me", day.isoformat())

    # Then the day-named files of the day and the next (a daily batch of the account's time
    # zone may end after the UTC day) were downloaded with the report user
    assert downloads(fake) == [
        f"settlement_detail_report_{(day + timedelta(days=n)).strftime('%Y_%m_%d')}.csv"
        for n in (0, 1)
    ]
    # ... and only this merchant's capture and refund came back, fees in minor units
    assert [(r.type, r.amount, r.psp_reference, r.refund_id) for r in rows] == [
        (RowType.CHARGE, 2000, mine, None),
        (RowType.REFUND, -500, mine, "re_mine"),
    ]
    assert rows[0].fee == 12 + 2000 * 6 // 1000 + 2000 * 2 // 1000 + 2000 * 3 // 1000
    assert {r.settled_on for r in rows} == {day.isoformat()}


def test_a_day_without_a_batch_has_no_lines_and_a_refused_report_user_is_said(fake: FakeAdyen):
    assert connector(fake, {}).settlement_report("acct_me", "2020-01-02") == []
    with pytest.raises(ReportsUnavailable, match="refused"):
        connector(fake, {}, password="wrong").settlement_report("acct_me", "2020-01-02")
    unconfigured = AdyenConnector(
        AdyenAccount(API_KEY, MERCHANT_ACCOUNT, f"{fake.url}/v72"), fake.find_notification
    )
    with pytest.raises(ReportsUnavailable, match="ADYEN_REPORT_USER"):
        unconfigured.settlement_report("acct_me", "2020-01-02")


def stored_by_payflow(fake: FakeAdyen, order: list[int] | None = None) -> Notifications:
    """What PayFlow would index of the fake's notifications (in `order` of their positions,
    default as sent), read the connector's way: the latest per code and reference."""
    index: dict[tuple[str, str], dict] = {}
    items = fake.notifications
    for item in [items[i] for i in order] if order is not None else items:
        body = json.dumps(notification_body([item])).encode()
        for event in webhook_events(HMAC_KEY, {}, body):
            for reference in event.references:
                index[(event.type, reference)] = event.body
    return lambda code, reference: index.get((code, reference))


def test_the_batch_a_report_available_notification_announced_is_the_one_read(fake: FakeAdyen):
    # Given a payment settled today and its batch announced by REPORT_AVAILABLE
    owners = {"pi_mine": "acct_me"}
    psp = pay(connector(fake, owners), "pi_mine", 2000)
    announced = fake.close_batch()
    adyen = connector(fake, owners, notifications=stored_by_payflow(fake))

    # When the day is read
    rows = adyen.settlement_report("acct_me", fake.journal[0]["at"].date().isoformat())

    # Then the announced file was downloaded, not a day-named one
    assert downloads(fake) == [announced["pspReference"]]
    assert announced["pspReference"] == "settlement_detail_report_batch_1.csv"
    assert [(r.psp_reference, r.amount, r.payout) for r in rows] == [(psp, 2000, "TX1XT")]


def at(day: int, hour: int) -> datetime:
    return datetime(2026, 3, day, hour, tzinfo=UTC)


def test_two_batches_over_three_days_give_each_day_its_lines_and_each_batch_its_payout(
    fake: FakeAdyen,
):
    # Given four payments booked on 2, 3 (twice) and 4 March, and two batches: the first
    # closed at noon on the 3rd, the second late on the 4th
    owners = {f"pi_{n}": "acct_me" for n in range(4)}
    adyen = connector(fake, owners)
    psps = [pay(adyen, f"pi_{n}", 1000 * (n + 1)) for n in range(4)]
    for entry, when in zip(fake.journal, (at(2, 10), at(3, 9), at(3, 20), at(4, 10)), strict=True):
        entry["at"] = when
    fake.close_batch(at(3, 12))
    fake.close_batch(at(4, 23))
    stored = stored_by_payflow(fake)

    def day(n: int) -> tuple[list[tuple[str, str | None]], list[str], list[Payout]]:
        fake.requests.clear()
        run = connector(fake, owners, notifications=stored)
        rows = run.settlement_report("acct_me", f"2026-03-0{n}")
        payouts = run.settlement_payouts("acct_me", f"2026-03-0{n}")
        return [(r.psp_reference, r.payout) for r in rows], downloads(fake), payouts

    # When each day is read, then each gets the lines booked on it from every batch holding
    # them, each batch file downloaded once per run
    first, second = "settlement_detail_report_batch_1.csv", "settlement_detail_report_batch_2.csv"
    lines, files, payouts = day(2)
    assert (lines, files, payouts) == ([(psps[0], "TX1XT")], [first], [])
    lines, files, payouts = day(3)
    assert lines == [(psps[1], "TX1XT"), (psps[2], "TX2XT")] and files == [first, second]
    # ... and a batch's payout is the day Adyen paid it (the first batch's on the 3rd)
    fee = lambda a: 12 + a * 6 // 1000 + a * 2 // 1000 + a * 3 // 1000  # noqa: E731
    paid = [
        Payout(
            provider="adyen",
            id="TX1XT",
            amount=1000 - fee(1000) + 2000 - fee(2000),
            currency="eur",
            settled_on="2026-03-03",
        )
    ]
    assert payouts == paid
    lines, files, payouts = day(4)
    assert lines == [(psps[3], "TX2XT")] and files == [second]
    assert [(p.id, p.amount) for p in payouts] == [("TX2XT", 3000 - fee(3000) + 4000 - fee(4000))]
    # With one PayFlow merchant on the account and a batch within one day, the lines add up
    # to the payout a bank credit carries
    single = connector(fake, owners, notifications=stored)
    assert [
        (p.id, p.amount) for p in payouts_of(single.settlement_report("acct_me", "2026-03-02"))
    ] == [("TX1XT", 1000 - fee(1000))]


def test_several_batches_announced_on_a_day_are_all_read_in_any_order(fake: FakeAdyen):
    # Given payments on 5 March in three batches: two closed that day, one the next
    owners = {f"pi_{n}": "acct_me" for n in range(3)}
    adyen = connector(fake, owners)
    psps = [pay(adyen, f"pi_{n}", 1000) for n in range(3)]
    for entry, when in zip(fake.journal, (at(5, 8), at(5, 14), at(5, 22)), strict=True):
        entry["at"] = when
    for when in (at(5, 10), at(5, 16), at(6, 10)):
        fake.close_batch(when)
    # ... whose announcements reached PayFlow out of order (the second before the first)
    announcements = [
        i for i, n in enumerate(fake.notifications) if n["eventCode"] == "REPORT_AVAILABLE"
    ]
    order = [i for i in range(len(fake.notifications)) if i not in announcements]
    order += [announcements[1], announcements[0], announcements[2]]
    run = connector(fake, owners, notifications=stored_by_payflow(fake, order))

    # When the day is read, then every batch holding its lines was
    rows = run.settlement_report("acct_me", "2026-03-05")
    assert [(r.psp_reference, r.payout) for r in rows] == [
        (psps[0], "TX1XT"),
        (psps[1], "TX2XT"),
        (psps[2], "TX3XT"),
    ]
    assert downloads(fake) == [f"settlement_detail_report_batch_{n}.csv" for n in (1, 2, 3)]


def test_an_announced_url_outside_the_report_folder_is_not_fetched(fake: FakeAdyen):
    announced = {
        "pspReference": "settlement_detail_report_batch_9.csv",
        "reason": "http://127.0.0.1:9/elsewhere/settlement_detail_report_batch_9.csv",
        "eventDate": "2020-01-02T12:00:00+00:00",
    }
    kept = {"settlement_day:2020-01-02", "settlement_batch:9"}
    adyen = connector(
        fake, {}, notifications=lambda code, reference: announced if reference in kept else None
    )
    assert adyen.settlement_report("acct_me", "2020-01-02") == []
    assert downloads(fake) == []


def test_the_fakes_dispute_lines_name_the_dispute_its_notifications_name(fake: FakeAdyen):
    # Given a payment charged back, then the chargeback reversed, as Adyen notifies them
    owners = {"pi_disputed": "acct_me"}
    adyen = connector(fake, owners)
    psp = pay(adyen, "pi_disputed", 2500)
    sent = [fake.dispute(psp, "CHARGEBACK"), fake.dispute(psp, "CHARGEBACK_REVERSED", status="Won")]
    fake.close_batch()
    run = connector(fake, owners, notifications=stored_by_payflow(fake))

    # When the day is read
    rows = run.settlement_report("acct_me", fake.journal[0]["at"].date().isoformat())

    # Then each dispute line names the dispute PayFlow keeps from the (signed) notifications
    reports = [
        event.dispute
        for item in sent
        for event in webhook_events(HMAC_KEY, {}, json.dumps(notification_body([item])).encode())
    ]
    assert {r.reference for r in reports if r} == {rows[1].dispute_id} == {rows[2].dispute_id}
    assert [(r.type, r.amount, r.fee) for r in rows] == [
        (RowType.CHARGE, 2500, 12 + 2500 * 11 // 1000),
        (RowType.DISPUTE, -2500, CHARGEBACK_FEE),
        (RowType.DISPUTE, 2500, -CHARGEBACK_FEE),
    ]
