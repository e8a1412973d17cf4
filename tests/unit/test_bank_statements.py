"""The merchant's bank statement without I/O: camt.053 and PayFlow's CSV read into signed
minor units, hostile and broken files refused, and payouts matched three-way with the credits
(by reference, else by one amount in the window, never by a guess)."""

from __future__ import annotations

import pytest

from chalicelib.reconciliation.bank import (
    MAX_XML_DEPTH,
    StatementFormat,
    StatementInvalid,
    parse_statement,
)
from chalicelib.reconciliation.matching import (
    BankView,
    ExceptionKind,
    match_bank,
    unmatched_credits,
    window_of,
)
from chalicelib.reconciliation.reports import (
    BankLine,
    Payout,
    day_start,
    write_bank_statement,
)

DAY = "2026-11-30"
NS = "urn:iso:std:iso:20022:tech:xsd:camt.053.001.02"


def entry(
    amount: str,
    currency: str = "EUR",
    *,
    direction: str = "CRDT",
    booked: str = DAY,
    end_to_end: str | None = None,
    remittance: str = "",
    bank_ref: str | None = None,
    status: str = "<Sts>BOOK</Sts>",
) -> str:
    refs = f"<Refs><EndToEndId>{end_to_end}</EndToEndId></Refs>" if end_to_end else ""
    info = f"<RmtInf><Ustrd>{remittance}</Ustrd></RmtInf>" if remittance else ""
    servicer = f"<AcctSvcrRef>{bank_ref}</AcctSvcrRef>" if bank_ref else ""
    return (
        f'<Ntry><Amt Ccy="{currency}">{amount}</Amt><CdtDbtInd>{direction}</CdtDbtInd>{status}'
        f"<BookgDt><Dt>{booked}</Dt></BookgDt><ValDt><Dt>{booked}</Dt></ValDt>{servicer}"
        f"<NtryDtls><TxDtls>{refs}{info}</TxDtls></NtryDtls></Ntry>"
    )


def camt(*entries: str, statement: str = "STMT-1", start: str = DAY, end: str = DAY) -> str:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><Document xmlns="{NS}"><BkToCstmrStmt>'
        f"<GrpHdr><MsgId>MSG-1</MsgId></GrpHdr><Stmt><Id>{statement}</Id>"
        f"<FrToDt><FrDtTm>{start}T00:00:00</FrDtTm><ToDtTm>{end}T23:59:59</ToDtTm></FrToDt>"
        "<Acct><Id><IBAN>DE89370400440532013000</IBAN></Id></Acct>"
        f"{''.join(entries)}</Stmt></BkToCstmrStmt></Document>"
    )


def test_camt053_entries_become_signed_minor_units_by_each_currencys_decimals():
    # Given a statement with a EUR credit, a JPY credit, a KWD debit and a pending entry
    text = camt(
        entry("1234.56", end_to_end="po_1AbC", remittance="STRIPE PAYOUT", bank_ref="B-1"),
        entry("1200", "JPY"),
        entry("1.234", "KWD", direction="DBIT"),
        entry("9.00", status="<Sts><Cd>PDNG</Cd></Sts>"),
        end="2026-12-02",
    )

    # When it is read
    parsed = parse_statement(text)

    # Then each booked entry is kept, credits positive and debits negative, the pending one not
    assert parsed.format == StatementFormat.CAMT_053
    assert [(line.amount, line.currency) for line in parsed.lines] == [
        (123456, "eur"),
        (1200, "jpy"),
        (-1234, "kwd"),
    ]
    first = parsed.lines[0]
    assert (first.end_to_end_id, first.description, first.bank_reference) == (
        "po_1AbC",
        "STRIPE PAYOUT",
        "B-1",
    )
    assert (parsed.period_start, parsed.period_end, parsed.skipped) == (DAY, "2026-12-02", 1)
    assert parsed.statement_ids == ["STMT-1"] and parsed.account == "DE89370400440532013000"
    # And the same entries read again have the same ids (an upload's entries are stable)
    assert [line.entry_id for line in parse_statement(text).lines] == [
        line.entry_id for line in parsed.lines
    ]
    assert len({line.entry_id for line in parsed.lines}) == 3


