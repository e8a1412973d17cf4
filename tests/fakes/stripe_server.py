"""A fake Stripe API on 127.0.0.1 for the Stripe connector's tests.

It answers the calls the connector makes (create+confirm, search, retrieve, capture, cancel,
and the Reporting API's report run of the itemized payout reconciliation report, with its file,
dispute lines included when told Stripe moved a dispute's money: `dispute_moved`)
with Stripe-shaped bodies, keeps Stripe's idempotency (same key, same response), and misbehaves
on demand: a payment method decides the answer, like Stripe's test cards, and `misbehave` makes
the next requests time out, rate-limit or fail with a 500 (tests/fakes/http.py).
"""

from __future__ import annotations

import csv
import hashlib
import io
import time
import uuid
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.fakes.http import FakeProvider, Request

REPORT_COLUMNS = (
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
"""Stripe's default columns of payout_reconciliation.itemized.5 that the fake fills; a report
run may ask for metadata columns (payment_metadata[...], refund_metadata[...]) too."""

DECLINES = {
    "pm_card_chargeDeclined": ("card_declined", "generic_decline", "Your card was declined."),
    "pm_card_chargeDeclinedInsufficientFunds": (
        "card_declined",
        "insufficient_funds",
        "Your card has insufficient funds.",
    ),
}


class FakeStripe(FakeProvider):
    """Run with `with FakeStripe() as stripe_api:`; `stripe_api.url` is the base address."""

    def __init__(self) -> None:
        super().__init__()
        self.intents: dict[str, dict[str, Any]] = {}
        self.refunds: dict[str, dict[str, Any]] = {}
        self.by_key: dict[str, tuple[int, dict[str, Any]]] = {}
        self.files: dict[str, str] = {}
        self.dispute_lines: list[dict[str, Any]] = []

    def error_body(self, status: int) -> dict[str, Any]:
        if status == 429:
            return _error("rate_limit", "Too many requests.", "invalid_request_error")
        return _error("api_error", "Something broke.", "api_error")

    def route(self, request: Request) -> tuple[int, dict[str, Any]]:
        # Stripe's idempotency: the same key gets the first answer again.
        key = request.headers.get("idempotency-key")
        if key and key in self.by_key:
            return self.by_key[key]
        answer = self._route(request.method, request.path, request.form())
        if key:
            self.by_key[key] = answer
        return answer

    def _route(self, method: str, path: str, params: dict[str, str]) -> tuple[int, dict[str, Any]]:
        parts = path.strip("/").split("/")
        if method == "POST" and parts == ["v1", "payment_intents"]:
            return self._create(params)
        if method == "GET" and parts == ["v1", "payment_intents", "search"]:
            wanted = params.get("query", "").split(":'")[-1].rstrip("'")
            found = [
                pi for pi in self.intents.values() if pi["metadata"].get("payflow_key") == wanted
            ]
            return 200, {"object": "search_result", "data": found, "has_more": False, "url": path}
        if method == "POST" and parts == ["v1", "reporting", "report_runs"]:
            return self._report_run(params)
        if method == "POST" and parts == ["v1", "refunds"]:
            return self._refund(params)
        if method == "GET" and parts == ["v1", "refunds"]:
            found = [
                r
                for r in self.refunds.values()
                if r["payment_intent"] == params.get("payment_intent")
            ]
            return 200, {"object": "list", "data": found, "has_more": False, "url": path}
        if len(parts) >= 3 and parts[:2] == ["v1", "payment_intents"] and parts[2] in self.intents:
            pi = self.intents[parts[2]]
            action = parts[3] if len(parts) > 3 else None
            if action == "capture":
                pi.update(
                    status="succeeded",
                    amount_received=int(params.get("amount_to_capture", pi["amount"])),
                )
            elif action == "cancel":
                pi.update(status="canceled")
            return 200, pi
        return 404, _error("resource_missing", f"No such route: {path}", "invalid_request_error")

    def dispute_moved(
        self, dispute_id: str, payment_intent: str, amount: int, *, at: int, fee: int = 1500
    ) -> str:
        """Stripe moved a disputed payment's money at `at`: a withdrawal (`amount` negative,
        the dispute fee taken: category `dispute`) or a reinstatement (positive, the fee given
        back: `dispute_reversal`), each its own balance transaction with the dispute as
        source_id, as Stripe itemizes them. The balance transaction's id."""
        withdrawal = amount < 0
        self.dispute_lines.append(
            {
                "id": f"txn_fakedp{uuid.uuid4().hex[:12]}",
                "dispute": dispute_id,
                "payment_intent": payment_intent,
                "category": "dispute" if withdrawal else "dispute_reversal",
                "gross": amount,
                "fee": fee if withdrawal else -fee,
                "created": at,
            }
        )
        return str(self.dispute_lines[-1]["id"])

    def _serve(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        # A report's file is CSV, not JSON (files.stripe.com/v1/files/{id}/contents).
        parts = handler.path.split("?")[0].strip("/").split("/")
        if method == "GET" and len(parts) == 4 and parts[:2] == ["v1", "files"]:
            data = self.files.get(parts[2], "").encode()
            handler.send_response(200 if parts[2] in self.files else 404)
            handler.send_header("Content-Type", "text/csv")
            handler.send_header("Content-Length", str(len(data)))
            handler.end_headers()
            handler.wfile.write(data)
            return
        super()._serve(handler, method)

    def _report_run(self, params: dict[str, str]) -> tuple[int, dict[str, Any]]:
        """Every succeeded payment and refund created in the interval, as Stripe itemizes
        them (its fee 2.9% + 30, one automatic payout per day), ready at once."""
        start = int(params["parameters[interval_start]"])
        end = int(params["parameters[interval_end]"])
        extra = [v for k, v in sorted(params.items()) if k.startswith("parameters[columns]")]
        columns = list(REPORT_COLUMNS) + [c for c in extra if c not in REPORT_COLUMNS]
        out = io.StringIO()
        writer = csv.DictWriter(out, columns, lineterminator="\n", extrasaction="ignore")
        writer.writeheader()
        for pi in self.intents.values():
            if pi["status"] == "succeeded" and start <= pi["created"] < end:
                gross = pi["amount_received"] or pi["amount"]
                fee = (gross * 290 + 5000) // 10_000 + 30
                writer.writerow(
                    _line(pi, pi, "charge", pi["latest_charge"], gross, fee, "payment_metadata")
                )
        for refund in self.refunds.values():
            pi = self.intents[refund["payment_intent"]]
            if refund["status"] == "succeeded" and start <= refund["created"] < end:
                # A refund line carries its payment's metadata too, as Stripe's report does.
                line = _line(
                    pi, refund, "refund", refund["id"], -refund["amount"], 0, "payment_metadata"
                )
                line.update({f"refund_metadata[{k}]": v for k, v in refund["metadata"].items()})
                writer.writerow(line)
        for moved in self.dispute_lines:
            if start <= moved["created"] < end:
                pi = self.intents[moved["payment_intent"]]
                line = _line(
                    pi,
                    moved,
                    moved["category"],
                    moved["dispute"],
                    moved["gross"],
                    moved["fee"],
                    "payment_metadata",
                )
                writer.writerow({**line, "balance_transaction_id": moved["id"]})
        file_id = f"file_fake{uuid.uuid4().hex[:12]}"
        self.files[file_id] = out.getvalue()
        return 200, {
            "id": f"frr_fake{uuid.uuid4().hex[:12]}",
            "object": "reporting.report_run",
            "report_type": params.get("report_type"),
            "status": "succeeded",
            "result": {
                "id": file_id,
                "object": "file",
                "url": f"{self.url}/v1/files/{file_id}/contents",
            },
        }

    def _refund(self, params: dict[str, str]) -> tuple[int, dict[str, Any]]:
        pi = self.intents.get(params.get("payment_intent", ""))
        if pi is None:
            return 404, _error(
                "resource_missing", "No such payment_intent", "invalid_request_error"
            )
        refused = pi["payment_method"] == "pm_card_refundFail"
        refund = {
            "id": f"re_fake{uuid.uuid4().hex[:12]}",
            "object": "refund",
            "amount": int(params.get("amount", pi["amount"])),
            "payment_intent": pi["id"],
            "status": "failed" if refused else "succeeded",
            "failure_reason": "expired_or_canceled_card" if refused else None,
            "created": int(time.time()),
            "metadata": {k[9:-1]: v for k, v in params.items() if k.startswith("metadata[")},
        }
        self.refunds[refund["id"]] = refund
        return 200, refund

    def _create(self, params: dict[str, str]) -> tuple[int, dict[str, Any]]:
        pi_id = f"pi_fake{uuid.uuid4().hex[:16]}"
        pm = params.get("payment_method", "")
        manual = params.get("capture_method") == "manual"
        pi = {
            "id": pi_id,
            "object": "payment_intent",
            "amount": int(params["amount"]),
            "currency": params["currency"],
            "payment_method": pm,
            "latest_charge": f"ch_fake{uuid.uuid4().hex[:12]}",
            "next_action": None,
            "last_payment_error": None,
            "amount_received": 0,
            "created": int(time.time()),
            "status": "requires_capture" if manual else "succeeded",
            "metadata": {k[9:-1]: v for k, v in params.items() if k.startswith("metadata[")},
        }
        if pm in DECLINES:
            code, decline_code, message = DECLINES[pm]
            error = {
                "type": "card_error",
                "code": code,
                "decline_code": decline_code,
                "message": message,
            }
            pi.update(status="requires_payment_method", last_payment_error=error)
            self.intents[pi_id] = pi
            return 402, {"error": {**error, "payment_intent": pi}}
        self.intents[pi_id] = pi
        return 200, pi


def _line(
    pi: dict[str, Any],
    source: dict[str, Any],
    category: str,
    source_id: str,
    gross: int,
    fee: int,
    metadata: str,
) -> dict[str, str]:
    created = datetime.fromtimestamp(source["created"], UTC)
    day = created.strftime("%Y-%m-%d")
    line = {
        # Stable across report runs, as Stripe's balance transactions are.
        "balance_transaction_id": "txn_fake"
        + hashlib.sha256(f"{category}:{source_id}".encode()).hexdigest()[:12],
        "created_utc": created.strftime("%Y-%m-%d %H:%M:%S"),
        "available_on_utc": f"{day} 00:00:00",
        "currency": pi["currency"],
        "gross": _major(gross),
        "fee": _major(fee),
        "net": _major(gross - fee),
        "reporting_category": category,
        "source_id": source_id,
        "description": "",
        "automatic_payout_id": f"po_fake{day.replace('-', '')}{pi['currency']}",
        "automatic_payout_effective_at_utc": f"{day} 00:00:00",
        "charge_id": pi["latest_charge"],
        "payment_intent_id": pi["id"],
    }
    if metadata:
        line.update({f"{metadata}[{k}]": v for k, v in pi["metadata"].items()})
    return line


def _major(amount: int) -> str:
    sign = "-" if amount < 0 else ""
    return f"{sign}{abs(amount) // 100}.{abs(amount) % 100:02d}"


def _error(code: str, message: str, kind: str) -> dict[str, Any]:
    return {"error": {"type": kind, "code": code, "message": message}}
