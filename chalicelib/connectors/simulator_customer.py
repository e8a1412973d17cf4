"""The customer the simulator PSP waits for: a UPI app, a collect request, a wallet's page.

`pm_upi_intent`, `pm_upi_collect` and `pm_wallet` are not answered at once. The simulator opens
a customer action (stored once per PSP reference, with the moment it expires) and answers
`requires_action` with what the customer needs: a QR code and a `upi://pay` deep link, the
collect request's VPA and expiry, or the wallet's approval page. The customer's decision comes
later, through the sandbox's `POST /v1/sandbox/payment_intents/{id}/customer_action` (approve
or refuse) or, when nobody answers, from the sweep that expires what is due by the business
clock. Either way the first decision is the only one (a conditional write), and the PaymentIntent
learns it the way it learns a real PSP's asynchronous outcomes: by the simulator's webhooks
(chalicelib.connectors.simulator_webhooks).
"""

from __future__ import annotations

import base64
import io
import time
from collections.abc import Callable
from enum import StrEnum
from typing import Any
from urllib.parse import quote, urlencode

from chalicelib.connectors.base import AuthorizationRequest, Decline
from chalicelib.connectors.simulator_webhooks import SimulatorOutbox
from chalicelib.dal.simulator import SimulatorLedger
from chalicelib.errors import ResourceMissing

PENDING = "customer_actions"
PAYEE_VPA = "payflow.simulator@upi"
"""The payee the simulator's UPI requests name (a sandbox VPA; no bank holds it)."""
PAYEE_NAME = "PayFlow Simulator"


class CustomerAction(StrEnum):
    """What the simulator waits for the customer to do."""

    UPI_INTENT = "upi_intent"
    """Scan a QR code (or follow a `upi://pay` deep link) and approve in a UPI app."""
    UPI_COLLECT = "upi_collect"
    """Approve the collect request sent to their VPA."""
    WALLET = "wallet"
    """Approve the payment on the wallet's own page."""


class Decision(StrEnum):
    """How a customer action ended."""

    APPROVED = "approved"
    REFUSED = "refused"
    EXPIRED = "expired"
    """Nobody answered before `expires_at`."""


ACTIONS = {
    "pm_upi_intent": CustomerAction.UPI_INTENT,
    "pm_upi_collect": CustomerAction.UPI_COLLECT,
    "pm_wallet": CustomerAction.WALLET,
}
"""The test payment methods that wait for their customer, and what each waits for."""

_DECLINES = {
    (CustomerAction.UPI_INTENT, Decision.REFUSED): Decline(
        "payment_method_customer_decline",
        "You declined the payment in your UPI app.",
    ),
    (CustomerAction.UPI_COLLECT, Decision.REFUSED): Decline(
        "payment_method_customer_decline",
        "You declined the UPI collect request.",
    ),
    (CustomerAction.WALLET, Decision.REFUSED): Decline(
        "payment_method_customer_decline",
        "You declined the payment on the wallet's page.",
    ),
}
EXPIRED = Decline(
    "payment_intent_payment_attempt_expired",
    "The payment was not approved before it expired. Please try again.",
)


def page_url(payment_intent_id: str) -> str:
    """PayFlow's page where the customer acts (relative to the API, like the 3-D Secure page)."""
    return f"/v1/sandbox/payment_intents/{payment_intent_id}/customer_action"


def upi_uri(reference: str, amount: int, currency: str, note: str) -> str:
    """The `upi://pay` deep link of NPCI's linking specification for a payment request."""
    query = urlencode(
        {
            "pa": PAYEE_VPA,
            "pn": PAYEE_NAME,
            "tr": reference,
            "tn": note,
            "am": f"{amount // 100}.{amount % 100:02d}",
            "cu": currency.upper(),
        },
        quote_via=quote,
    )
    return f"upi://pay?{query}"


def qr_images(data: str) -> tuple[str, str]:
    """(PNG, SVG) data URLs of a QR code holding `data`."""
    import segno  # 0.1 s or so to import: only a UPI intent pays for it, never a cold start

    code = segno.make(data, error="l")
    png = code.png_data_uri(scale=6, border=2)
    # A standalone SVG document (with its namespace): an <img> shows nothing without it.
    text = io.BytesIO()
    code.save(text, kind="svg", scale=6, border=2, xmldecl=False)
    svg = base64.b64encode(text.getvalue()).decode()
    return png, f"data:image/svg+xml;base64,{svg}"


