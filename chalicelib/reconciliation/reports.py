"""Settlement reports: what a provider says it settled on a day, and the bank's statement of
the payouts that reached the merchant's account.

Every provider writes its own file format; each is read into the same `SettlementRow` (money in
integer minor units, signed from the merchant's side: a charge positive, a refund negative).
The simulator writes its own CSV; `stripe_itemized` follows the columns of Stripe's itemized
payout reconciliation report (amounts in major units, as Stripe writes them);
`read_adyen_settlement` Adyen's Settlement details report (major units, decimals per currency).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any

from pydantic import BaseModel

from chalicelib.domain.money import ZERO_DECIMAL
from chalicelib.domain.psp_events import payment_intent_of


class RowType(StrEnum):
    """What a settlement line moved."""

    CHARGE = "charge"
    """A captured payment settled to the merchant."""
    REFUND = "refund"
    """A refund paid back to the customer."""
    DISPUTE = "dispute"
    """A dispute's withdrawal (gross negative, the fee positive) or reinstatement (gross
    positive, the fee given back: negative), matched by the provider's dispute id."""


class DisputeMovement(StrEnum):
    """Which way a dispute line moved the money (named as Stripe's reporting categories)."""

    WITHDRAWAL = "dispute"
    """The disputed amount and the fee taken from the merchant."""
    REINSTATEMENT = "dispute_reversal"
    """Both given back: the dispute was won."""


class SettlementRow(BaseModel):
    """One line of a provider's settlement report, normalized."""

    provider: str
    """The connector id whose report this line is from."""
    row_id: str
    """The provider's id of the line (unique within the provider)."""
    type: RowType
    psp_reference: str
    """The provider's id of the payment the line belongs to."""
    charge_id: str | None = None
    payment_intent: str | None = None
    """The merchant reference PayFlow sent (its PaymentIntent id)."""
    refund_id: str | None = None
    """For a refund line, the refund PayFlow sent (its idempotency key at the provider)."""
    dispute_id: str | None = None
    """For a dispute line, the provider's own id of the dispute (what PayFlow keeps as the
    dispute's provider reference)."""
    occurrence: int | None = None
    """For a dispute line, which time the dispute's money moves this way when the report says
    (Adyen's SecondChargeback is its second withdrawal, after a reversal); None when it does
    not (Stripe, Razorpay, the simulator): matching gives the line the next occurrence no
    other line settled (`matching.dispute_occurrence`)."""
    amount: int
    """Gross, signed: a charge positive, a refund negative."""
    fee: int = 0
    """What the provider kept, positive."""
    currency: str
    created: int
    settled_on: str
    """The settlement date, YYYY-MM-DD (UTC)."""
    payout: str | None = None
    """The payout that carried it to the bank."""

    @property
    def net(self) -> int:
        return self.amount - self.fee

    @property
    def movement(self) -> DisputeMovement | None:
        """For a dispute line, which way it moved the money (a withdrawal takes, a
        reinstatement gives back); None for other lines."""
        if self.type != RowType.DISPUTE:
            return None
        return DisputeMovement.WITHDRAWAL if self.amount < 0 else DisputeMovement.REINSTATEMENT


class Payout(BaseModel):
    """A provider's transfer of a day's net to the merchant's bank."""

    provider: str
    id: str
    amount: int
    currency: str
    settled_on: str


class BankLine(BaseModel):
    """One entry of the merchant's bank statement (the simulator's bank, or a statement the
    merchant uploaded): a credit when `amount` is positive, a debit when negative."""

    booking_date: str
    reference: str
    """The entry's reference (camt.053 NtryRef; the simulator's bank: the payout id)."""
    amount: int
    """Signed minor units: a credit positive, a debit negative."""
    currency: str
    entry_id: str = ""
    """The same in every upload of the entry (bank.py `_entry_ids`)."""
    value_date: str | None = None
    bank_reference: str | None = None
    """The bank's own id of the entry (camt.053 AcctSvcrRef)."""
    end_to_end_id: str | None = None
    """The payer's end-to-end reference (camt.053 TxDtls/Refs/EndToEndId)."""
    description: str = ""
    """Remittance information (camt.053 RmtInf/Ustrd, the CSV's description)."""
    counterparty: str | None = None
    """Who paid (camt.053 RltdPties/Dbtr/Nm), when the bank says."""

    @property
    def credit(self) -> bool:
        return self.amount > 0