def test_payflows_bank_csv_reads_back_what_it_wrote():
    lines = [
        BankLine(booking_date=DAY, reference="po_1", amount=941, currency="usd"),
        BankLine(booking_date=DAY, reference="po_2", amount=500, currency="jpy"),
    ]
    parsed = parse_statement(write_bank_statement(lines))
    assert parsed.format == StatementFormat.CSV
    assert [(r.booking_date, r.reference, r.amount, r.currency) for r in parsed.lines] == [
        (DAY, "po_1", 941, "usd"),
        (DAY, "po_2", 500, "jpy"),
    ]
    # Two equal entries of one statement stay two
    twice = write_bank_statement([lines[0], lines[0]])
    assert len({line.entry_id for line in parse_statement(twice).lines}) == 2


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("<Document>", "not well-formed XML"),
        (camt(entry("1.00")).replace("</Document>", ""), "not well-formed XML"),
        (
            '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 '
            '"&lol;&lol;&lol;&lol;">]><Document xmlns="' + NS + '">&lol2;</Document>',
            "DOCTYPE",
        ),
        (
            '<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
            '<Document xmlns="' + NS + '">&x;</Document>',
            "DOCTYPE",
        ),
        ("<a>" * (MAX_XML_DEPTH + 1) + "</a>" * (MAX_XML_DEPTH + 1), "deeper"),
        ('<Document xmlns="urn:iso:std:iso:20022:tech:xsd:pain.001.001.03"/>', "not a camt.053"),
        (camt(entry("1.00", "XYZ")), "'XYZ' is not an ISO 4217"),
        (camt(entry("12,50")), "'12,50' is not an amount"),
        (camt(entry("abc")), "'abc' is not an amount"),
        (camt(entry("-5.00")), "is not an amount"),
        (camt(entry("Infinity")), "is not an amount"),
        (camt(entry("1.5", "JPY")), "more decimals than JPY"),
        (camt(entry("1.2345", "KWD")), "is not an amount"),
        (camt(entry("1.00", direction="BOTH")), "CdtDbtInd"),
        (camt(entry("1.00", booked="2026-13-40")), "is not a date"),
        ("booking_date,amount\n2026-11-30,5\n", "lacks the columns"),
        (
            "booking_date,value_date,reference,description,amount,currency\n"
            "2026-11-30,,po_1,x,12.50,usd\n",
            "not an amount in minor units",
        ),
        (
            "booking_date,value_date,reference,description,amount,currency\n"
            "2026-11-30,,po_1,x,1250,usd,extra\n",
            "fields",
        ),
        ("booking_date,value_date,reference,description,amount,currency\n", "no entries"),
        ("   ", "empty"),
        (camt(entry("1.00"), start="2026-12-01", end="2026-11-01"), "ends"),
        (camt(entry("1.00"), start="0001-01-01", end="9999-12-31"), "at most 366"),
    ],
)
def test_a_file_that_is_not_a_statement_is_refused_saying_why(text: str, says: str):
    with pytest.raises(StatementInvalid, match=says):
        parse_statement(text)


def credit(amount: int, ref: str = "", *, day: str = DAY, entry_id: str = "") -> BankLine:
    return BankLine(
        booking_date=day,
        reference=ref,
        amount=amount,
        currency="usd",
        entry_id=entry_id or f"bnk_{ref or amount}_{day}",
    )


def payout(pid: str, amount: int, provider: str = "stripe") -> Payout:
    return Payout(provider=provider, id=pid, amount=amount, currency="usd", settled_on=DAY)


def view(*credits: BankLine, claimed: dict[str, str] | None = None, days=None) -> BankView:
    return BankView(
        lines=list(credits),
        claimed=claimed or {},
        kinds={"stripe": "stripe", "razorpay": "razorpay"},
        covered_days=frozenset(days if days is not None else window_of(DAY)),
    )


AFTER_WINDOW = day_start(DAY) + 4 * 86_400
DURING_WINDOW = day_start(DAY) + 86_400