def next_action(action: CustomerAction, record: dict[str, Any]) -> dict[str, Any]:
    """The PaymentIntent's `next_action` for an open customer action, in Stripe's shapes where
    Stripe has one; PayFlow's own fields sit in `use_stripe_sdk`, which Stripe leaves to its SDK
    (named `payflow_*` there)."""
    url = page_url(record["payment_intent"])
    expires_at = int(record["expires_at"])
    if action == CustomerAction.WALLET:
        return {"type": "redirect_to_url", "redirect_to_url": {"url": url, "return_url": None}}
    sdk = {
        "type": f"payflow_{action.value}",
        "payflow_expires_at": expires_at,
        "payflow_hosted_url": url,
    }
    if action == CustomerAction.UPI_COLLECT:
        return {"type": "upi_await_notification", "use_stripe_sdk": sdk}
    uri = upi_uri(
        record["psp_reference"], record["amount"], record["currency"], record["payment_intent"]
    )
    png, svg = qr_images(uri)
    return {
        "type": "upi_handle_redirect_or_display_qr_code",
        "upi_handle_redirect_or_display_qr_code": {
            "hosted_instructions_url": url,
            "qr_code": {"expires_at": expires_at, "image_url_png": png, "image_url_svg": svg},
        },
        "use_stripe_sdk": {**sdk, "payflow_upi_uri": uri},
    }


class SimulatorCustomer:
    """Opens, decides and expires the simulator's customer actions."""

    def __init__(
        self,
        ledger: SimulatorLedger,
        outbox: SimulatorOutbox,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._ledger = ledger
        self._outbox = outbox
        self._clock = clock
        """Business time: `POST /v1/sandbox/clock` moves expiries along with everything else."""

    def open(
        self,
        connector: str,
        action: CustomerAction,
        request: AuthorizationRequest,
        *,
        psp_reference: str,
        charge_id: str,
        ttl_seconds: int,
    ) -> dict[str, Any]:
        """Wait for the customer on this authorization; its next_action."""
        record = self._ledger.record_once(
            "action",
            psp_reference,
            {
                "connector": connector,
                "action": action.value,
                "payment_intent": request.payment_intent_id,
                "attempt_key": request.idempotency_key,
                "psp_reference": psp_reference,
                "charge_id": charge_id,
                "amount": request.amount,
                "currency": request.currency,
                "capture": request.capture,
                "expires_at": int(self._clock()) + ttl_seconds,
            },
        )
        if self._ledger.find("decision", psp_reference) is None:
            self._ledger.add_pending(PENDING, _member(record))
        return next_action(action, record)

    def decide(self, psp_reference: str, decision: Decision) -> dict[str, Any]:
        """The customer's decision (the first one stands) and the webhooks it sends; returns
        the action with `decision` set."""
        action = self._ledger.find("action", psp_reference)
        if action is None:
            raise ResourceMissing(
                f"The simulator has no customer action for '{psp_reference}'.",
                param="payment_intent",
            )
        stored = self._ledger.record_once(
            "decision", psp_reference, {"decision": decision.value, "at": int(self._clock())}
        )
        final = Decision(stored["decision"])
        self._announce(action, final)
        self._ledger.remove_pending(PENDING, _member(action))
        return {**action, "decision": final.value}

    def expire_due(self) -> int:
        """Expire every open action whose time has come (the sweep); how many it expired."""
        now = self._clock()
        due = [m for m in self._ledger.pending(PENDING) if int(m.split("|", 1)[0]) <= now]
        for member in due:
            self.decide(member.split("|", 1)[1], Decision.EXPIRED)
        return len(due)

    def _announce(self, action: dict[str, Any], decision: Decision) -> None:
        reference = str(action["psp_reference"])
        data = {
            key: action[key]
            for key in ("payment_intent", "attempt_key", "psp_reference", "charge_id", "amount")
        }
        data["currency"] = action["currency"]
        connector = str(action["connector"])
        if decision == Decision.APPROVED:
            self._outbox.emit(
                connector, "payment.authorized", f"evt_sim_{reference}_authorized", data
            )
            if action.get("capture"):
                self._outbox.emit(
                    connector, "payment.captured", f"evt_sim_{reference}_captured", data
                )
            return
        decline = _DECLINES.get((CustomerAction(action["action"]), decision), EXPIRED)
        self._outbox.emit(
            connector,
            "payment.failed",
            f"evt_sim_{reference}_failed",
            {**data, "decline": decline.__dict__, "reason": decision.value},
        )


def _member(action: dict[str, Any]) -> str:
    # The expiry leads, so the sweep sees what is due without reading each action.
    return f"{int(action['expires_at']):012d}|{action['psp_reference']}"
