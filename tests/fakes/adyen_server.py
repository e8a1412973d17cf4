"""A fake Adyen Checkout API on 127.0.0.1 for the Adyen connector's tests.

Built from Adyen's public API reference: `POST /v{n}/payments` (card details in `paymentMethod`,
`additionalData.manualCapture`), and the asynchronous modifications
`/payments/{pspReference}/captures`, `/cancels`, `/refunds` (answered `received`, their outcome
sent later by notification). It keeps Adyen's idempotency (same `Idempotency-Key`, same answer),
refuses a wrong `X-API-Key` with 401 and answers errors as Adyen does: `{"status", "errorCode",
"message", "errorType"}`.

What it settled (captures, refunds, chargebacks and their reversals) is journalled, and served
as Adyen's Settlement details report of a batch (`GET /reports/download/MerchantAccount/
{account}/settlement_detail_report_batch_<n>.csv`, basic auth of the report user), creation
dates written in the account's time zone (CET). A batch is closed when a test says so
(`close_batch(at)`: every entry booked by then that no batch holds yet, so a batch may span
days or a day hold several batches) and announced with a REPORT_AVAILABLE notification. The
dated name `..._YYYY_MM_DD.csv` serves a daily batch of that UTC day's entries instead (the
name Adyen adds on request, for daily payouts).

Disputes: `dispute(psp, code)` sends a dispute notification as Adyen does (the dispute's own
pspReference on every event, the payment's as originalReference, signed), and journals the
money it moves: CHARGEBACK a Chargeback line (the amount and a 15.00 chargeback fee debited),
CHARGEBACK_REVERSED a ChargebackReversed line (both credited back), SECOND_CHARGEBACK a
SecondChargeback line (debited again), each with the dispute's pspReference as its
Modification Reference.

Every outcome is also sent as Adyen sends it, a standard notification (AUTHORISATION, CAPTURE,
CANCELLATION, REFUND) signed with the HMAC key: `notifications` holds them, and when
`webhook_url` is set each is POSTed there too.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import hmac
import io
import itertools
import json
import threading
import time
import urllib.error
import urllib.request
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler
from typing import Any

from chalicelib.reconciliation.reports import ADYEN_COLUMNS
from tests.fakes.http import FakeProvider, Request

API_KEY = "AQE_fake_adyen_key"
MERCHANT_ACCOUNT = "PayFlowECOM"
HMAC_KEY = "44782DEF547AAA06C910C43932B1EB0C71FC68D9D0C057550C48EC2ACF6BA056"
COMPANY_ACCOUNT = "PayFlowCompany"
REPORT_USER = f"report_payflow@Company.{COMPANY_ACCOUNT}"
REPORT_PASSWORD = "fake-report-password"
REPORT_PREFIX = "/reports/download/MerchantAccount/"
FIRST_BATCH = date(2020, 1, 1)
"""A day-named file's batch number is its days since this day (closed batches count from 1)."""
CHARGEBACK_FEE = 1500
"""What the fake charges for a chargeback (PayFlow's books take the same), given back when the
chargeback is reversed."""
DISPUTE_LINES = {
    "CHARGEBACK": "Chargeback",
    "CHARGEBACK_REVERSED": "ChargebackReversed",
    "SECOND_CHARGEBACK": "SecondChargeback",
}
"""The dispute events that move money, and the journal type Adyen books them as."""
CREDITS = frozenset({"Settled", "ChargebackReversed"})
CET = timedelta(hours=1)
"""The account's time-zone setting, in which the report writes creation dates."""

REFUSED_CARDS: dict[str, tuple[str, str]] = {
    "4000000000000002": ("2", "Refused"),
    "4000000000009995": ("12", "Not enough balance"),
    "4000000000000069": ("6", "Expired Card"),
    "4000000000000127": ("24", "CVC Declined"),
    "4100000000000019": ("20", "FRAUD"),
    "4000000000000119": ("9", "Issuer Unavailable"),
}
"""Card number -> Adyen's (refusalReasonCode, refusalReason)."""
AUTHENTICATING_CARDS = {"4000002760003184", "4000000000003220", "4000002500003155"}

_psp = itertools.count(1)


def _psp_reference() -> str:
    return f"FAKE{next(_psp):012d}"


