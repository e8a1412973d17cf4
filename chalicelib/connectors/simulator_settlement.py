"""The simulator PSP's settlement side: the daily report and bank statement it writes from its
own book, and the discrepancies it can be told to make there (sandbox only), so that
reconciliation has real differences to find.

A report covers one merchant's operations (the merchant PayFlow named in each authorization,
as a provider's report covers one merchant account) settled on one UTC day. Charges settle on
the day they were captured unless the book says they settle late; refunds on the day they were
paid; a dispute's withdrawal and reinstatement on the day the simulator's bank made them
(`record_dispute`, called as the sandbox's bank reports the dispute to PayFlow). Each provider,
currency and day is paid out once; the bank statement lists those payouts as the merchant's
bank received them.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from chalicelib.dal.simulator import SimulatorLedger
from chalicelib.domain import disputes as dispute_rules
from chalicelib.domain.ids import new_id
from chalicelib.reconciliation.reports import (
    BankLine,
    DisputeMovement,
    RowType,
    SettlementRow,
    day_of,
    payouts_of,
)

FEE_BASIS_POINTS = 290
FEE_FIXED = 30
"""The simulator's price: 2.9% + 30 minor units per captured charge; refunds cost nothing."""
DISPUTE_FEE = dispute_rules.DISPUTE_FEE
"""What the simulator's bank charges for a chargeback (given back when it is won)."""
LATE_DAYS = 5
"""How late an injected late settlement arrives: past the default SLA of T+3."""


