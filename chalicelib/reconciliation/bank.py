"""The merchant's bank statement, as the merchant uploads it: ISO 20022 camt.053
(BkToCstmrStmt) or the CSV PayFlow writes for the simulator's bank (reports.BANK_COLUMNS).

Both are read into `BankLine`s: integer minor units by each currency's decimals, signed (a
credit positive, a debit negative), with the references a payout can be recognized by. The
file is hostile until read: XML goes through defusedxml with DTDs forbidden (no entity of any
kind, so no external entity and no expansion bomb), nesting is bounded, amounts must be plain
decimals, currencies ISO 4217 codes PayFlow knows, dates ISO dates. Anything else is a
`StatementInvalid` naming what is wrong, and nothing of the file is kept.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Any
from xml.etree.ElementTree import Element

from chalicelib.domain.money import CURRENCIES
from chalicelib.reconciliation.reports import BANK_COLUMNS, BankLine, exponent, minor_units

MAX_ENTRIES = 5_000
"""Entries one upload may hold (a day's statement of a busy account is far fewer)."""
MAX_PERIOD_DAYS = 366
"""The longest period a statement may cover (a yearly statement; runs read it day by day)."""
MAX_XML_DEPTH = 32
"""camt.053 nests about ten levels deep; a deeper document is refused before it is read."""
CAMT_053 = "urn:iso:std:iso:20022:tech:xsd:camt.053."
"""Namespace prefix of every camt.053 version (001.02 to 001.13)."""
_AMOUNT = re.compile(r"^[0-9]{1,15}(\.[0-9]{1,3})?$")
_SIGNED_MINOR = re.compile(r"^-?[0-9]{1,15}$")
_TOKEN = re.compile(r"[A-Za-z0-9_]+")


class StatementInvalid(ValueError):
    """The uploaded file is not a bank statement PayFlow reads (the message says where)."""


class StatementFormat(StrEnum):
    """The file formats a bank statement may come in."""

    CAMT_053 = "camt.053"
    """ISO 20022 BankToCustomerStatement (XML), what European banks send."""
    CSV = "csv"
    """PayFlow's own CSV (booking_date, value_date, reference, description, amount, currency;
    amounts signed, in minor units), as the simulator's bank writes it."""


@dataclass(frozen=True)
class ParsedStatement:
    """What a file said: its lines and what identifies it."""

    format: StatementFormat
    lines: list[BankLine]
    period_start: str
    period_end: str
    statement_ids: list[str]
    """The bank's own ids of the statements in the file (camt.053 Stmt/Id); none for CSV."""
    account: str | None
    skipped: int
    """Entries not booked (camt.053 status PDNG or INFO): not money yet, not kept."""
    sha256: str

    @property
    def key(self) -> str:
        """What makes two uploads the same statement: the bank's statement ids and account
        when the file has them, else its content."""
        if self.statement_ids:
            return f"{self.format.value}|{self.account or ''}|{'|'.join(self.statement_ids)}"
        return f"{self.format.value}|sha256:{self.sha256}"


def detect(text: str) -> StatementFormat:
    """camt.053 when the file is XML, else CSV."""
    xml = text.lstrip("\ufeff \t\r\n").startswith("<")
    return StatementFormat.CAMT_053 if xml else StatementFormat.CSV


def parse_statement(text: str, fmt: StatementFormat | None = None) -> ParsedStatement:
    """Read an uploaded statement (StatementInvalid when it is not one)."""
    if not text.strip():
        raise StatementInvalid("The file is empty.")
    fmt = fmt or detect(text)
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    if fmt == StatementFormat.CAMT_053:
        parsed = _read_camt053(text, digest)
    else:
        parsed = _read_csv(text, digest)
    if len(parsed.lines) > MAX_ENTRIES:
        raise StatementInvalid(f"The file has {len(parsed.lines)} entries; at most {MAX_ENTRIES}.")
    length = date.fromisoformat(parsed.period_end) - date.fromisoformat(parsed.period_start)
    if length.days >= MAX_PERIOD_DAYS:
        raise StatementInvalid(
            f"The statement covers {length.days + 1} days ({parsed.period_start}.."
            f"{parsed.period_end}); at most {MAX_PERIOD_DAYS}."
        )
    return parsed


def payout_tokens(line: BankLine) -> set[str]:
    """The words of a line's references and remittance text: where a payout id is looked for
    (whole words only, so `po_1` never matches inside `po_12`)."""
    texts = (line.reference, line.end_to_end_id, line.bank_reference, line.description)
    return {token for text in texts if text for token in _TOKEN.findall(text)}


# -- shared checks ------------------------------------------------------------------------------


def _currency(code: str, where: str) -> str:
    currency = code.strip().lower()
    if currency not in CURRENCIES:
        raise StatementInvalid(f"{where}: {code!r} is not an ISO 4217 currency code PayFlow knows.")
    return currency


def _day(text: str, where: str) -> str:
    try:
        return date.fromisoformat(text.strip()[:10]).isoformat()
    except ValueError:
        raise StatementInvalid(f"{where}: {text!r} is not a date (YYYY-MM-DD).") from None


def _major_amount(text: str, currency: str, where: str) -> int:
    """A camt amount (major units, never signed: CdtDbtInd gives the direction)."""
    text = text.strip()
    if not _AMOUNT.match(text):
        raise StatementInvalid(f"{where}: {text!r} is not an amount.")
    try:
        return minor_units(text, currency)
    except ValueError:
        raise StatementInvalid(
            f"{where}: {text} has more decimals than {currency.upper()} has ({exponent(currency)})."
        ) from None


def _entry_ids(lines: list[dict[str, Any]], account: str) -> list[str]:
    """An id per entry that is the same in every upload of it: the bank's own entry reference
    when it gives one, else a digest of what the entry says and its rank among identical ones
    (two equal entries of one statement stay two; the same entry in two overlapping
    statements is one)."""
    seen: Counter[str] = Counter()
    ids = []
    for line in lines:
        if line.get("bank_reference"):
            ids.append(f"bnk_{_digest(account, 'ref', line['bank_reference'])}")
            continue
        what = "|".join(
            str(line.get(k) or "")
            for k in (
                "booking_date",
                "value_date",
                "amount",
                "currency",
                "reference",
                "end_to_end_id",
                "description",
            )
        )
        rank = seen[what]
        seen[what] += 1
        ids.append(f"bnk_{_digest(account, what, str(rank))}")
    return ids


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:24]