def test_payouts_match_credits_by_reference_then_by_one_amount_in_the_window():
    bank = view(
        credit(900, "STRIPE po_1A"),
        credit(400, "po_2B"),
        credit(700, day="2026-12-02"),
        credit(700, "setl_Other"),
    )
    decided = match_bank(
        [payout("po_1A", 900), payout("po_2B", 500), payout("setl_3C", 700, "razorpay")],
        bank,
        now=DURING_WINDOW,
    )
    found = {f.subject: f for f in decided.findings}
    assert found["po_1A"].matched
    assert found["po_2B"].kind == ExceptionKind.PAYOUT_AMOUNT_MISMATCH
    assert found["po_2B"].delta == -100
    # The 700 credit naming another settlement is not a candidate: the one without is
    assert found["setl_3C"].matched and found["setl_3C"].row_id == "bnk_700_2026-12-02"
    assert set(decided.claims.values()) == {"po_1A", "po_2B", "setl_3C"}


def test_two_credits_that_could_be_the_payout_are_an_exception_never_a_guess():
    bank = view(credit(700, entry_id="a"), credit(700, entry_id="b", day="2026-12-01"))
    decided = match_bank([payout("po_1", 700)], bank, now=DURING_WINDOW)
    (finding,) = decided.findings
    assert finding.kind == ExceptionKind.PAYOUT_MATCH_AMBIGUOUS and decided.claims == {}
    # One credit two payouts could be is ambiguous for both
    shared = match_bank(
        [payout("po_1", 700), payout("setl_1", 700, "razorpay")],
        view(credit(700)),
        now=DURING_WINDOW,
    )
    assert [f.kind for f in shared.findings] == [ExceptionKind.PAYOUT_MATCH_AMBIGUOUS] * 2


def test_a_payout_not_in_the_bank_is_awaited_until_its_window_is_over_and_covered():
    waiting = match_bank([payout("po_1", 700)], view(), now=DURING_WINDOW)
    assert waiting.findings == [] and waiting.awaiting == 1
    uncovered = match_bank([payout("po_1", 700)], view(days=[DAY]), now=AFTER_WINDOW)
    assert uncovered.findings == [] and uncovered.awaiting == 1
    (missing,) = match_bank([payout("po_1", 700)], view(), now=AFTER_WINDOW).findings
    assert missing.kind == ExceptionKind.PAYOUT_MISSING_IN_BANK and missing.delta == -700
    # A credit outside the window is not the payout's by amount
    late = match_bank([payout("po_1", 700)], view(credit(700, day="2026-12-05")), now=AFTER_WINDOW)
    assert [f.kind for f in late.findings] == [ExceptionKind.PAYOUT_MISSING_IN_BANK]


def test_a_credit_claimed_by_another_payout_is_not_matched_again():
    bank = view(credit(700, entry_id="c1"), claimed={"c1": "po_0"})
    decided = match_bank([payout("po_1", 700)], bank, now=DURING_WINDOW)
    assert decided.claims == {} and decided.awaiting == 1


def test_a_providers_credit_that_no_payout_matched_is_an_exception_after_the_window():
    bank = view(credit(300, "po_Unknown"), credit(800, "rent"), credit(500, "po_Mine"))
    claims = {"bnk_po_Mine_" + DAY: "po_Mine"}
    assert unmatched_credits(bank, claims, day=DAY, now=DURING_WINDOW, providers=["stripe"]) == []
    (found,) = unmatched_credits(bank, claims, day=DAY, now=AFTER_WINDOW, providers=["stripe"])
    assert found.kind == ExceptionKind.BANK_CREDIT_UNMATCHED and found.provider == "stripe"
    assert (found.provider_amount, found.subject) == (300, "bnk_po_Unknown_" + DAY)


def test_a_negative_payout_is_a_debit_found_by_its_reference_only():
    took_back = Payout(provider="stripe", id="po_Neg", amount=-250, currency="usd", settled_on=DAY)
    debit = credit(-250, "po_Neg")
    assert match_bank([took_back], view(debit), now=DURING_WINDOW).findings[0].matched
    # A debit of the same amount naming nothing is not it, nor a credit naming it
    unnamed = match_bank([took_back], view(credit(-250), credit(250, "po_Neg")), now=AFTER_WINDOW)
    assert [f.kind for f in unnamed.findings] == [ExceptionKind.PAYOUT_MISSING_IN_BANK]
    # And a payout of nothing is not looked for
    empty = Payout(provider="stripe", id="po_Zero", amount=0, currency="usd", settled_on=DAY)
    assert match_bank([empty], view(), now=AFTER_WINDOW).findings == []