def fee_for(amount: int) -> int:
    """The simulator's fee on a captured amount (rounded half up, never above the amount)."""
    return min(amount, (amount * FEE_BASIS_POINTS + 5_000) // 10_000 + FEE_FIXED)


class Discrepancy(StrEnum):
    """What the simulator can be told to get wrong (or to do behind PayFlow's back)."""

    UNKNOWN_CHARGE = "unknown_charge"
    """A second capture for a PaymentIntent, under a key whose answer PayFlow never received."""
    MISSED_CAPTURE = "missed_capture"
    """A manual-capture authorization captured at the provider without PayFlow hearing of it."""
    AMOUNT_DIFFERS = "amount_differs"
    """A charge settles for another amount than was captured."""
    LATE_SETTLEMENT = "late_settlement"
    """A charge settles LATE_DAYS days after its capture."""
    REFUND_TWICE = "refund_twice"
    """A refund is paid out (and settled) a second time."""
    BANK_SHORT = "bank_short"
    """A payout reaches the bank 100 minor units short."""
    DISPUTE_AMOUNT_DIFFERS = "dispute_amount_differs"
    """A dispute's withdrawal (or reinstatement) settles for another amount than was disputed."""


DEFAULT_MIX = (
    Discrepancy.UNKNOWN_CHARGE,
    Discrepancy.MISSED_CAPTURE,
    Discrepancy.AMOUNT_DIFFERS,
    Discrepancy.LATE_SETTLEMENT,
    Discrepancy.REFUND_TWICE,
)


@dataclass(frozen=True)
class Injected:
    """One discrepancy made in the book: what reconciliation should find."""

    kind: Discrepancy
    connector: str
    subject: str
    """The charge, refund or payout it concerns (for an unknown charge: the new charge)."""
    payment_intent: str | None

    def to_api(self) -> dict[str, Any]:
        return {
            "object": "reconciliation.discrepancy",
            "kind": self.kind.value,
            "connector": self.connector,
            "subject": self.subject,
            "payment_intent": self.payment_intent,
        }


class SimulatorSettlement:
    """Settlement reports, bank statements and injected discrepancies of the simulators."""

    def __init__(self, ledger: SimulatorLedger) -> None:
        self._ledger = ledger

    def report(
        self, connectors: list[str], merchant_id: str, day: str
    ) -> tuple[dict[str, list[SettlementRow]], list[BankLine]]:
        """What each of `connectors` settled for `merchant_id` on `day`, and the bank's
        statement of their payouts that day (one read of the book)."""
        records = self._ledger.all_records()
        rows: dict[str, list[SettlementRow]] = {}
        bank: list[BankLine] = []
        for connector in connectors:
            rows[connector] = [
                row
                for row in self._all_rows(records, connector, merchant_id)
                if row.settled_on == day
            ]
            shorts = {
                r["pk"].partition("#")[2].partition(":")[2]
                for r in records
                if r.get("operation") == "bank_short" and r.get("connector") == connector
            }
            for payout in payouts_of(rows[connector]):
                bank.append(
                    BankLine(
                        booking_date=payout.settled_on,
                        reference=payout.id,
                        amount=payout.amount - (100 if payout.id in shorts else 0),
                        currency=payout.currency,
                    )
                )
        return rows, bank

    def _all_rows(
        self, records: list[dict[str, Any]], connector: str, merchant_id: str
    ) -> list[SettlementRow]:
        book = _Book(records, connector)
        rows: list[SettlementRow] = []
        for reference, (auth, captured_amount, captured_at, key) in book.captures().items():
            if auth.get("merchant") != merchant_id:
                continue
            amount = int(auth.get("settled_amount", captured_amount))
            settled_at = captured_at + int(auth.get("settle_delay_days", 0)) * 86_400
            rows.append(
                _row(
                    connector,
                    f"{key}",
                    RowType.CHARGE,
                    auth,
                    reference,
                    amount,
                    fee_for(captured_amount),
                    captured_at,
                    settled_at,
                )
            )
        for refund, auth in book.of_merchant(book.refunds(), merchant_id):
            created = int(refund.get("created") or auth.get("created", 0))
            refund_id = refund.get("refund") or refund["pk"].split(":")[1]
            rows.append(
                _same_day(
                    connector, refund, RowType.REFUND, auth, -int(refund["amount"]), 0, created
                ).model_copy(update={"refund_id": refund_id})
            )
        for movement, auth in book.of_merchant(book.disputes(), merchant_id):
            sign = -1 if movement["movement"] == DisputeMovement.WITHDRAWAL.value else 1
            amount = sign * int(movement.get("settled_amount", movement["amount"]))
            fee = -sign * int(movement["fee"])
            line = _same_day(
                connector, movement, RowType.DISPUTE, auth, amount, fee, int(movement["created"])
            )
            rows.append(line.model_copy(update={"dispute_id": movement["dispute"]}))
        rows.sort(key=lambda r: (r.created, r.row_id))
        return rows

    def record_dispute(
        self,
        connector: str,
        charge_id: str,
        reference: str,
        status: dispute_rules.DisputeStatus,
        amount: int | None,
        *,
        at: int,
    ) -> int | None:
        """The simulator's bank moves the money of dispute `reference` on `charge_id` as
        `status` says, in the simulator's book (each movement once, only forward: a loss
        already recorded is never reinstated). Returns the disputed amount as the book has it
        (at most what was captured), or None when the simulator never captured that charge."""
        book = _Book(self._ledger.all_records(), connector)
        captured = next(
            (
                (reference_at_psp, entry)
                for reference_at_psp, entry in book.captures().items()
                if entry[0].get("charge_id") == charge_id
            ),
            None,
        )
        if captured is None:
            return None
        psp_reference, (_auth, captured_amount, _at, _line) = captured
        key = f"{connector}:{reference}"
        fields: dict[str, Any] = {
            "connector": connector,
            "psp_reference": psp_reference,
            "charge_id": charge_id,
            "dispute": reference,
            "amount": min(amount, captured_amount) if amount else captured_amount,
            "fee": DISPUTE_FEE,
            "created": at,
        }
        funds = dispute_rules.funds_for(status)
        if funds == dispute_rules.Funds.UNTOUCHED:
            return int(fields["amount"])
        withdrawn = self._ledger.record_once(
            "dispute",
            f"{key}:{DisputeMovement.WITHDRAWAL.value}",
            {**fields, "movement": DisputeMovement.WITHDRAWAL.value},
        )
        # Later reports of a dispute never change its amount: the first movement fixed it.
        fields.update(amount=int(withdrawn["amount"]), fee=int(withdrawn["fee"]))
        if funds == dispute_rules.Funds.PAID_OUT:
            self._ledger.record_once("dispute_lost", key, {"connector": connector})
        elif (
            funds == dispute_rules.Funds.REINSTATED
            and self._ledger.find("dispute_lost", key) is None
        ):
            self._ledger.record_once(
                "dispute",
                f"{key}:{DisputeMovement.REINSTATEMENT.value}",
                {**fields, "movement": DisputeMovement.REINSTATEMENT.value},
            )
        return int(fields["amount"])

    def inject(
        self,
        connector: str,
        merchant_id: str,
        day: str,
        *,
        seed: int,
        count: int,
        kinds: tuple[Discrepancy, ...] = DEFAULT_MIX,
    ) -> list[Injected]:
        """Make `count` discrepancies in `connector`'s book among `merchant_id`'s operations of
        `day`, the kinds taken in turn, targets drawn by `seed` (never the same one twice).
        A kind with no target left is skipped; the list says what was made."""
        rng = random.Random(f"{seed}:{connector}:{merchant_id}:{day}")
        records = self._ledger.all_records()
        book = _Book(records, connector)
        captured = [
            (reference, entry)
            for reference, entry in sorted(book.captures().items())
            if entry[0].get("merchant") == merchant_id and day_of(entry[2]) == day
        ]
        uncaptured = [
            auth
            for auth in book.uncaptured()
            if auth.get("merchant") == merchant_id and day_of(int(auth["created"])) == day
        ]
        refunds = [
            refund
            for refund, _auth in book.of_merchant(book.refunds(), merchant_id)
            if day_of(int(refund.get("created") or 0)) == day
        ]
        disputes = [
            {**movement, "payment_intent": auth.get("payment_intent")}
            for movement, auth in book.of_merchant(book.disputes(), merchant_id)
            if day_of(int(movement["created"])) == day
        ]
        rng.shuffle(captured)
        rng.shuffle(uncaptured)
        rng.shuffle(refunds)
        rng.shuffle(disputes)
        payouts = [
            p.id
            for p in payouts_of(self._all_rows(records, connector, merchant_id))
            if p.settled_on == day
        ]
        made: list[Injected] = []
        for position in range(count):
            kind = kinds[position % len(kinds)]
            done = self._inject_one(
                kind, connector, rng, captured, uncaptured, refunds, disputes, payouts
            )
            if done is not None:
                made.append(done)
        return made

    def _inject_one(
        self,
        kind: Discrepancy,
        connector: str,
        rng: random.Random,
        captured: list[tuple[str, tuple[dict[str, Any], int, int, str]]],
        uncaptured: list[dict[str, Any]],
        refunds: list[dict[str, Any]],
        disputes: list[dict[str, Any]],
        payouts: list[str],
    ) -> Injected | None:
        ledger = self._ledger
        if kind == Discrepancy.DISPUTE_AMOUNT_DIFFERS:
            if not disputes:
                return None
            movement = disputes.pop()
            amount = int(movement["amount"])
            delta = rng.choice((-1, 1)) * rng.randint(1, max(1, min(500, amount - 1)))
            ledger.annotate(movement["pk"], {"settled_amount": amount + delta})
            return Injected(kind, connector, movement["dispute"], movement["payment_intent"])
        if kind in (
            Discrepancy.UNKNOWN_CHARGE,
            Discrepancy.AMOUNT_DIFFERS,
            Discrepancy.LATE_SETTLEMENT,
        ):
            if not captured:
                return None
            _, (auth, amount, captured_at, _line) = captured.pop()
            pi = auth.get("payment_intent")
            if kind == Discrepancy.AMOUNT_DIFFERS:
                delta = rng.choice((-1, 1)) * rng.randint(1, max(1, min(500, amount - 1)))
                ledger.annotate(auth["pk"], {"settled_amount": amount + delta})
                return Injected(kind, connector, auth["charge_id"], pi)
            if kind == Discrepancy.LATE_SETTLEMENT:
                ledger.annotate(auth["pk"], {"settle_delay_days": LATE_DAYS})
                return Injected(kind, connector, auth["charge_id"], pi)
            charge_id = new_id("ch", clock=lambda: captured_at)
            ledger.record_once(
                "authorize",
                f"{connector}:{pi}:lost-answer:{connector}",
                {
                    **{k: v for k, v in auth.items() if k not in ("pk", "operation")},
                    "psp_reference": new_id("sim", clock=lambda: captured_at),
                    "charge_id": charge_id,
                    "amount": amount,
                    "capture": True,
                    "status": "authorized",
                    "created": captured_at,
                },
            )
            return Injected(kind, connector, charge_id, pi)
        if kind == Discrepancy.MISSED_CAPTURE:
            if not uncaptured:
                return None
            auth = uncaptured.pop()
            ledger.record_once(
                "capture",
                f"{connector}:{auth['payment_intent']}:capture",
                {
                    "connector": connector,
                    "psp_reference": auth["psp_reference"],
                    "amount": int(auth["amount"]),
                    "created": int(auth["created"]),
                },
            )
            return Injected(kind, connector, auth["charge_id"], auth.get("payment_intent"))
        if kind == Discrepancy.REFUND_TWICE:
            if not refunds:
                return None
            refund = refunds.pop()
            fields = {k: v for k, v in refund.items() if k not in ("pk", "operation")}
            refund_id = refund.get("refund") or refund["pk"].split(":")[1]
            fields["refund"] = refund_id
            ledger.record_once("refund", refund["pk"].partition("#")[2] + ":again", fields)
            return Injected(kind, connector, refund_id, None)
        if not payouts:
            return None
        payout = payouts.pop(rng.randrange(len(payouts)))
        ledger.record_once("bank_short", f"{connector}:{payout}", {"connector": connector})
        return Injected(kind, connector, payout, None)


class _Book:
    """One simulator's records, indexed the way a settlement report reads them."""

    def __init__(self, records: list[dict[str, Any]], connector: str) -> None:
        mine = [r for r in records if r.get("connector") == connector]
        self._by_operation: dict[str, list[dict[str, Any]]] = {}
        for record in mine:
            self._by_operation.setdefault(str(record.get("operation")), []).append(record)
        self._auth: dict[str, dict[str, Any]] = {}
        for record in self._by_operation.get("authorize", []):
            if "merchant" in record:
                self._auth[record["psp_reference"]] = record
        # A 3-D Secure completion authorizes under the authorization's reference, with its own
        # charge and capture flag; the merchant and amount stay the authorization's.
        for record in self._by_operation.get("authenticate", []):
            first = self._auth.get(record["psp_reference"])
            if first is not None and record.get("status") == "authorized":
                self._auth[record["psp_reference"]] = {
                    **first,
                    "charge_id": record["charge_id"],
                    "capture": record.get("capture", False),
                    "status": "authorized",
                    "created": record.get("created", first.get("created")),
                }

    def authorization(self, reference: str) -> dict[str, Any] | None:
        return self._auth.get(reference)

    def captures(self) -> dict[str, tuple[dict[str, Any], int, int, str]]:
        """psp_reference -> (authorization, captured amount, captured at, line id)."""
        found: dict[str, tuple[dict[str, Any], int, int, str]] = {}
        for reference, auth in self._auth.items():
            if auth.get("status") == "authorized" and auth.get("capture"):
                found[reference] = (
                    auth,
                    int(auth["amount"]),
                    int(auth["created"]),
                    auth["charge_id"],
                )
        for capture in self._by_operation.get("capture", []):
            held = self._auth.get(capture["psp_reference"])
            if held is None or capture["psp_reference"] in found:
                continue
            auth = held
            at = int(capture.get("created") or auth["created"])
            found[capture["psp_reference"]] = (auth, int(capture["amount"]), at, auth["charge_id"])
        return found

    def uncaptured(self) -> list[dict[str, Any]]:
        """Authorizations without capture, neither captured nor voided since."""
        closed = {
            r["psp_reference"] for op in ("capture", "void") for r in self._by_operation.get(op, [])
        }
        return [
            auth
            for reference, auth in sorted(self._auth.items())
            if auth.get("status") == "authorized"
            and not auth.get("capture")
            and reference not in closed
        ]

    def refunds(self) -> list[dict[str, Any]]:
        return [r for r in self._by_operation.get("refund", []) if r.get("status") == "succeeded"]

    def of_merchant(
        self, records: list[dict[str, Any]], merchant_id: str
    ) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        """The records (refunds, dispute movements) of `merchant_id`'s payments, each with its
        payment's authorization."""
        found = []
        for record in records:
            auth = self._auth.get(record["psp_reference"])
            if auth is not None and auth.get("merchant") == merchant_id:
                found.append((record, auth))
        return found

    def disputes(self) -> list[dict[str, Any]]:
        """The disputes' money movements (record_dispute), withdrawals and reinstatements."""
        return list(self._by_operation.get("dispute", []))


def _same_day(
    connector: str,
    record: dict[str, Any],
    kind: RowType,
    auth: dict[str, Any],
    amount: int,
    fee: int,
    created: int,
) -> SettlementRow:
    """The line of a refund or a dispute movement: it settles the day it was made."""
    line_id = record["pk"].partition("#")[2]
    return _row(
        connector, line_id, kind, auth, record["psp_reference"], amount, fee, created, created
    )


def _row(
    connector: str,
    row_id: str,
    kind: RowType,
    auth: dict[str, Any],
    reference: str,
    amount: int,
    fee: int,
    created: int,
    settled_at: int,
) -> SettlementRow:
    day = day_of(settled_at)
    return SettlementRow(
        provider=connector,
        row_id=row_id,
        type=kind,
        psp_reference=reference,
        charge_id=auth.get("charge_id"),
        payment_intent=auth.get("payment_intent"),
        amount=amount,
        fee=fee,
        currency=str(auth["currency"]),
        created=created,
        settled_on=day,
        payout=f"po_{connector}_{day.replace('-', '')}_{auth['currency']}",
    )