def _lines(raw: list[dict[str, Any]], account: str | None) -> list[BankLine]:
    # Ids by account, not by file: the same entry in two overlapping uploads is one entry.
    ids = _entry_ids(raw, account or "")
    return [BankLine(entry_id=i, **line) for i, line in zip(ids, raw, strict=True)]


# -- camt.053 -----------------------------------------------------------------------------------


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def _child(node: Element | None, *path: str) -> Element | None:
    """The first descendant along `path` by local names (any namespace)."""
    for name in path:
        if node is None:
            return None
        node = next((c for c in node if _local(c.tag) == name), None)
    return node


def _children(node: Element, name: str) -> Iterator[Element]:
    return (c for c in node if _local(c.tag) == name)


def _text(node: Element | None, *path: str) -> str | None:
    found = _child(node, *path)
    if found is None or found.text is None:
        return None
    return found.text.strip() or None


def _parse_xml(text: str) -> Element:
    """The document's root, read without any DTD (defusedxml refuses one, and with it every
    entity declaration) and at most MAX_XML_DEPTH levels deep."""
    from defusedxml import DefusedXmlException
    from defusedxml.ElementTree import ParseError, iterparse

    depth = 0
    root: Element | None = None
    try:
        for event, element in iterparse(
            io.BytesIO(text.encode("utf-8")), events=("start", "end"), forbid_dtd=True
        ):
            if event == "start":
                depth += 1
                root = element if root is None else root
                if depth > MAX_XML_DEPTH:
                    raise StatementInvalid(f"The XML nests deeper than {MAX_XML_DEPTH} levels.")
            else:
                depth -= 1
    except DefusedXmlException:
        raise StatementInvalid(
            "The XML has a DOCTYPE (a DTD or entity declarations); PayFlow reads none."
        ) from None
    except ParseError as error:
        raise StatementInvalid(f"The file is not well-formed XML: {error}.") from None
    assert root is not None, "a well-formed document has a root"
    return root


def _read_camt053(text: str, digest: str) -> ParsedStatement:
    root = _parse_xml(text)
    namespace = root.tag[1:].partition("}")[0] if root.tag.startswith("{") else ""
    if _local(root.tag) != "Document" or not namespace.startswith(CAMT_053):
        raise StatementInvalid(
            f"The XML is not a camt.053 statement (root {_local(root.tag)!r}, namespace "
            f"{namespace!r}; expected Document in {CAMT_053}*)."
        )
    body = _child(root, "BkToCstmrStmt")
    statements = list(_children(body, "Stmt")) if body is not None else []
    if not statements:
        raise StatementInvalid("The camt.053 document has no BkToCstmrStmt/Stmt.")
    raw: list[dict[str, Any]] = []
    ids, days, accounts = [], [], set()
    skipped = 0
    for number, stmt in enumerate(statements, 1):
        statement_id = _text(stmt, "Id")
        if statement_id is None:
            raise StatementInvalid(f"Stmt {number}: no Id.")
        ids.append(statement_id)
        account = _text(stmt, "Acct", "Id", "IBAN") or _text(stmt, "Acct", "Id", "Othr", "Id")
        if account:
            accounts.add(account)
        bounds = [
            _day(value, f"Stmt {statement_id} FrToDt/{bound}")
            for bound in ("FrDtTm", "ToDtTm")
            if (value := _text(stmt, "FrToDt", bound))
        ]
        if bounds != sorted(bounds):
            raise StatementInvalid(
                f"Stmt {statement_id}: FrToDt ends ({bounds[1]}) before it starts ({bounds[0]})."
            )
        days.extend(bounds)
        for position, entry in enumerate(_children(stmt, "Ntry"), 1):
            where = f"Stmt {statement_id} Ntry {position}"
            line = _camt_entry(entry, where)
            if line is None:
                skipped += 1
                continue
            raw.append(line)
            if len(raw) > MAX_ENTRIES:
                raise StatementInvalid(f"The file has more than {MAX_ENTRIES} entries.")
    days.extend(line["booking_date"] for line in raw)
    if not days:
        raise StatementInvalid("The statement has neither FrToDt nor a booked entry: no period.")
    account = ",".join(sorted(accounts)) or None
    return ParsedStatement(
        format=StatementFormat.CAMT_053,
        lines=_lines(raw, account),
        period_start=min(days),
        period_end=max(days),
        statement_ids=ids,
        account=account,
        skipped=skipped,
        sha256=digest,
    )