def day_of(epoch: int) -> str:
    """The UTC date of an epoch second, YYYY-MM-DD."""
    return datetime.fromtimestamp(epoch, UTC).date().isoformat()


def day_start(day: str) -> int:
    """Epoch second at which the UTC date `day` starts."""
    return int(datetime.combine(date.fromisoformat(day), datetime.min.time(), UTC).timestamp())


def payouts_of(rows: Iterable[SettlementRow]) -> list[Payout]:
    """The payouts the rows add up to: one per provider, currency and day."""
    totals: dict[tuple[str, str, str, str], int] = {}
    for row in rows:
        if row.payout is None:
            continue
        key = (row.provider, row.payout, row.currency, row.settled_on)
        totals[key] = totals.get(key, 0) + row.net
    return [
        Payout(provider=p, id=i, amount=a, currency=c, settled_on=d)
        for (p, i, c, d), a in sorted(totals.items())
    ]


# -- the simulator's own CSV -------------------------------------------------------------------

SIMULATOR_COLUMNS = (
    "row_id",
    "type",
    "psp_reference",
    "charge_id",
    "merchant_reference",
    "refund_reference",
    "dispute_reference",
    "gross",
    "fee",
    "net",
    "currency",
    "created_at",
    "settlement_date",
    "payout_id",
)


def write_simulator(rows: Iterable[SettlementRow]) -> str:
    """The simulator's settlement CSV: integer minor units, one line per settled operation."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(SIMULATOR_COLUMNS)
    for row in rows:
        writer.writerow(
            [
                row.row_id,
                row.type.value,
                row.psp_reference,
                row.charge_id or "",
                row.payment_intent or "",
                row.refund_id or "",
                row.dispute_id or "",
                row.amount,
                row.fee,
                row.net,
                row.currency,
                row.created,
                row.settled_on,
                row.payout or "",
            ]
        )
    return out.getvalue()


def read_simulator(provider: str, text: str) -> list[SettlementRow]:
    """Rows of a simulator settlement CSV (ValueError when a line is not one)."""
    rows = []
    for line in csv.DictReader(io.StringIO(text)):
        if int(line["gross"]) - int(line["fee"]) != int(line["net"]):
            raise ValueError(f"line {line['row_id']}: gross - fee != net")
        rows.append(
            SettlementRow(
                provider=provider,
                row_id=line["row_id"],
                type=RowType(line["type"]),
                psp_reference=line["psp_reference"],
                charge_id=line["charge_id"] or None,
                payment_intent=line["merchant_reference"] or None,
                refund_id=line["refund_reference"] or None,
                dispute_id=line["dispute_reference"] or None,
                amount=int(line["gross"]),
                fee=int(line["fee"]),
                currency=line["currency"],
                created=int(line["created_at"]),
                settled_on=line["settlement_date"],
                payout=line["payout_id"] or None,
            )
        )
    return rows


# -- Stripe's itemized payout reconciliation report ---------------------------------------------

STRIPE_COLUMNS = (
    "balance_transaction_id",
    "created_utc",
    "available_on_utc",
    "currency",
    "gross",
    "fee",
    "net",
    "reporting_category",
    "source_id",
    "description",
    "automatic_payout_id",
    "automatic_payout_effective_at_utc",
    "charge_id",
    "payment_intent_id",
)
STRIPE_REPORT = "payout_reconciliation.itemized.5"
STRIPE_METADATA_COLUMNS = (
    *STRIPE_COLUMNS,
    "payment_metadata[payflow_key]",
    "payment_metadata[payflow_merchant]",
    "refund_metadata[payflow_key]",
)
"""The columns PayFlow asks Stripe's report run for: Stripe's, and the metadata PayFlow sent
(the attempt's key names PayFlow's PaymentIntent; the refund's key is PayFlow's refund id)."""
_STRIPE_CATEGORY = {RowType.CHARGE: "charge", RowType.REFUND: "refund", RowType.DISPUTE: "dispute"}
_STRIPE_KINDS = {
    **{category: kind for kind, category in _STRIPE_CATEGORY.items()},
    DisputeMovement.REINSTATEMENT.value: RowType.DISPUTE,
}
"""Stripe's reporting categories PayFlow reads: a dispute's withdrawal is `dispute`, its
reinstatement `dispute_reversal` (both the dispute as source_id)."""


def _major(amount: int, currency: str) -> str:
    if currency in ZERO_DECIMAL:
        return str(amount)
    sign = "-" if amount < 0 else ""
    whole, cents = divmod(abs(amount), 100)
    return f"{sign}{whole}.{cents:02d}"


def _minor(text: str, currency: str) -> int:
    if currency in ZERO_DECIMAL:
        return int(text)
    sign = -1 if text.startswith("-") else 1
    whole, _, cents = text.lstrip("-").partition(".")
    if len(cents) > 2:
        raise ValueError(f"{text}: more than two decimals")
    return sign * (int(whole or "0") * 100 + int(cents.ljust(2, "0") or "0"))


def _stripe_source(row: SettlementRow) -> str | None:
    """Stripe's source_id: the refund of a refund line, the dispute of a dispute line."""
    if row.type == RowType.REFUND:
        return row.refund_id
    if row.type == RowType.DISPUTE:
        return row.dispute_id
    return row.charge_id


