"""An example merchant's shop for payflow.js: what a newcomer runs beside `make dev`.

    .venv/bin/python examples/checkout/server.py          # then open http://127.0.0.1:4242

The server holds the secret key and creates the PaymentIntent; the browser confirms it with
payflow.js and the publishable key, so card details go from PayFlow's frame to PayFlow and never
through this server. After a redirect, /complete reads the PaymentIntent with the secret key:
a shop trusts its server's view of the payment, not the URL.

Configured by the environment: PAYFLOW_API (default http://127.0.0.1:8000), PAYFLOW_SECRET_KEY
(default sk_test_payflow, the sandbox's demo merchant), PAYFLOW_PUBLISHABLE_KEY (default: the
demo merchant's, which the sandbox derives from its secret key), SHOP_PORT (default 4242).
Python's standard library only.
"""

from __future__ import annotations

import argparse
import base64
import html
import json
import os
import threading
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

STATIC = Path(__file__).resolve().parent / "static"
FILES = {
    "/shop.js": "text/javascript; charset=utf-8",
    "/shop.css": "text/css; charset=utf-8",
}
ITEM = {"name": "PayFlow sandbox T-shirt", "amount": 2000, "currency": "eur"}
"""What the shop sells: the server, not the browser, decides what is charged."""
PRICES = {"eur": 2000, "inr": 179900}
"""The item's price in each currency the shop takes (minor units)."""
METHODS = {"eur": ["card"], "inr": ["card", "upi"]}
"""What the PaymentIntent accepts in each currency: UPI is for rupees. PayFlow Wallet pays as
a card (like Google Pay), so "card" covers it."""


@dataclass(frozen=True)
class Received:
    """One request the shop's server got (kept so a test can see what reached the merchant)."""

    method: str
    path: str
    headers: dict[str, str]
    body: str


@dataclass
class Shop:
    """The shop's settings and what its server has received."""

    api: str
    secret_key: str
    publishable_key: str
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def payflow(
        self,
        method: str,
        path: str,
        params: dict[str, str] | list[tuple[str, str]] | None = None,
    ) -> Any:
        """PayFlow's API with the secret key, in Stripe's form encoding."""
        data = urllib.parse.urlencode(params or {}).encode() if method == "POST" else None
        request = urllib.request.Request(self.api + path, data=data, method=method)
        token = base64.b64encode(f"{self.secret_key}:".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as error:
            return json.loads(error.read())


class Handler(BaseHTTPRequestHandler):
    shop: Shop

    def do_GET(self) -> None:
        self._record("")
        url = urllib.parse.urlsplit(self.path)
        if url.path == "/":
            self._page(_index(self.shop))
        elif url.path == "/complete":
            self._page(_complete(self.shop, urllib.parse.parse_qs(url.query)))
        elif url.path in FILES:
            self._send(200, FILES[url.path], (STATIC / url.path.lstrip("/")).read_bytes())
        else:
            self._send(404, "text/plain", b"not found")

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode("utf-8", "replace")
        self._record(body)
        if self.path != "/create-payment-intent":
            self._send(404, "text/plain", b"not found")
            return
        try:
            asked = json.loads(body or "{}").get("currency", ITEM["currency"])
        except (ValueError, AttributeError):
            asked = None
        if asked not in PRICES:
            self._send(400, "application/json", b'{"error": {"message": "No such currency."}}')
            return
        intent = self.shop.payflow(
            "POST",
            "/v1/payment_intents",
            [
                ("amount", str(PRICES[asked])),
                ("currency", asked),
                ("description", str(ITEM["name"])),
                *(("payment_method_types[]", method) for method in METHODS[asked]),
            ],
        )
        if "error" in intent:
            self._send(502, "application/json", json.dumps(intent).encode())
            return
        answer = {"clientSecret": intent["client_secret"]}
        self._send(200, "application/json", json.dumps(answer).encode())

    def _record(self, body: str) -> None:
        with self.shop.lock:
            self.shop.received.append(
                Received(self.command, self.path, dict(self.headers.items()), body)
            )

    def _page(self, text: str) -> None:
        self._send(200, "text/html; charset=utf-8", text.encode())

    def _send(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def _index(shop: Shop) -> str:
    page = (STATIC / "index.html").read_text(encoding="utf-8")
    return (
        page.replace("{{api}}", html.escape(shop.api))
        .replace("{{publishable_key}}", html.escape(shop.publishable_key))
        .replace("{{item}}", html.escape(str(ITEM["name"])))
        .replace("{{price}}", f"€{int(ITEM['amount']) / 100:.2f}")
    )


def _complete(shop: Shop, query: dict[str, list[str]]) -> str:
    intent_id = (query.get("payment_intent") or [""])[0]
    intent = shop.payflow("GET", f"/v1/payment_intents/{urllib.parse.quote(intent_id)}")
    status = intent.get("status", "unknown") if "error" not in intent else "unknown"
    message = {
        "succeeded": "Thank you: your payment succeeded.",
        "processing": "Your payment is processing; we will email you when it is done.",
    }.get(status, "Your payment did not go through. Please try again.")
    return (
        "<!doctype html><html lang=en><meta charset=utf-8><title>Order complete</title>"
        '<link rel=icon href="data:,">'
        '<link rel=stylesheet href="/shop.css"><main class="shop">'
        f'<h1>{html.escape(message)}</h1><p id="status" data-status="{html.escape(status)}">'
        f"PaymentIntent <code>{html.escape(intent_id)}</code>: {html.escape(status)}</p>"
        '<p><a href="/">Back to the shop</a></p></main></html>'
    )


def serve(shop: Shop, host: str = "127.0.0.1", port: int = 0) -> ThreadingHTTPServer:
    """The shop's server, started on a thread (port 0: a free one)."""
    handler = type("ShopHandler", (Handler,), {"shop": shop})
    server = ThreadingHTTPServer((host, port), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def demo_publishable_key(secret_key: str) -> str:
    """The sandbox demo merchant's publishable key (the sandbox derives it from the secret)."""
    from chalicelib.services.merchants import derived_publishable

    return derived_publishable(secret_key)


def main() -> None:
    argparse.ArgumentParser(description=__doc__.split("\n\n")[0]).parse_args()
    secret = os.environ.get("PAYFLOW_SECRET_KEY", "sk_test_payflow")
    shop = Shop(
        api=os.environ.get("PAYFLOW_API", "http://127.0.0.1:8000").rstrip("/"),
        secret_key=secret,
        publishable_key=os.environ.get("PAYFLOW_PUBLISHABLE_KEY") or demo_publishable_key(secret),
    )
    server = serve(shop, port=int(os.environ.get("SHOP_PORT", "4242")))
    host, port = server.server_address[:2]
    print(f"Example shop on http://{host}:{port} (PayFlow API {shop.api}); Ctrl-C stops it")
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        server.shutdown()


if __name__ == "__main__":
    main()
