"""`payflow recon run --date YYYY-MM-DD`: reconcile a merchant's day on the running sandbox
and print what the run found (exit code 1 when it left open exceptions)."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any, TextIO

from payflow.api_client import ApiClient

POLL_SECONDS = 0.2


def run(args: argparse.Namespace, api_base: str, out: TextIO | None = None) -> int:
    """Start the run, wait for its end (up to --timeout), print its counts and exceptions."""
    out = out or sys.stdout
    client = ApiClient(api_base, args.api_key)
    started = client.post("/v1/reconciliation/runs", {"date": args.date, "sla_days": args.sla_days})
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
        f"{counts['payouts']} payouts; fees booked: {fees}"
        + (f"; failure: {run['failure']}" if run.get("failure") else "")
    )


def add_parser(commands: Any, api_options: Any) -> None:
    """`payflow recon run` and its options."""
    recon_cmd = commands.add_parser(
        "recon",
        help="reconcile a day of settlements (the simulator's report, the bank's payouts)",
        description="Reconciliation runs: `payflow recon run --date YYYY-MM-DD`.",
    )
    actions = recon_cmd.add_subparsers(dest="recon_command", required=True, metavar="ACTION")
    run_cmd = actions.add_parser(
        "run",
        help="start a run for one day and wait for its result",
        description="Starts a reconciliation run of the merchant's day and prints its counts "
        "and exceptions; exit code 1 when exceptions are left open.",
    )
    api_options(run_cmd)
    run_cmd.add_argument("--date", required=True, help="the UTC day, YYYY-MM-DD")
    run_cmd.add_argument(
        "--sla-days", type=int, default=3, help="days a booking may await settlement (3)"
    )
    run_cmd.add_argument("--timeout", type=float, default=300.0, help="seconds to wait (300)")