def write_stripe_itemized(rows: Iterable[SettlementRow]) -> str:
    """Stripe's itemized payout reconciliation CSV (amounts in major units, UTC times)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(STRIPE_COLUMNS)
    for row in rows:
        created = datetime.fromtimestamp(row.created, UTC).strftime("%Y-%m-%d %H:%M:%S")
        writer.writerow(
            [
                row.row_id,
                created,
                f"{row.settled_on} 00:00:00",
                row.currency,
                _major(row.amount, row.currency),
                _major(row.fee, row.currency),
                _major(row.net, row.currency),
                row.movement.value if row.movement else _STRIPE_CATEGORY[row.type],
                _stripe_source(row),
                "",
                row.payout or "",
                f"{row.settled_on} 00:00:00",
                row.charge_id or "",
                row.psp_reference,
            ]
        )
    return out.getvalue()


def read_stripe_itemized(provider: str, text: str) -> list[tuple[SettlementRow, str | None]]:
    """Lines of Stripe's itemized payout reconciliation CSV, each with the merchant PayFlow
    named in the payment's metadata (None without that column). Categories other than charges,
    refunds and disputes (transfers, adjustments, payouts) are not payment lines: skipped."""
    rows = []
    for line in csv.DictReader(io.StringIO(text)):
        kind = _STRIPE_KINDS.get(line["reporting_category"])
        if kind is None:
            continue
        currency = line["currency"].lower()
        amount, fee = _minor(line["gross"], currency), _minor(line["fee"], currency)
        if amount - fee != _minor(line["net"], currency):
            raise ValueError(f"line {line['balance_transaction_id']}: gross - fee != net")
        created = datetime.strptime(line["created_utc"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
        # PayFlow's PaymentIntent is the first part of its attempt key; without the metadata
        # column the Stripe PaymentIntent stands in.
        key = line.get("payment_metadata[payflow_key]") or ""
        refund_key = line.get("refund_metadata[payflow_key]") or ""
        row = SettlementRow(
            provider=provider,
            row_id=line["balance_transaction_id"],
            type=kind,
            psp_reference=line["payment_intent_id"] or line["charge_id"],
            charge_id=line["charge_id"] or None,
            payment_intent=key.partition(":")[0] or line["payment_intent_id"] or None,
            refund_id=(refund_key or line["source_id"]) if kind == RowType.REFUND else None,
            dispute_id=(line["source_id"] or None) if kind == RowType.DISPUTE else None,
            amount=amount,
            fee=fee,
            currency=currency,
            created=int(created.timestamp()),
            settled_on=line["available_on_utc"][:10],
            payout=line["automatic_payout_id"] or None,
        )
        rows.append((row, line.get("payment_metadata[payflow_merchant]")))
    return rows


# -- Razorpay's settlement recon ---------------------------------------------------------------


def read_razorpay_recon(
    provider: str, items: Iterable[dict[str, Any]]
) -> list[tuple[SettlementRow, dict[str, Any]]]:
    """Lines of Razorpay's settlement recon (`/v1/settlements/recon/combined`: `entity_id`,
    `type`, `debit`, `credit`, `amount`, `currency`, `fee` (tax included), `tax`,
    `settlement_id`, `settled_at`, `payment_id`, `notes`, ...), each with its item. Payments
    and refunds are payment lines; a dispute line is kept for the disputes module; transfers
    and adjustments are skipped."""
    kinds = {"payment": RowType.CHARGE, "refund": RowType.REFUND, "dispute": RowType.DISPUTE}
    rows = []
    for item in items:
        kind = kinds.get(str(item.get("type")))
        if kind is None:
            continue
        amount, fee = int(item["amount"]), int(item.get("fee") or 0)
        credit, debit = int(item.get("credit") or 0), int(item.get("debit") or 0)
        signed = amount if kind == RowType.CHARGE else -amount
        if credit - debit != signed - fee:
            raise ValueError(f"line {item['entity_id']}: credit - debit != amount - fee")
        payment = str(item.get("payment_id") or item["entity_id"])
        notes = item.get("notes") if isinstance(item.get("notes"), dict) else {}
        refund_key = (notes or {}).get("payflow_key") if kind == RowType.REFUND else None
        rows.append(
            (
                SettlementRow(
                    provider=provider,
                    row_id=str(item["entity_id"]),
                    type=kind,
                    psp_reference=payment,
                    charge_id="ch_" + payment.removeprefix("pay_"),
                    refund_id=(refund_key or str(item["entity_id"]))
                    if kind == RowType.REFUND
                    else None,
                    dispute_id=str(item["entity_id"]) if kind == RowType.DISPUTE else None,
                    amount=signed,
                    fee=fee,
                    currency=str(item["currency"]).lower(),
                    created=int(item["created_at"]),
                    settled_on=day_of(int(item.get("settled_at") or item["created_at"])),
                    payout=item.get("settlement_id") or None,
                ),
                item,
            )
        )
    return rows


# -- the bank statement ------------------------------------------------------------------------

BANK_COLUMNS = ("booking_date", "value_date", "reference", "description", "amount", "currency")


def write_bank_statement(lines: Iterable[BankLine]) -> str:
    """The bank's statement of credits: amounts in minor units, the payout id as reference."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(BANK_COLUMNS)
    for line in lines:
        writer.writerow(
            [
                line.booking_date,
                line.booking_date,
                line.reference,
                "PAYOUT",
                line.amount,
                line.currency,
            ]
        )
    return out.getvalue()


