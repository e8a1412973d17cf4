"""payflow.js and PayFlow's checkout frames (/js/v1/...), and the sandbox's 3-D Secure page and
its page for a customer the simulator waits for (UPI QR code or collect request, the wallet).

The files are built by `make` from clients/js/ into chalicelib/static/js/v1/, which `chalice
package` ships with the code. They are read when first asked for, never at import. A merchant's
page loads payflow.js and embeds the frames from another origin: the frames may be framed by
anyone (`frame-ancestors *`) but load and call nothing but PayFlow itself.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Final

from chalice import Blueprint, Response

from chalicelib.api.docs import not_found

checkout = Blueprint(__name__)
bp = checkout

STATIC: Final = Path(__file__).resolve().parents[1] / "static" / "js" / "v1"

_TYPES: Final[dict[str, str]] = {
    ".js": "text/javascript; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
}
# Only names the build writes (letters, then one known extension): no path reaches the disk.
_ASSET: Final = re.compile(r"[a-z]{1,32}\.(js|html|css)")
_ID: Final = re.compile(r"[A-Za-z0-9_]{1,255}")

# What PayFlow's frames may do: their own scripts and styles, calls to PayFlow's API, and be
# framed by any merchant's page. No inline script, nothing from elsewhere.
_FRAME_CSP: Final = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors *"
)
_CHALLENGE: Final = "challenge.html"
_CUSTOMER: Final = "customer.html"


@bp.route("/js/v1/{asset}", methods=["GET"])
def checkout_asset(asset: str) -> Response:
    """payflow.js, the payment element's frame (elements.html) and their scripts and styles."""
    if not _ASSET.fullmatch(asset) or asset in (_CHALLENGE, _CUSTOMER):
        return not_found(f"No such payflow.js asset: '{asset[:64]}'", param="asset")
    return _serve(asset)


@bp.route("/v1/sandbox/payment_intents/{intent}/authenticate", methods=["GET"])
def payment_challenge_page(intent: str) -> Response:
    """The customer's 3-D Secure page for a PaymentIntent: Complete or Fail (sandbox only).
    It reads `client_secret` and `key` (the publishable key) from its query string."""
    return _challenge(intent)


@bp.route("/v1/sandbox/setup_intents/{intent}/authenticate", methods=["GET"])
def setup_challenge_page(intent: str) -> Response:
    """The customer's 3-D Secure page for a SetupIntent: Complete or Fail (sandbox only)."""
    return _challenge(intent)


@bp.route("/v1/sandbox/payment_intents/{intent}/customer_action", methods=["GET"])
def customer_action_page(intent: str) -> Response:
    """The customer's side of a payment the simulator waits for (sandbox only): the UPI QR code
    and deep link, a collect request's countdown, or PayFlow Wallet's approval, with Approve
    and Refuse standing in for the customer's phone. Reads `client_secret` and `key`."""
    return _challenge(intent, _CUSTOMER)


def _challenge(intent: str, page: str = _CHALLENGE) -> Response:
    if not _ID.fullmatch(intent):
        return not_found(f"No such intent: '{intent[:255]}'", param="intent")
    return _serve(page)


def _serve(name: str) -> Response:
    text = _read(name)
    if text is None:
        return not_found(
            f"payflow.js is not built in this deployment ({name} is missing): `make` builds "
            "clients/js into chalicelib/static/js/v1."
        )
    headers: dict[str, str | list[str]] = {
        "Content-Type": _TYPES[Path(name).suffix],
        # Served fresh on every deploy: no version in the names to bust a cache with.
        "Cache-Control": "no-cache",
        "X-Content-Type-Options": "nosniff",
    }
    if name.endswith(".html"):
        headers["Content-Security-Policy"] = _FRAME_CSP
        headers["Referrer-Policy"] = "no-referrer"
    return Response(body=text, status_code=200, headers=headers)


_cache: dict[str, str] = {}


def _read(name: str) -> str | None:
    # A file found is kept for the process; a missing one is looked for again (built later).
    if name not in _cache:
        path = STATIC / name
        if not path.is_file():
            return None
        _cache[name] = path.read_text(encoding="utf-8")
    return _cache[name]
