"""Adyen's Settlement details report: read from a body written after Adyen's documented
columns, and downloaded by the Adyen connector from a fake Adyen's report URL, narrowed to one
PayFlow merchant's lines."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from chalicelib.connectors.adyen_connector import (
    AdyenAccount,
    AdyenConnector,
    Notifications,
    webhook_events,
)
from chalicelib.connectors.base import AuthorizationRequest, ReportsUnavailable
from chalicelib.reconciliation.reports import RowType, minor_units, read_adyen_settlement
from tests.fakes.adyen_server import (
    API_KEY,
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
        # A chargeback with its fee (a debit: gross 349.99, net 357.49)
        "Co,PayFlowECOM,1313642467023511,pi_B:1:adyen,mc,2026-11-30 22:37:26,CEST,Chargeback,"
        "2313642467170922,EUR,349.99,,1,EUR,357.49,,7.50,,,,mccredit,,7,,",
        # Zero- and three-decimal currencies
        "Co,PayFlowECOM,7713702551700001,pi_C:1:adyen,visa,2026-11-30 01:00:00,UTC,Settled,"
        "7713702551700002,JPY,,5000,1,JPY,,4950,50,,,,visaclassic,,7,,",
        "Co,PayFlowECOM,6613702551700001,pi_D:1:adyen,visa,2026-11-30 01:00:00,GMT,Settled,"
        "6613702551700002,KWD,,10.125,1,KWD,,10.000,0.125,,,,visaclassic,,7,,",
        # Batch-level lines: not payment lines
        "Co,PayFlowECOM,,,,2026-11-30 23:59:00,CET,Fee,Transaction Fees,,,,,EUR,0.35,,,,,,,,7,,",
        "Co,PayFlowECOM,,,,2026-11-30 23:59:59,CET,MerchantPayout,TX7XT,,,,,EUR,386.84,,,,,,,,7,,",
    ]
)


def test_payment_lines_are_read_in_minor_units_signed_from_the_merchants_side():
    rows = read_adyen_settlement("adyen", REPORT, settled_on="2026-12-01")

    assert [(r.type, r.amount, r.fee, r.currency) for r in rows] == [
        (RowType.CHARGE, 5000, 88, "eur"),
        (RowType.REFUND, -1250, 0, "eur"),
        (RowType.DISPUTE, -34999, 750, "eur"),
        (RowType.CHARGE, 5000, 50, "jpy"),
        (RowType.CHARGE, 10125, 125, "kwd"),
    ]
    charge, refund = rows[0], rows[1]
    assert charge.row_id == "8813702551795048" and charge.psp_reference == "8813702551707653"
    assert charge.charge_id == "ch_8813702551707653" and charge.payment_intent == "pi_A"
    assert charge.refund_id is None and charge.net == 4912
    assert refund.refund_id == "re_A" and refund.payment_intent == "pi_A"
    assert {r.settled_on for r in rows} == {"2026-12-01"}
    assert {r.payout for r in rows} == {"PayFlowECOM_batch_7"}
    # Creation dates are in the account's time zone: 11:26:49 CET is 10:26:49 UTC
    assert charge.created == int(datetime(2026, 11, 30, 10, 26, 49, tzinfo=UTC).timestamp())
    assert rows[2].created == int(datetime(2026, 11, 30, 20, 37, 26, tzinfo=UTC).timestamp())


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
        read_adyen_settlement("adyen", broken, settled_on="2026-11-30")


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


def test_the_connector_reads_the_days_report_and_keeps_the_merchants_lines(fake: FakeAdyen):
    # Given two merchants' payments on one Adyen merchant account, and a refund of one
    owners = {"pi_mine": "acct_me", "pi_theirs": "acct_other"}
    adyen = connector(fake, owners)
    mine = pay(adyen, "pi_mine", 2000)
    pay(adyen, "pi_theirs", 3000)
    adyen.refund(mine, 500, idempotency_key="re_mine")
    day = fake.journal[0]["at"].date().isoformat()

    # When the merchant's lines of the day are asked for
    rows = adyen.settlement_report("acct_me", day)

    # Then the report URL was the merchant account's day-named file, with the report user
    (sent,) = [r for r in fake.requests if r.path.startswith("/reports/")]
    assert sent.path.endswith(
        f"/MerchantAccount/{MERCHANT_ACCOUNT}/settlement_detail_report_{day.replace('-', '_')}.csv"
    )
    # ... and only this merchant's capture and refund came back, fees in minor units
    assert [(r.type, r.amount, r.psp_reference, r.refund_id) for r in rows] == [
        (RowType.CHARGE, 2000, mine, None),
        (RowType.REFUND, -500, mine, "re_mine"),
    ]
    assert rows[0].fee == 12 + 2000 * 6 // 1000 + 2000 * 2 // 1000 + 2000 * 3 // 1000
    assert {r.settled_on for r in rows} == {day}


def test_a_day_without_a_batch_has_no_lines_and_a_refused_report_user_is_said(fake: FakeAdyen):
    assert connector(fake, {}).settlement_report("acct_me", "2020-01-02") == []
    with pytest.raises(ReportsUnavailable, match="refused"):
        connector(fake, {}, password="wrong").settlement_report("acct_me", "2020-01-02")
    unconfigured = AdyenConnector(
        AdyenAccount(API_KEY, MERCHANT_ACCOUNT, f"{fake.url}/v72"), fake.find_notification
    )
    with pytest.raises(ReportsUnavailable, match="ADYEN_REPORT_USER"):
        unconfigured.settlement_report("acct_me", "2020-01-02")


def stored_by_payflow(fake: FakeAdyen):
    """What PayFlow would index of the fake's notifications, read the connector's way."""
    index: dict[tuple[str, str], dict] = {}
    for item in fake.notifications:
        body = json.dumps(notification_body([item])).encode()
        for event in webhook_events(HMAC_KEY, {}, body):
            for reference in event.references:
                index[(event.type, reference)] = event.body
    return lambda code, reference: index.get((code, reference))


def test_the_batch_a_report_available_notification_announced_is_the_one_read(fake: FakeAdyen):
    # Given a payment settled today and today's batch announced by REPORT_AVAILABLE
    owners = {"pi_mine": "acct_me"}
    psp = pay(connector(fake, owners), "pi_mine", 2000)
    day = fake.journal[0]["at"].date()
    announced = fake.close_batch(day)
    adyen = connector(fake, owners, notifications=stored_by_payflow(fake))

    # When the day is read
    rows = adyen.settlement_report("acct_me", day.isoformat())

    # Then the announced file was downloaded, not the day-named one
    (sent,) = [r for r in fake.requests if r.path.startswith("/reports/")]
    assert sent.path.endswith("/" + announced["pspReference"])
    assert announced["pspReference"].startswith("settlement_detail_report_batch_")
    assert [(r.psp_reference, r.amount) for r in rows] == [(psp, 2000)]


def test_an_announced_url_outside_the_report_folder_is_not_fetched(fake: FakeAdyen):
    announced = {
        "pspReference": "settlement_detail_report_batch_9.csv",
        "reason": "http://127.0.0.1:9/elsewhere/settlement_detail_report_batch_9.csv",
    }
    adyen = connector(fake, {}, notifications=lambda code, reference: announced)
    assert adyen.settlement_report("acct_me", "2020-01-02") == []
    (sent,) = [r for r in fake.requests if r.path.startswith("/reports/")]
    assert sent.path.endswith("/settlement_detail_report_2020_01_02.csv")
