"""`payflow trigger EVENT`: make an event happen, as `stripe trigger` does.

Each trigger makes the objects the event is about through the sandbox's API, as a merchant
would (create, confirm, capture, cancel, refund), so the event, its deliveries and the ledger
entries are the real ones. It then waits until the event is in the merchant's event list and
prints the objects it made and the events they produced.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TextIO

from payflow.api_client import ApiClient, ApiError
from payflow.locate import CliError

Made = list[dict[str, Any]]


@dataclass(frozen=True)
class Trigger:
    """How one event type is made to happen."""

    event: str
    summary: str
    make: Callable[[ApiClient], Made]


def _payment_intent(client: ApiClient, **params: Any) -> dict[str, Any]:
    defaults: dict[str, Any] = {
        "amount": 2000,
        "currency": "usd",
        "payment_method": "pm_card_visa",
        "metadata": {"payflow_trigger": "true"},
    }
    return client.post(
        "/v1/payment_intents", {**defaults, **params}, idempotency_key=str(uuid.uuid4())
    )


def _confirmed(client: ApiClient, payment_method: str = "pm_card_visa", **params: Any) -> Made:
    return [_payment_intent(client, payment_method=payment_method, confirm=True, **params)]


def _created(client: ApiClient) -> Made:
    return [_payment_intent(client)]


def _declined(client: ApiClient) -> Made:
    intent = _payment_intent(client, payment_method="pm_card_chargeDeclined")
    try:
        client.post(f"/v1/payment_intents/{intent['id']}/confirm", {})
    except ApiError as error:
        if error.status != 402:
            raise
    return [client.get(f"/v1/payment_intents/{intent['id']}")]


def _canceled(client: ApiClient) -> Made:
    intent = _payment_intent(client)
    return [
        client.post(
            f"/v1/payment_intents/{intent['id']}/cancel",
            {"cancellation_reason": "requested_by_customer"},
        )
    ]


def _refunded(client: ApiClient, payment_method: str = "pm_card_visa") -> Made:
    (intent,) = _confirmed(client, payment_method)
    if intent["status"] != "succeeded":
        raise CliError(f"{intent['id']} is {intent['status']}, not succeeded: cannot refund it")
    refund = client.post(
        "/v1/refunds",
        {"payment_intent": intent["id"], "reason": "requested_by_customer"},
        idempotency_key=str(uuid.uuid4()),
    )
    return [intent, refund]


def _refund_failed(client: ApiClient) -> Made:
    return _refunded(client, "pm_card_refundFail")


def _endpoint_disabled(client: ApiClient) -> Made:
    # An endpoint that answers 410 Gone is disabled at its first delivery, as Stripe and Svix do.
    with _gone_receiver() as url:
        endpoint = client.post(
            "/v1/webhook_endpoints",
            {
                "url": url,
                "enabled_events": ["payment_intent.created"],
                "description": "payflow trigger webhook_endpoint.disabled (answers 410)",
            },
        )
        intent = _payment_intent(client)
        deadline = time.monotonic() + 30
        while client.get(f"/v1/webhook_endpoints/{endpoint['id']}")["status"] != "disabled":
            if time.monotonic() > deadline:
                raise CliError(f"{endpoint['id']} was not disabled within 30 s")
            time.sleep(0.2)
        endpoint = client.get(f"/v1/webhook_endpoints/{endpoint['id']}")
        # Deleted once disabled: endpoints count against the merchant's limit of 16; its
        # events stay.
        client.delete(f"/v1/webhook_endpoints/{endpoint['id']}")
    return [intent, endpoint]


@contextmanager
def _gone_receiver() -> Iterator[str]:
    class Gone(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            self.send_response(410)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Gone)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/gone"
    finally:
        server.shutdown()
        server.server_close()


TRIGGERS: dict[str, Trigger] = {
    t.event: t
    for t in [
        Trigger("payment_intent.created", "a PaymentIntent, not confirmed", _created),
        Trigger(
            "payment_intent.succeeded", "a PaymentIntent confirmed with pm_card_visa", _confirmed
        ),
        Trigger(
            "payment_intent.payment_failed",
            "a PaymentIntent confirmed with pm_card_chargeDeclined",
            _declined,
        ),
        Trigger(
            "payment_intent.requires_action",
            "a PaymentIntent confirmed with pm_card_threeDSecure2Required",
            lambda client: _confirmed(client, "pm_card_threeDSecure2Required"),
        ),
        Trigger("payment_intent.canceled", "a PaymentIntent, then canceled", _canceled),
        Trigger(
            "payment_intent.amount_capturable_updated",
            "a manual-capture PaymentIntent, authorized (requires_capture)",
            lambda client: _confirmed(client, capture_method="manual"),
        ),
        Trigger("charge.refunded", "a succeeded PaymentIntent, fully refunded", _refunded),
        Trigger("refund.created", "a succeeded PaymentIntent, fully refunded", _refunded),
        Trigger("refund.updated", "a refund, settled by the refund saga", _refunded),
        Trigger(
            "refund.failed",
            "a PaymentIntent paid with pm_card_refundFail, refunded (the PSP refuses)",
            _refund_failed,
        ),
        Trigger(
            "webhook_endpoint.disabled",
            "an endpoint answering 410 Gone, disabled by its first delivery",
            _endpoint_disabled,
        ),
    ]
}


def _ids(made: Made) -> set[str]:
    ids = {str(obj["id"]) for obj in made if "id" in obj}
    # charge.refunded is about the charge, not the PaymentIntent.
    ids |= {str(obj["latest_charge"]) for obj in made if obj.get("latest_charge")}
    return ids


def wait_for_events(
    client: ApiClient,
    event: str,
    made: Made,
    *,
    timeout: float = 30.0,
    sleep: Callable[[float], None] = time.sleep,
) -> list[dict[str, Any]]:
    """The events about `made`, newest last, once one of type `event` is among them."""
    ids = _ids(made)
    deadline = time.monotonic() + timeout

    def about(query: dict[str, Any]) -> list[dict[str, Any]]:
        page = client.get("/v1/events", {"limit": 100, **query})["data"]
        return [e for e in page if str(e["data"]["object"].get("id")) in ids]

    while not about({"type": event}):
        if time.monotonic() > deadline:
            seen = ", ".join(sorted({e["type"] for e in about({})})) or "none"
            raise CliError(f"no {event} event within {timeout:.0f} s (events seen: {seen})")
        sleep(0.2)
    return sorted(about({}), key=lambda e: (e["created"], e["id"]))


def describe(obj: dict[str, Any]) -> str:
    """One line for an object the trigger made."""
    status = obj.get("status", "")
    amount = f" {obj['amount']} {obj.get('currency', '')}" if "amount" in obj else ""
    return f"{obj.get('object', '?'):16} {obj.get('id')} {status}{amount}".rstrip()


def trigger(
    client: ApiClient, event: str, *, out: TextIO, as_json: bool = False, timeout: float = 30.0
) -> Made:
    """Make `event` happen; print what was made and the events it produced."""
    recipe = TRIGGERS.get(event)
    if recipe is None:
        raise CliError(f"unknown event {event!r}; `payflow trigger --list` shows every one")
    print(f"Triggering {event}: {recipe.summary}", file=out, flush=True)
    made = recipe.make(client)
    events = wait_for_events(client, event, made, timeout=timeout)
    if as_json:
        print(json.dumps({"objects": made, "events": events}, indent=2), file=out)
        return made
    for obj in made:
        print(f"  made   {describe(obj)}", file=out)
    for found in events:
        print(f"  event  {found['id']} {found['type']}", file=out)
    print(f"Trigger succeeded: {event}", file=out, flush=True)
    return made


def add_command(commands: Any, api_options: Callable[[argparse.ArgumentParser], None]) -> None:
    """`payflow trigger` on the CLI's subcommands."""
    command = commands.add_parser(
        "trigger",
        help="make an event happen through the API, like `stripe trigger`",
        description="Makes the objects an event is about through the sandbox's API, so the "
        "event and its webhooks are the real ones. Events: " + ", ".join(TRIGGERS) + ".",
    )
    command.add_argument("event", nargs="?", help="the event type, e.g. payment_intent.succeeded")
    command.add_argument("--list", action="store_true", help="list the events it can trigger")
    command.add_argument("--json", action="store_true", help="print the objects as JSON")
    command.add_argument(
        "--timeout", type=float, default=30.0, help="seconds to wait for the event (default 30)"
    )
    api_options(command)


def run(args: argparse.Namespace, api_base: str, out: TextIO | None = None) -> int:
    """`payflow trigger` with parsed arguments."""
    import sys

    out = out or sys.stdout
    if args.list or not args.event:
        for name, recipe in TRIGGERS.items():
            print(f"{name:42} {recipe.summary}", file=out)
        return 0 if args.list else 2
    trigger(
        ApiClient(api_base, args.api_key),
        args.event,
        out=out,
        as_json=args.json,
        timeout=args.timeout,
    )
    return 0