def read_bank_statement(text: str) -> list[BankLine]:
    return [
        BankLine(
            booking_date=line["booking_date"],
            reference=line["reference"],
            amount=int(line["amount"]),
            currency=line["currency"],
        )
        for line in csv.DictReader(io.StringIO(text))
    ]


# -- Adyen's Settlement details report ---------------------------------------------------------

ADYEN_COLUMNS = (
    "Company Account",
    "Merchant Account",
    "Psp Reference",
    "Merchant Reference",
    "Payment Method",
    "Creation Date",
    "TimeZone",
    "Type",
    "Modification Reference",
    "Gross Currency",
    "Gross Debit (GC)",
    "Gross Credit (GC)",
    "Exchange Rate",
    "Net Currency",
    "Net Debit (NC)",
    "Net Credit (NC)",
    "Commission (NC)",
    "Markup (NC)",
    "Scheme Fees (NC)",
    "Interchange (NC)",
    "Payment Method Variant",
    "Modification Merchant Reference",
    "Batch Number",
)
"""The standard columns of Adyen's Settlement details report, in Adyen's order (Adyen appends
reserved columns after them; they are read by name, so extra columns change nothing)."""
ADYEN_FEE_COLUMNS = ("Commission (NC)", "Markup (NC)", "Scheme Fees (NC)", "Interchange (NC)")
_ADYEN_TYPES = {
    "Settled": RowType.CHARGE,
    "Refunded": RowType.REFUND,
    "Chargeback": RowType.DISPUTE,
    "SecondChargeback": RowType.DISPUTE,
    "ChargebackReversed": RowType.DISPUTE,
}
"""Adyen's journal types that are payment lines. A dispute's lines (Chargeback, then
ChargebackReversed if it is won, SecondChargeback if it is lost after all) carry the dispute's
PSP reference as their Modification Reference, the pspReference of every dispute notification
(what PayFlow keeps as the dispute's provider reference), and the chargeback fee in their cost
columns. The others (Fee, MerchantPayout, MiscCosts, DepositCorrection, InvoiceDeduction,
RefundedReversed, ...) are batch-level or not matched yet."""
THREE_DECIMAL = frozenset({"bhd", "iqd", "jod", "kwd", "lyd", "omr", "tnd"})
ADYEN_TIME_ZONES = {"UTC": 0, "GMT": 0, "WET": 0, "BST": 1, "CET": 1, "WEST": 1, "CEST": 2}
"""Offsets in hours of the time-zone codes Adyen writes in `TimeZone` (an account's setting)."""


