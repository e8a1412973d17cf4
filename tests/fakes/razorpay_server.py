"""A fake Razorpay API on 127.0.0.1 for the Razorpay connector's tests.

Built from Razorpay's public API reference: orders (`POST /v1/orders`, `GET /v1/orders` with
`receipt`, `GET /v1/orders/{id}/payments`), server-to-server payments
(`POST /v1/payments/create/json` for cards, `/create/upi` for UPI collect), `GET
/v1/payments/{id}`, capture, refunds (with the `X-Refund-Idempotency` header). Errors come as
Razorpay sends them: `{"error": {"code", "description", "source", "step", "reason",
"metadata"}}` with HTTP 400 for a declined payment, 401 for bad keys, 429 and 5xx.

Test behaviour follows the card number (PayFlow sends Stripe's test numbers) and Razorpay's
test VPAs (`success@razorpay`, `failure@razorpay`). A card that needs 3-D Secure leaves the
payment `created` with a redirect, and so does a UPI collect request until the customer
approves it; `GET /_fake/authenticate/{payment}?succeeded=1|0` is the bank page or the UPI app
that finishes it.
"""

from __future__ import annotations

import base64
import itertools
import time
from datetime import UTC, datetime
from typing import Any

from tests.fakes.http import FakeProvider, Request

KEY_ID = "rzp_test_fake"
KEY_SECRET = "fake_secret"

DECLINED_CARDS: dict[str, tuple[str, str]] = {
    "4000000000000002": ("card_declined", "Payment declined by the bank."),
    "4000000000009995": (
        "insufficient_funds",
        "Your payment could not be completed due to insufficient account balance.",
    ),
    "4000000000000069": ("card_expired", "The card has expired."),
    "4000000000000127": ("incorrect_cvv", "The CVV entered is incorrect."),
}
"""Card number -> (Razorpay's error reason, its description)."""
AUTHENTICATING_CARDS = {"4000002760003184", "4000000000003220", "4000002500003155"}

_ids = itertools.count(1)


def _id(prefix: str) -> str:
    return f"{prefix}_Fake{next(_ids):010d}"


