"""`payflow recon run --date YYYY-MM-DD`: reconcile a merchant's day on the running sandbox
and print what the run found (exit code 1 when it left open exceptions).
`payflow recon bank-statement FILE`: upload the merchant's bank statement (camt.053 or
PayFlow's bank CSV) for three-way matching, and print what PayFlow read of it."""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

from payflow.api_client import ApiClient

POLL_SECONDS = 0.2


BANK_WINDOW_DAYS = 3
"""chalicelib.reconciliation.matching.BANK_WINDOW_DAYS: how late a payout may reach the bank."""


def run(args: argparse.Namespace, api_base: str, out: TextIO | None = None) -> int:
    """The `recon` action the command line names."""
    if args.recon_command == "bank-statement":
        return bank_statement(args, api_base, out)
    return reconcile(args, api_base, out)


def bank_statement(args: argparse.Namespace, api_base: str, out: TextIO | None = None) -> int:
    """Upload FILE as the merchant's bank statement; print its period, entries and the days
    whose runs now see it."""
    out = out or sys.stdout
    text = Path(args.file).read_text(encoding="utf-8-sig")
    data = {"file": text, **({"format": args.format} if args.format else {})}
    statement = ApiClient(api_base, args.api_key).post("/v1/reconciliation/bank_statements", data)
    period, counts = statement["period"], statement["counts"]
    totals = ", ".join(
        f"{t['credits']} in / {t['debits']} out {currency}"
        for currency, t in sorted(statement["totals"].items())
    )
    skipped = f", {counts['skipped']} not booked, not kept" if counts["skipped"] else ""
    print(
        f"{statement['id']} {statement['format']} {period['start']}..{period['end']}: "
        f"{counts['entries']} entries ({counts['credits']} credits, {counts['debits']} "
        f"debits{skipped}); {totals or 'no money'}",
        file=out,
    )
    first = date.fromisoformat(period["start"]) - timedelta(days=BANK_WINDOW_DAYS)
    print(
        f"payouts of {first.isoformat()}..{period['end']} may be in it: "
        "`payflow recon run --date DAY` for those days matches them",
        file=out,
    )
    return 0


def utc_day(given: str, now: datetime | None = None) -> str:
    """`today` and `yesterday` as the UTC dates they are (the days runs are named by); any
    other text as given, for the API to judge."""
    offsets = {"today": 0, "yesterday": 1}
    if given.lower() not in offsets:
        return given
    current = (now or datetime.now(UTC)).date()
    return (current - timedelta(days=offsets[given.lower()])).isoformat()


def reconcile(args: argparse.Namespace, api_base: str, out: TextIO | None = None) -> int:
    """Start the run, wait for its end (up to --timeout), print its counts and exceptions."""
    out = out or sys.stdout
    client = ApiClient(api_base, args.api_key)
    day = utc_day(args.date)
    started = client.post("/v1/reconciliation/runs", {"date": day, "sla_days": args.sla_days})
    deadline = time.monotonic() + args.timeout
    current = started
    while current["status"] == "running" and time.monotonic() < deadline:
        time.sleep(POLL_SECONDS)
        current = client.get(f"/v1/reconciliation/runs/{started['id']}")
    print(_summary(current), file=out)
    if current["status"] == "running":
        print(f"still running after {args.timeout:g} s", file=out)
        return 1
    found = client.get("/v1/reconciliation/exceptions", {"run": current["id"], "limit": 100})[
        "data"
    ]
    for exception in found:
        print(
            f"  {exception['status']:<8} {exception['kind']:<24} {exception['subject']} "
            f"difference {exception['difference']} {exception['currency']}"
            + (f" (repaired: {exception['repair']})" if exception["repair"] else ""),
            file=out,
        )
    still_open = [e for e in found if e["status"] == "open"]
    return 1 if current["status"] != "succeeded" or still_open else 0


def _summary(run: dict[str, Any]) -> str:
    counts = run["counts"]
    fees = ", ".join(f"{amount} {currency}" for currency, amount in run["fees"].items()) or "none"
    return (
        f"{run['id']} {run['date']} {run['status']}: {counts['rows']} lines, "
        f"{counts['matched']} matched, {counts['exceptions']} exceptions "
        f"({counts['repaired']} repaired), {counts['awaiting_settlement']} awaiting settlement, "
        f"{counts['payouts']} payouts ({counts['payouts_matched']} in the bank, "
        f"{counts['awaiting_bank']} awaited); fees booked: {fees}"
        + (
            f"; bank not covered: {', '.join(run['bank_not_covered'])}"
            if run["bank_not_covered"]
            else ""
        )
        + (f"; failure: {run['failure']}" if run.get("failure") else "")
    )


def add_parser(commands: Any, api_options: Any) -> None:
    """`payflow recon run` and its options."""
    recon_cmd = commands.add_parser(
        "recon",
        help="reconcile a day of settlements, upload the merchant's bank statement",
        description="Reconciliation runs: `payflow recon run --date YYYY-MM-DD`; bank "
        "statements: `payflow recon bank-statement FILE`.",
    )
    actions = recon_cmd.add_subparsers(dest="recon_command", required=True, metavar="ACTION")
    run_cmd = actions.add_parser(
        "run",
        help="start a run for one day and wait for its result",
        description="Starts a reconciliation run of the merchant's day and prints its counts "
        "and exceptions; exit code 1 when exceptions are left open.",
    )
    api_options(run_cmd)
    run_cmd.add_argument(
        "--date", required=True, help="the UTC day: YYYY-MM-DD, today or yesterday"
    )
    run_cmd.add_argument(
        "--sla-days", type=int, default=3, help="days a booking may await settlement (3)"
    )
    run_cmd.add_argument("--timeout", type=float, default=300.0, help="seconds to wait (300)")
    statement_cmd = actions.add_parser(
        "bank-statement",
        help="upload the merchant's bank statement (camt.053 or PayFlow's bank CSV)",
        description="Uploads FILE as the merchant's bank statement; runs of the days whose "
        "payouts may arrive in its period match them with its credits. Uploading the same "
        "statement again changes nothing.",
    )
    api_options(statement_cmd)
    statement_cmd.add_argument("file", metavar="FILE", help="camt.053 XML or bank CSV")
    statement_cmd.add_argument(
        "--format", choices=("camt.053", "csv"), default=None, help="default: from the content"
    )