def exponent(currency: str) -> int:
    """Decimals of `currency`'s major unit (ISO 4217), as Adyen writes amounts."""
    if currency in ZERO_DECIMAL:
        return 0
    return 3 if currency in THREE_DECIMAL else 2


def minor_units(text: str, currency: str) -> int:
    """A major-unit decimal ("12.34") as integer minor units; ValueError when it has more
    decimals than the currency."""
    if not text.strip():
        return 0
    try:
        scaled = Decimal(text.strip()).scaleb(exponent(currency))
    except InvalidOperation as error:
        raise ValueError(f"{text!r} is not an amount") from error
    if scaled != scaled.to_integral_value():
        raise ValueError(f"{text}: more decimals than {currency} has")
    return int(scaled)


ADYEN_PAYOUT = "MerchantPayout"
"""The journal type of the batch's transfer to the merchant's bank: its Modification Reference
is the payout description Adyen sends the bank (`TX<n>XT <merchant account>, batch <n>` by
default), its Net Debit the amount transferred."""


def read_adyen_settlement(provider: str, text: str) -> list[SettlementRow]:
    """Payment lines of one Adyen Settlement details report (one batch). Amounts are major
    units in the line's currency; a settlement or a chargeback reversed is a credit, a refund
    or a chargeback a debit, and the fee (commission, markup, scheme fees, interchange) is gross
    minus net. A line settles on the UTC day of its Creation Date (when Adyen booked it into
    the batch) and is paid out by its batch's payout (`read_adyen_payouts`). Lines settled in
    another currency than they were paid in are refused (ValueError), as is a line whose gross,
    net and fees do not add up."""
    lines = list(csv.DictReader(io.StringIO(text)))
    payout_ids = {key: payout.id for key, payout in _adyen_payouts(provider, lines).items()}
    rows = []
    for line in lines:
        kind = _ADYEN_TYPES.get(line.get("Type") or "")
        if kind is None:
            continue
        reference = line["Modification Reference"]
        currency = line["Gross Currency"].lower()
        if line["Net Currency"].lower() != currency:
            raise ValueError(f"line {reference}: settled in another currency than paid")
        gross = minor_units(line["Gross Credit (GC)"], currency) - minor_units(
            line["Gross Debit (GC)"], currency
        )
        net = minor_units(line["Net Credit (NC)"], currency) - minor_units(
            line["Net Debit (NC)"], currency
        )
        fee = sum(minor_units(line[column] or "", currency) for column in ADYEN_FEE_COLUMNS)
        if gross - net != fee:
            raise ValueError(f"line {reference}: gross - net != commission and fees")
        psp = line["Psp Reference"]
        created = _adyen_time(line["Creation Date"], line["TimeZone"])
        dispute = kind == RowType.DISPUTE
        rows.append(
            SettlementRow(
                provider=provider,
                # One dispute's lines share its reference: the journal type tells them apart.
                row_id=f"{reference}:{line['Type']}" if dispute else reference,
                type=kind,
                psp_reference=psp,
                charge_id=f"ch_{psp}",
                payment_intent=payment_intent_of(line["Merchant Reference"]),
                refund_id=(line.get("Modification Merchant Reference") or reference)
                if kind == RowType.REFUND
                else None,
                dispute_id=reference if dispute else None,
                occurrence=2 if line["Type"] == "SecondChargeback" else 1,
                amount=gross,
                fee=fee,
                currency=currency,
                created=created,
                settled_on=day_of(created),
                payout=payout_ids.get(_adyen_batch_key(line, currency)),
            )
        )
    return rows