class FakeRazorpay(FakeProvider):
    """Razorpay's orders, payments and refunds, held in memory."""

    def __init__(self) -> None:
        super().__init__()
        self.orders: dict[str, dict[str, Any]] = {}
        self.payments: dict[str, dict[str, Any]] = {}
        self.refunds: dict[str, dict[str, Any]] = {}
        self._refund_keys: dict[str, dict[str, Any]] = {}

    # -- FakeProvider --------------------------------------------------------------------------

    def authenticate(self, request: Request) -> dict[str, Any] | None:
        if request.path.startswith("/_fake/"):
            return None
        expected = base64.b64encode(f"{KEY_ID}:{KEY_SECRET}".encode()).decode()
        if request.headers.get("authorization") == f"Basic {expected}":
            return None
        return _error("BAD_REQUEST_ERROR", "The api key provided is invalid", reason="NA")

    def error_body(self, status: int) -> dict[str, Any]:
        if status == 429:
            return _error("BAD_REQUEST_ERROR", "Too many requests", reason="rate_limit_exceeded")
        return _error("SERVER_ERROR", "The server encountered an error.", source="internal")

    def route(self, request: Request) -> tuple[int, dict[str, Any]]:
        parts, method = request.parts, request.method
        if parts[:1] == ["_fake"] and len(parts) == 3 and parts[1] == "authenticate":
            return self._authenticate(parts[2], request.query.get("succeeded") == "1")
        if parts[:2] == ["v1", "orders"]:
            if method == "POST" and len(parts) == 2:
                return self._create_order(request.json())
            if method == "GET" and len(parts) == 2:
                found = [o for o in self.orders.values() if _matches(o, request.query)]
                return 200, _collection(sorted(found, key=lambda o: -o["created_at"]))
            if method == "GET" and len(parts) == 4 and parts[3] == "payments":
                if parts[2] not in self.orders:
                    return _not_found("order")
                return 200, _collection(
                    [p for p in self.payments.values() if p["order_id"] == parts[2]]
                )
        if parts == ["v1", "settlements", "recon", "combined"] and method == "GET":
            return 200, _collection(self._recon(request.query))
        if parts[:2] == ["v1", "payments"] and len(parts) >= 3:
            if method == "POST" and parts[2] == "create" and len(parts) == 4:
                return self._create_payment(request.json(), parts[3])
            payment = self.payments.get(parts[2])
            if payment is None:
                return _not_found("payment")
            action = parts[3] if len(parts) > 3 else None
            if method == "GET" and action is None:
                return 200, payment
            if method == "POST" and action == "capture":
                return self._capture(payment, request.json())
            if method == "POST" and action == "refund":
                return self._refund(payment, request)
            if method == "GET" and action == "refunds":
                return 200, _collection(
                    [r for r in self.refunds.values() if r["payment_id"] == payment["id"]]
                )
        return 400, _error("BAD_REQUEST_ERROR", "The requested URL was not found on the server.")

    # -- operations ----------------------------------------------------------------------------

    def _create_order(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        amount = body.get("amount")
        if not isinstance(amount, int) or amount < 100:
            return 400, _error(
                "BAD_REQUEST_ERROR", "The amount must be atleast INR 1.00", field="amount"
            )
        order = {
            "id": _id("order"),
            "entity": "order",
            "amount": amount,
            "amount_paid": 0,
            "amount_due": amount,
            "currency": body.get("currency", "INR"),
            "receipt": body.get("receipt"),
            "status": "created",
            "attempts": 0,
            "notes": body.get("notes") or {},
            "created_at": int(time.time() * 1000),  # ms, so the newest sorts first in tests
            "payment": body.get("payment") or {"capture": "automatic"},
        }
        self.orders[order["id"]] = order
        return 200, order

    def _create_payment(self, body: dict[str, Any], kind: str) -> tuple[int, dict[str, Any]]:
        order = self.orders.get(body.get("order_id", ""))
        if order is None:
            return 400, _error("BAD_REQUEST_ERROR", "The id provided does not exist", "order_id")
        if order["status"] == "paid" or any(
            p["order_id"] == order["id"] and p["status"] in ("authorized", "captured")
            for p in self.payments.values()
        ):
            return 400, _error("BAD_REQUEST_ERROR", "Order has already been paid")
        if body.get("amount") != order["amount"]:
            return 400, _error(
                "BAD_REQUEST_ERROR", "The amount must match the order amount", "amount"
            )
        order["attempts"] += 1
        order["status"] = "attempted"
        payment: dict[str, Any] = {
            "id": _id("pay"),
            "entity": "payment",
            "amount": order["amount"],
            "currency": order["currency"],
            "status": "created",
            "order_id": order["id"],
            "method": "upi" if kind == "upi" else "card",
            "captured": False,
            "amount_refunded": 0,
            "notes": body.get("notes") or {},
            "error_code": None,
            "error_description": None,
            "error_source": None,
            "error_step": None,
            "error_reason": None,
            "created_at": int(time.time()),
        }
        self.payments[payment["id"]] = payment
        declined: tuple[str, str] | None = None
        if kind == "upi":
            # A collect request waits for the customer's approval in their UPI app
            # (`/_fake/authenticate/{payment}` stands for it); failure@razorpay fails at once.
            vpa = (body.get("upi") or {}).get("vpa", "")
            if vpa == "failure@razorpay":
                declined = ("payment_failed", "Payment was unsuccessful at the UPI app.")
            else:
                return 200, {"razorpay_payment_id": payment["id"]}
        else:
            number = str((body.get("card") or {}).get("number", ""))
            declined = DECLINED_CARDS.get(number)
            if number in AUTHENTICATING_CARDS:
                url = f"{self.url}/_fake/authenticate/{payment['id']}"
                return 200, {
                    "razorpay_payment_id": payment["id"],
                    "next": [{"action": "redirect", "url": url}],
                }
        if declined is not None:
            reason, description = declined
            self._fail(payment, reason, description)
            return 400, _error(
                "BAD_REQUEST_ERROR",
                description,
                source="bank",
                step="payment_authorization",
                reason=reason,
                metadata={"payment_id": payment["id"], "order_id": order["id"]},
            )
        self._authorize(payment, order)
        return 200, {"razorpay_payment_id": payment["id"]}

    def _authenticate(self, payment_id: str, succeeded: bool) -> tuple[int, dict[str, Any]]:
        payment = self.payments.get(payment_id)
        if payment is None or payment["status"] != "created":
            return _not_found("payment")
        if succeeded:
            self._authorize(payment, self.orders[payment["order_id"]])
        else:
            self._fail(payment, "authentication_failed", "Payment failed at 3-D Secure.")
        return 200, payment

    def _authorize(self, payment: dict[str, Any], order: dict[str, Any]) -> None:
        payment["status"] = "authorized"
        if order["payment"].get("capture") == "automatic":
            payment.update(status="captured", captured=True)
            order.update(status="paid", amount_paid=order["amount"], amount_due=0)

    @staticmethod
    def _fail(payment: dict[str, Any], reason: str, description: str) -> None:
        payment.update(
            status="failed",
            error_code="BAD_REQUEST_ERROR",
            error_description=description,
            error_source="bank",
            error_step="payment_authorization",
            error_reason=reason,
        )

    def _capture(self, payment: dict[str, Any], body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if payment["status"] == "captured":
            return 400, _error("BAD_REQUEST_ERROR", "This payment has already been captured")
        if payment["status"] != "authorized":
            return 400, _error(
                "BAD_REQUEST_ERROR", "Only payments which have been authorized can be captured"
            )
        if body.get("amount") != payment["amount"]:
            return 400, _error(
                "BAD_REQUEST_ERROR",
                "Capture amount must be equal to the amount authorized",
                "amount",
            )
        payment.update(status="captured", captured=True)
        order = self.orders[payment["order_id"]]
        order.update(status="paid", amount_paid=order["amount"], amount_due=0)
        return 200, payment

    def _refund(self, payment: dict[str, Any], request: Request) -> tuple[int, dict[str, Any]]:
        key = request.headers.get("x-refund-idempotency")
        if key and key in self._refund_keys:
            return 200, self._refund_keys[key]
        body = request.json()
        amount = body.get("amount", payment["amount"] - payment["amount_refunded"])
        if payment["status"] not in ("captured", "refunded"):
            return 400, _error("BAD_REQUEST_ERROR", "The payment has not been captured")
        if not isinstance(amount, int) or amount > payment["amount"] - payment["amount_refunded"]:
            return 400, _error(
                "BAD_REQUEST_ERROR",
                "The refund amount provided is greater than amount captured",
                "amount",
            )
        refund = {
            "id": _id("rfnd"),
            "entity": "refund",
            "amount": amount,
            "currency": payment["currency"],
            "payment_id": payment["id"],
            "notes": body.get("notes") or {},
            "receipt": body.get("receipt"),
            "status": "processed",
            "speed_requested": body.get("speed", "normal"),
            "created_at": int(time.time()),
        }
        payment["amount_refunded"] += amount
        if payment["amount_refunded"] == payment["amount"]:
            payment["status"] = "refunded"
        self.refunds[refund["id"]] = refund
        if key:
            self._refund_keys[key] = refund
        return 200, refund

    def _recon(self, query: dict[str, str]) -> list[dict[str, Any]]:
        """The day's settled payments and refunds, as Razorpay's settlement recon lists them
        (fee 2% plus 18% GST on it, settled the same day, one settlement a day)."""
        start = int(
            datetime(
                int(query["year"]), int(query["month"]), int(query["day"]), tzinfo=UTC
            ).timestamp()
        )
        settlement = "setl_" + datetime.fromtimestamp(start, UTC).strftime("%Y%m%d")
        items = []
        for payment in self.payments.values():
            if payment.get("captured") and start <= payment["created_at"] < start + 86_400:
                fee = (payment["amount"] * 2 + 50) // 100
                fee += (fee * 18 + 50) // 100
                items.append(
                    _recon_line(payment, "payment", payment["amount"], fee, settlement)
                    | {"credit": payment["amount"] - fee, "debit": 0}
                )
        for refund in self.refunds.values():
            if refund["status"] == "processed" and start <= refund["created_at"] < start + 86_400:
                items.append(
                    _recon_line(refund, "refund", refund["amount"], 0, settlement)
                    | {"credit": 0, "debit": refund["amount"], "payment_id": refund["payment_id"]}
                )
        return items


def _recon_line(
    entity: dict[str, Any], kind: str, amount: int, fee: int, settlement: str
) -> dict[str, Any]:
    return {
        "entity_id": entity["id"],
        "type": kind,
        "amount": amount,
        "currency": entity["currency"],
        "fee": fee,
        "tax": fee - (fee * 100 + 59) // 118 if fee else 0,
        "on_hold": False,
        "settled": True,
        "created_at": entity["created_at"],
        "settled_at": entity["created_at"],
        "settlement_id": settlement,
        "description": None,
        "notes": entity.get("notes") or {},
        "payment_id": entity["id"] if kind == "payment" else None,
        "order_id": entity.get("order_id"),
        "method": entity.get("method"),
        "dispute_id": None,
    }


def _matches(order: dict[str, Any], query: dict[str, str]) -> bool:
    return "receipt" not in query or order["receipt"] == query["receipt"]


def _collection(items: list[dict[str, Any]]) -> dict[str, Any]:
    return {"entity": "collection", "count": len(items), "items": items}


def _not_found(what: str) -> tuple[int, dict[str, Any]]:
    return 400, _error("BAD_REQUEST_ERROR", f"The id provided does not exist ({what})", "id")


def _error(
    code: str,
    description: str,
    field: str | None = None,
    *,
    source: str = "business",
    step: str = "payment_initiation",
    reason: str = "input_validation_failed",
    metadata: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "error": {
            "code": code,
            "description": description,
            "field": field,
            "source": source,
            "step": step,
            "reason": reason,
            "metadata": metadata or {},
        }
    }
