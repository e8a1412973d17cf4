"""A fake Stripe API on 127.0.0.1 for the Stripe connector's tests.

It answers the calls the connector makes (create+confirm, search, retrieve, capture, cancel)
with Stripe-shaped bodies, keeps Stripe's idempotency (same key, same response), and misbehaves
on demand: a payment method decides the answer, like Stripe's test cards, and `misbehave` makes
the next requests time out, rate-limit or fail with a 500 (tests/fakes/http.py).
"""

from __future__ import annotations

import uuid
from typing import Any

from tests.fakes.http import FakeProvider, Request

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


def _error(code: str, message: str, kind: str) -> dict[str, Any]:
    return {"error": {"type": kind, "code": code, "message": message}}