def read_adyen_payouts(provider: str, text: str) -> list[Payout]:
    """What one Adyen Settlement details report paid to the bank: each MerchantPayout line
    (its id the unique payout reference that opens its Modification Reference, `TX...XT`, the
    bank statement's reference; its amount the Net Debit; on the UTC day Adyen booked it).
    A batch with payment lines and no MerchantPayout (its net carried to the next batch) is
    one payout of its net, named `<merchant account>_batch_<n>`."""
    lines = list(csv.DictReader(io.StringIO(text)))
    return sorted(_adyen_payouts(provider, lines).values(), key=lambda p: (p.id, p.currency))


def _adyen_batch_key(line: dict[str, str], currency: str) -> tuple[str, str, str]:
    return (line.get("Merchant Account") or "", line.get("Batch Number") or "", currency)


def _adyen_batch_id(key: tuple[str, str, str]) -> str:
    """A batch's own name, for a payout its lines do not name (no MerchantPayout)."""
    return f"{key[0]}_batch_{key[1]}"


def _adyen_payouts(
    provider: str, lines: list[dict[str, str]]
) -> dict[tuple[str, str, str], Payout]:
    """The payout of each (merchant account, batch, currency) the lines hold."""
    payouts: dict[tuple[str, str, str], Payout] = {}
    nets: dict[tuple[str, str, str], tuple[int, int]] = {}
    for line in lines:
        currency = (line.get("Net Currency") or "").lower()
        if not currency or not line.get("Batch Number"):
            continue
        key = _adyen_batch_key(line, currency)
        net = minor_units(line.get("Net Credit (NC)") or "", currency) - minor_units(
            line.get("Net Debit (NC)") or "", currency
        )
        created = _adyen_time(line["Creation Date"], line["TimeZone"])
        if line.get("Type") == ADYEN_PAYOUT:
            reference = (line.get("Modification Reference") or "").split()
            payouts[key] = Payout(
                provider=provider,
                id=reference[0] if reference else _adyen_batch_id(key),
                amount=-net,
                currency=currency,
                settled_on=day_of(created),
            )
            continue
        total, last = nets.get(key, (0, created))
        nets[key] = (total + net, max(last, created))
    for key, (total, last) in nets.items():
        if key not in payouts:
            payouts[key] = Payout(
                provider=provider,
                id=_adyen_batch_id(key),
                amount=total,
                currency=key[2],
                settled_on=day_of(last),
            )
    return payouts


def _adyen_time(text: str, zone: str) -> int:
    offset = ADYEN_TIME_ZONES.get(zone.strip().upper())
    if offset is None:
        raise ValueError(f"time zone {zone!r} is not one PayFlow reads")
    local = datetime.strptime(text.strip(), "%Y-%m-%d %H:%M:%S")
    return int(local.replace(tzinfo=timezone(timedelta(hours=offset))).timestamp())