def _camt_entry(entry: Element, where: str) -> dict[str, Any] | None:
    """One Ntry as a line's fields; None when it is not booked (pending, information)."""
    status = _text(entry, "Sts", "Cd") or _text(entry, "Sts")
    if status is not None and status.upper() != "BOOK":
        return None
    amount_node = _child(entry, "Amt")
    if amount_node is None or not (amount_node.text or "").strip():
        raise StatementInvalid(f"{where}: no Amt.")
    code = amount_node.get("Ccy")
    if not code:
        raise StatementInvalid(f"{where}: Amt has no Ccy.")
    currency = _currency(code, where)
    amount = _major_amount(amount_node.text or "", currency, where)
    direction = (_text(entry, "CdtDbtInd") or "").upper()
    if direction not in ("CRDT", "DBIT"):
        raise StatementInvalid(f"{where}: CdtDbtInd is {direction or 'missing'}; CRDT or DBIT.")
    booked = _text(entry, "BookgDt", "Dt") or _text(entry, "BookgDt", "DtTm")
    if booked is None:
        raise StatementInvalid(f"{where}: no BookgDt.")
    valued = _text(entry, "ValDt", "Dt") or _text(entry, "ValDt", "DtTm")
    details = _child(entry, "NtryDtls", "TxDtls")
    remittance: list[str] = []
    for txs in _children(entry, "NtryDtls"):
        for tx in _children(txs, "TxDtls"):
            info = _child(tx, "RmtInf")
            if info is not None:
                remittance.extend((u.text or "").strip() for u in _children(info, "Ustrd"))
    end_to_end = _text(details, "Refs", "EndToEndId")
    counterparty = _text(details, "RltdPties", "Dbtr", "Nm") or _text(
        details, "RltdPties", "Dbtr", "Pty", "Nm"
    )
    return {
        "booking_date": _day(booked, f"{where} BookgDt"),
        "value_date": _day(valued, f"{where} ValDt") if valued else None,
        "reference": _text(entry, "NtryRef") or "",
        "bank_reference": _text(entry, "AcctSvcrRef"),
        "end_to_end_id": None if end_to_end == "NOTPROVIDED" else end_to_end,
        "description": " ".join(r for r in remittance if r)[:1000],
        "counterparty": counterparty,
        "amount": amount if direction == "CRDT" else -amount,
        "currency": currency,
    }


# -- PayFlow's CSV ------------------------------------------------------------------------------


def _read_csv(text: str, digest: str) -> ParsedStatement:
    try:
        reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
        header = reader.fieldnames or []
        missing = [c for c in BANK_COLUMNS if c not in header]
        if missing:
            raise StatementInvalid(
                f"The CSV lacks the columns {', '.join(missing)} (expected "
                f"{','.join(BANK_COLUMNS)})."
            )
        raw: list[dict[str, Any]] = []
        for number, row in enumerate(reader, 2):
            where = f"CSV line {number}"
            if None in row or any(row.get(c) is None for c in BANK_COLUMNS):
                raise StatementInvalid(f"{where}: not {len(header)} fields.")
            currency = _currency(row["currency"], where)
            amount_text = row["amount"].strip()
            if not _SIGNED_MINOR.match(amount_text):
                raise StatementInvalid(
                    f"{where}: {amount_text!r} is not an amount in minor units (an integer)."
                )
            raw.append(
                {
                    "booking_date": _day(row["booking_date"], where),
                    "value_date": _day(row["value_date"], where)
                    if row["value_date"].strip()
                    else None,
                    "reference": row["reference"].strip()[:255],
                    "description": row["description"].strip()[:1000],
                    "amount": int(amount_text),
                    "currency": currency,
                }
            )
            if len(raw) > MAX_ENTRIES:
                raise StatementInvalid(f"The file has more than {MAX_ENTRIES} entries.")
    except csv.Error as error:
        raise StatementInvalid(f"The file is not CSV: {error}.") from None
    if not raw:
        raise StatementInvalid("The CSV has no entries: no period.")
    days = [line["booking_date"] for line in raw]
    return ParsedStatement(
        format=StatementFormat.CSV,
        lines=_lines(raw, None),
        period_start=min(days),
        period_end=max(days),
        statement_ids=[],
        account=None,
        skipped=0,
        sha256=digest,
    )