def sign(item: dict[str, Any], hmac_key: str = HMAC_KEY) -> str:
    """Adyen's HMAC of a notification item, over its fields in Adyen's documented order."""
    amount = item.get("amount") or {}
    fields = [
        item.get("pspReference", ""),
        item.get("originalReference", ""),
        item.get("merchantAccountCode", ""),
        item.get("merchantReference", ""),
        str(amount.get("value", "")),
        amount.get("currency", ""),
        item.get("eventCode", ""),
        item.get("success", ""),
    ]
    digest = hmac.new(bytes.fromhex(hmac_key), ":".join(fields).encode(), hashlib.sha256)
    return base64.b64encode(digest.digest()).decode()


def notification_body(items: list[dict[str, Any]]) -> dict[str, Any]:
    """A notification request as Adyen POSTs it."""
    return {"live": "false", "notificationItems": [{"NotificationRequestItem": i} for i in items]}


class FakeAdyen(FakeProvider):
    """Adyen's payments and modifications, held in memory, with their notifications."""

    def __init__(self) -> None:
        super().__init__()
        self.payments: dict[str, dict[str, Any]] = {}
        self.modifications: list[dict[str, Any]] = []
        self.notifications: list[dict[str, Any]] = []
        self.journal: list[dict[str, Any]] = []
        """What Adyen booked: {type (a journal type), psp, merchant_reference, modification,
        modification_reference, value, currency, at, batch}; a test may edit it (`batch` is
        the batch number once a batch holds it)."""
        self.batches: list[dict[str, Any]] = []
        """Closed batches: {number, closed (UTC datetime), entries}."""
        self.disputes: dict[str, str] = {}
        """A disputed payment's pspReference -> its dispute's pspReference."""
        self.webhook_url: str | None = None
        self._by_key: dict[str, tuple[int, dict[str, Any]]] = {}

    def authenticate(self, request: Request) -> dict[str, Any] | None:
        if request.path.startswith("/_fake/") or request.headers.get("x-api-key") == API_KEY:
            return None
        return {
            "status": 401,
            "errorCode": "000",
            "message": "HTTP Status Response - Unauthorized",
            "errorType": "security",
        }

    def error_body(self, status: int) -> dict[str, Any]:
        if status == 429:
            return {
                "status": 429,
                "errorCode": "too_many_requests",
                "message": "Too many requests",
                "errorType": "throttling",
            }
        return {
            "status": status,
            "errorCode": "901",
            "message": "Internal error",
            "errorType": "internal",
        }

    def route(self, request: Request) -> tuple[int, dict[str, Any]]:
        parts = request.parts
        if parts[:1] == ["_fake"] and len(parts) == 3 and parts[1] == "authenticate":
            return self._authenticate(parts[2], request.query.get("succeeded") == "1")
        key = request.headers.get("idempotency-key")
        if key and key in self._by_key:
            return self._by_key[key]
        answer = self._answer(parts[1:], request.json())
        if key and answer[0] < 500:
            self._by_key[key] = answer
        return answer

    def _answer(self, parts: list[str], body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if body.get("merchantAccount") != MERCHANT_ACCOUNT:
            return _validation("905", "Payment details are not supported", "merchantAccount")
        if parts == ["payments"]:
            return self._pay(body)
        if len(parts) == 3 and parts[0] == "payments" and parts[2] in ("captures", "cancels"):
            return self._modify(parts[1], parts[2], body)
        if len(parts) == 3 and parts[0] == "payments" and parts[2] == "refunds":
            return self._modify(parts[1], "refunds", body)
        return 404, {"status": 404, "errorCode": "000", "message": "Not found", "errorType": "x"}

    # -- payments ------------------------------------------------------------------------------

    def _pay(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        amount = body.get("amount") or {}
        if not isinstance(amount.get("value"), int) or not amount.get("currency"):
            return _validation("100", "Required field 'amount' is not provided.", "amount")
        method = body.get("paymentMethod") or {}
        if method.get("type") != "scheme" or not method.get("number"):
            return _validation("129", "Invalid card number", "paymentMethod.number")
        psp = _psp_reference()
        manual = (body.get("additionalData") or {}).get("manualCapture") == "true"
        payment = {
            "pspReference": psp,
            "merchantReference": body.get("reference", ""),
            "amount": amount,
            "manual": manual,
            "status": "pending",
            "captured": 0,
            "refunded": 0,
        }
        self.payments[psp] = payment
        number = method["number"]
        if number in AUTHENTICATING_CARDS:
            payment["status"] = "redirected"
            return 200, {
                "resultCode": "RedirectShopper",
                "pspReference": psp,
                "merchantReference": payment["merchantReference"],
                "action": {
                    "type": "redirect",
                    "method": "GET",
                    "paymentMethodType": "scheme",
                    "url": f"{self.url}/_fake/authenticate/{psp}",
                },
            }
        refused = REFUSED_CARDS.get(number)
        return 200, self._settle(payment, refused)

    def _settle(self, payment: dict[str, Any], refused: tuple[str, str] | None) -> dict[str, Any]:
        psp = payment["pspReference"]
        answer: dict[str, Any] = {
            "pspReference": psp,
            "merchantReference": payment["merchantReference"],
            "amount": payment["amount"],
        }
        if refused is None:
            payment["status"] = "authorised"
            answer["resultCode"] = "Authorised"
            self._notify("AUTHORISATION", payment, success=True)
            if not payment["manual"]:
                payment["captured"] = payment["amount"]["value"]
                self._journal("Settled", payment, _psp_reference(), "", payment["captured"])
        else:
            code, reason = refused
            payment["status"] = "refused"
            answer.update(resultCode="Refused", refusalReason=reason, refusalReasonCode=code)
            self._notify("AUTHORISATION", payment, success=False, reason=reason)
        return answer

    def _authenticate(self, psp: str, succeeded: bool) -> tuple[int, dict[str, Any]]:
        # The bank page: the shopper authenticates, and the outcome reaches the merchant as an
        # AUTHORISATION notification.
        payment = self.payments.get(psp)
        if payment is None or payment["status"] != "redirected":
            return 404, {"status": 404, "errorCode": "000", "message": "Not found"}
        return 200, self._settle(payment, None if succeeded else ("11", "3D Not Authenticated"))

    # -- modifications -------------------------------------------------------------------------

    def _modify(self, psp: str, kind: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        payment = self.payments.get(psp)
        if payment is None:
            return _unprocessable("167", "Original pspReference required for this operation")
        answer = {
            "merchantAccount": MERCHANT_ACCOUNT,
            "paymentPspReference": psp,
            "pspReference": _psp_reference(),
            "reference": body.get("reference", ""),
            "status": "received",
        }
        if kind != "cancels":
            answer["amount"] = body.get("amount")
        self.modifications.append({"kind": kind, **answer})
        event, success, reason = self._apply(payment, kind, body)
        if success and kind != "cancels":
            settled = "Settled" if kind == "captures" else "Refunded"
            value = int((body.get("amount") or {}).get("value", 0))
            self._journal(settled, payment, answer["pspReference"], answer["reference"], value)
        self._notify(
            event,
            {**payment, "amount": body.get("amount") or payment["amount"]},
            success=success,
            psp_reference=answer["pspReference"],
            original=psp,
            reference=answer["reference"],
            reason=reason,
        )
        return 201, answer

    @staticmethod
    def _apply(payment: dict[str, Any], kind: str, body: dict[str, Any]) -> tuple[str, bool, str]:
        value = int((body.get("amount") or {}).get("value", 0))
        if kind == "cancels":
            ok = payment["status"] == "authorised" and payment["captured"] == 0
            if ok:
                payment["status"] = "cancelled"
            return "CANCELLATION", ok, "" if ok else "Payment already captured"
        if kind == "captures":
            ok = payment["status"] == "authorised" and value <= payment["amount"]["value"]
            ok = ok and payment["captured"] == 0
            if ok:
                payment["captured"] = value
            return "CAPTURE", ok, "" if ok else "Insufficient balance on payment"
        ok = value <= payment["captured"] - payment["refunded"]
        if ok:
            payment["refunded"] += value
        return "REFUND", ok, "" if ok else "Insufficient in-process funds on paymentPspReference"

    def _journal(
        self,
        kind: str,
        payment: dict[str, Any],
        modification: str,
        reference: str,
        value: int,
        at: datetime | None = None,
    ) -> None:
        self.journal.append(
            {
                "type": kind,
                "psp": payment["pspReference"],
                "merchant_reference": payment["merchantReference"],
                "modification": modification,
                "modification_reference": reference,
                "value": value,
                "currency": payment["amount"]["currency"],
                "at": at or datetime.now(UTC),
                "batch": None,
            }
        )

    # -- disputes ------------------------------------------------------------------------------

    def dispute(
        self,
        psp: str,
        code: str,
        *,
        amount: int | None = None,
        status: str = "Undefended",
        reason_code: str = "10.4",
        at: datetime | None = None,
    ) -> dict[str, Any]:
        """Adyen reports an event of the payment `psp`'s dispute (one dispute a payment): the
        notification item sent (signed), after the money it moves is journalled."""
        payment = self.payments[psp]
        dispute_psp = self.disputes.setdefault(psp, _psp_reference())
        value = int(amount if amount is not None else payment["captured"])
        when = at or datetime.now(UTC)
        if code in DISPUTE_LINES:
            self._journal(DISPUTE_LINES[code], payment, dispute_psp, "", value, when)
        item: dict[str, Any] = {
            "amount": {"value": value, "currency": payment["amount"]["currency"]},
            "eventCode": code,
            "eventDate": when.isoformat(timespec="seconds"),
            "merchantAccountCode": MERCHANT_ACCOUNT,
            "merchantReference": payment["merchantReference"],
            "originalReference": psp,
            "pspReference": dispute_psp,
            "reason": "",
            "success": "true",
        }
        self._send(item, {"chargebackReasonCode": reason_code, "disputeStatus": status})
        return item

    # -- the Settlement details report ---------------------------------------------------------

    def _serve(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        # A report is CSV, not JSON, and is downloaded with the report user's basic auth.
        path = handler.path.split("?")[0]
        if method != "GET" or not path.startswith(REPORT_PREFIX):
            return super()._serve(handler, method)
        self.requests.append(Request(handler, method))
        expected = base64.b64encode(f"{REPORT_USER}:{REPORT_PASSWORD}".encode()).decode()
        account, _, name = path.removeprefix(REPORT_PREFIX).partition("/")
        report = self._report_named(name) if account == MERCHANT_ACCOUNT else None
        if handler.headers.get("Authorization") != f"Basic {expected}":
            status, data = 401, b"HTTP Status 401 - Unauthorized"
        elif report is None:
            status, data = 404, b"Not found"
        else:
            status, data = 200, report.encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "text/csv" if status == 200 else "text/plain")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    def _report_named(self, name: str) -> str | None:
        """The report a file name asks for: a closed batch's, or a day-named daily batch."""
        stem = name.removesuffix(".csv").removeprefix("settlement_detail_report_")
        if not name.startswith("settlement_detail_report_") or not name.endswith(".csv"):
            return None
        with self.lock:
            if stem.startswith("batch_"):
                number = stem.removeprefix("batch_")
                batch = next((b for b in self.batches if str(b["number"]) == number), None)
                if batch is None:
                    return None
                return self._report(str(batch["number"]), batch["entries"], batch["closed"])
            try:
                day = date.fromisoformat(stem.replace("_", "-"))
            except ValueError:
                return None
            entries = [e for e in self.journal if e["at"].date() == day]
        closed = datetime.combine(day, datetime.max.time(), UTC).replace(microsecond=0)
        return self._report(str(day.toordinal() - FIRST_BATCH.toordinal()), entries, closed)

    @staticmethod
    def _report(batch: str, entries: list[dict[str, Any]], closed: datetime) -> str:
        """A batch's Settlement details report: each entry (fees on a capture: commission
        0.12, markup 0.6%, scheme fees 0.2%, interchange 0.3%; on a chargeback the chargeback
        fee as commission, given back on its reversal; nothing on a refund), then the batch's
        fee line and its payout (MerchantPayout, when the batch's net is positive)."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(ADYEN_COLUMNS)
        net_total: dict[str, int] = {}
        for entry in entries:
            value, currency, kind = int(entry["value"]), str(entry["currency"]), entry["type"]
            fees = (0, 0, 0, 0)
            if kind == "Settled":
                fees = (12, value * 6 // 1000, value * 2 // 1000, value * 3 // 1000)
            elif kind in ("Chargeback", "SecondChargeback"):
                fees = (CHARGEBACK_FEE, 0, 0, 0)
            elif kind == "ChargebackReversed":
                fees = (-CHARGEBACK_FEE, 0, 0, 0)
            credit = kind in CREDITS
            net = value - sum(fees) if credit else -(value + sum(fees))
            net_total[currency] = net_total.get(currency, 0) + net
            writer.writerow(
                [
                    COMPANY_ACCOUNT,
                    MERCHANT_ACCOUNT,
                    entry["psp"],
                    entry["merchant_reference"],
                    "visa",
                    (entry["at"] + CET).strftime("%Y-%m-%d %H:%M:%S"),
                    "CET",
                    kind,
                    entry["modification"],
                    currency,
                    "" if credit else _major(value),
                    _major(value) if credit else "",
                    "1",
                    currency,
                    "" if credit else _major(-net),
                    _major(net) if credit else "",
                    *(_major(f) if f else "" for f in fees),
                    "visaclassic",
                    entry["modification_reference"],
                    batch,
                ]
            )
        for currency, total in sorted(net_total.items()):
            lines = [("Fee", "Transaction Fees", 0)]
            if total > 0:
                # The payout description Adyen sends the bank (its default form).
                lines.append(
                    ("MerchantPayout", f"TX{batch}XT {MERCHANT_ACCOUNT}, batch {batch}", total)
                )
            for kind, reference, amount in lines:
                writer.writerow(
                    [
                        COMPANY_ACCOUNT,
                        MERCHANT_ACCOUNT,
                        "",
                        "",
                        "",
                        (closed + CET).strftime("%Y-%m-%d %H:%M:%S"),
                        "CET",
                        kind,
                        reference,
                        "",
                        "",
                        "",
                        "",
                        currency,
                        _major(amount),
                        "",
                        "",
                        "",
                        "",
                        "",
                        "",
                        "",
                        batch,
                    ]
                )
        return out.getvalue()

    def close_batch(self, at: datetime | None = None) -> dict[str, Any]:
        """Close the open batch at `at` (default now): every entry booked by then that no
        batch holds yet. Announced as Adyen does once its report is ready: a REPORT_AVAILABLE
        notification naming the file (`pspReference`) and its download URL (`reason`)."""
        closed = at or datetime.now(UTC)
        with self.lock:
            number = len(self.batches) + 1
            entries = [e for e in self.journal if e["batch"] is None and e["at"] <= closed]
            for entry in entries:
                entry["batch"] = number
            self.batches.append({"number": number, "closed": closed, "entries": entries})
        name = f"settlement_detail_report_batch_{number}.csv"
        item: dict[str, Any] = {
            "amount": {"value": 0, "currency": "EUR"},
            "eventCode": "REPORT_AVAILABLE",
            "eventDate": closed.isoformat(timespec="seconds"),
            "merchantAccountCode": MERCHANT_ACCOUNT,
            "merchantReference": "",
            "pspReference": name,
            "reason": f"{self.url}{REPORT_PREFIX}{MERCHANT_ACCOUNT}/{name}",
            "success": "true",
        }
        self._send(item)
        return item

    def _notify(
        self,
        event: str,
        payment: dict[str, Any],
        *,
        success: bool,
        psp_reference: str | None = None,
        original: str | None = None,
        reference: str | None = None,
        reason: str = "",
    ) -> None:
        item: dict[str, Any] = {
            "amount": payment["amount"],
            "eventCode": event,
            "eventDate": datetime.now(UTC).isoformat(timespec="seconds"),
            "merchantAccountCode": MERCHANT_ACCOUNT,
            "merchantReference": reference
            if reference is not None
            else payment["merchantReference"],
            "pspReference": psp_reference or payment["pspReference"],
            "reason": reason,
            "success": "true" if success else "false",
        }
        if original:
            item["originalReference"] = original
        self._send(item)

    def _send(self, item: dict[str, Any], extra: dict[str, str] | None = None) -> None:
        item["additionalData"] = {**(extra or {}), "hmacSignature": sign(item)}
        self.notifications.append(item)
        if self.webhook_url:
            threading.Thread(target=self._deliver, args=(item,), daemon=True).start()

    def _deliver(self, item: dict[str, Any]) -> None:
        """Post the notification; retried on any answer but a 2xx, as Adyen retries until it
        is accepted (here after 0.2, 0.4, 0.8... seconds, six tries in all)."""
        assert self.webhook_url is not None
        data = json.dumps(notification_body([item])).encode()
        for attempt in range(6):
            request = urllib.request.Request(
                self.webhook_url, data=data, headers={"Content-Type": "application/json"}
            )
            try:
                with urllib.request.urlopen(request, timeout=10) as response:
                    response.read()
                    return
            except urllib.error.URLError:
                time.sleep(0.2 * 2**attempt)

    def find_notification(self, event: str, reference: str) -> dict[str, Any] | None:
        """What PayFlow would have stored from the notifications sent: the last item of
        `event` for `reference` (merchantReference or pspReference)."""
        for item in reversed(self.notifications):
            if item["eventCode"] == event and reference in (
                item["merchantReference"],
                item["pspReference"],
            ):
                return item
        return None


def _major(minor: int) -> str:
    """Minor units of a two-decimal currency as Adyen writes them ("12.34")."""
    sign = "-" if minor < 0 else ""
    whole, cents = divmod(abs(minor), 100)
    return f"{sign}{whole}.{cents:02d}"


def _validation(code: str, message: str, field: str) -> tuple[int, dict[str, Any]]:
    return 400, {"status": 400, "errorCode": code, "message": message, "errorType": "validation"}


def _unprocessable(code: str, message: str) -> tuple[int, dict[str, Any]]:
    return 422, {"status": 422, "errorCode": code, "message": message, "errorType": "validation"}
