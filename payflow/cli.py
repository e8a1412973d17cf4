"""`payflow`: developer commands for a running sandbox.

payflow listen [--forward-to URL] [--events TYPE,...]
    Registers a temporary webhook endpoint, prints every event as it arrives with the result
    of both signature checks (stripe-python and standardwebhooks), optionally forwards it
    with its original headers, and deletes the endpoint on exit (as `stripe listen`).

payflow redrive-dlq [--limit N]
    Moves dead-lettered webhook messages back to the webhook queue.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TextIO

DEFAULT_API_BASE = "http://127.0.0.1:8000"
DEFAULT_AWS_ENDPOINT = "http://127.0.0.1:4566"
_LOCAL = urllib.request.build_opener(urllib.request.ProxyHandler({}))
FORWARDED_HEADERS = ("stripe-signature", "webhook-id", "webhook-timestamp", "webhook-signature")


class CliError(Exception):
    """A failure to report in one line."""


@dataclass(frozen=True)
class Checked:
    """One received event and what the signature checks said."""

    event: dict[str, Any]
    stripe_ok: bool
    standard_ok: bool
    forward_status: int | None = None
    forward_error: str | None = None


def _request(
    method: str, url: str, api_key: str, data: dict[str, Any] | None = None
) -> dict[str, Any]:
    body = urllib.parse.urlencode(data, doseq=True).encode() if data is not None else None
    request = urllib.request.Request(
        url,
        data=body,
        method=method,
        headers={"Authorization": f"Bearer {api_key}", "User-Agent": "payflow-cli"},
    )
    try:
        with _LOCAL.open(request, timeout=10) as response:
            answer: dict[str, Any] = json.loads(response.read())
            return answer
    except urllib.error.HTTPError as error:
        detail = error.read().decode(errors="replace")
        raise CliError(f"{method} {url}: HTTP {error.code}: {detail}") from None
    except urllib.error.URLError as error:
        raise CliError(
            f"cannot reach PayFlow at {url} ({error.reason}); is the sandbox running (make dev)?"
        ) from None


def verify(body: bytes, headers: dict[str, str], secret: str) -> tuple[bool, bool]:
    """(stripe-python accepts it, standardwebhooks accepts it)."""
    import stripe
    from standardwebhooks.webhooks import Webhook

    try:
        stripe.Webhook.construct_event(body.decode(), headers.get("stripe-signature", ""), secret)
        stripe_ok = True
    except Exception:
        stripe_ok = False
    try:
        Webhook(secret).verify(body, headers)
        standard_ok = True
    except Exception:
        standard_ok = False
    return stripe_ok, standard_ok


def forward(url: str, body: bytes, headers: dict[str, str]) -> tuple[int | None, str | None]:
    """POST the event to `url` with its original signature headers: (status, error)."""
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            **{k: v for k, v in headers.items() if k in FORWARDED_HEADERS},
        },
    )
    try:
        with _LOCAL.open(request, timeout=10) as response:
            return response.status, None
    except urllib.error.HTTPError as error:
        return error.code, None
    except Exception as error:
        return None, str(getattr(error, "reason", error))


def listen(
    *,
    api_base: str,
    api_key: str,
    events: Sequence[str] = ("*",),
    forward_to: str | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
    out: TextIO = sys.stdout,
    stop: threading.Event | None = None,
    on_event: Callable[[Checked], None] | None = None,
) -> int:
    """Run until `stop` is set (or Ctrl-C): register, print, forward, clean up."""
    stop = stop or threading.Event()
    secret_box: dict[str, str] = {}
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            headers = {k.lower(): v for k, v in self.headers.items()}
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()
            stripe_ok, standard_ok = verify(body, headers, secret_box.get("secret", ""))
            try:
                event: dict[str, Any] = json.loads(body)
            except ValueError:
                event = {"type": "(not JSON)", "id": "?"}
            status, error = forward(forward_to, body, headers) if forward_to else (None, None)
            checked = Checked(event, stripe_ok, standard_ok, status, error)
            with lock:
                _print_event(out, checked, headers.get("webhook-id", ""), forward_to)
            if on_event is not None:
                on_event(checked)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    url = f"http://{host}:{server.server_address[1]}/"
    thread = threading.Thread(target=server.serve_forever, name="payflow-listen", daemon=True)
    thread.start()
    endpoint: dict[str, Any] | None = None
    try:
        endpoint = _request(
            "POST",
            f"{api_base}/v1/webhook_endpoints",
            api_key,
            {
                "url": url,
                "enabled_events[]": list(events),
                "description": "payflow listen (temporary)",
                "metadata[payflow_listen]": "true",
            },
        )
        secret_box["secret"] = endpoint["secret"]
        print(
            f"Ready! Your webhook signing secret is {endpoint['secret']} (^C to quit)\n"
            f"Listening on {url} as endpoint {endpoint['id']} for {', '.join(events)}"
            + (f"; forwarding to {forward_to}" if forward_to else ""),
            file=out,
            flush=True,
        )
        stop.wait()
    finally:
        if endpoint is not None:
            try:
                _request("DELETE", f"{api_base}/v1/webhook_endpoints/{endpoint['id']}", api_key)
                print(f"Deleted the temporary endpoint {endpoint['id']}", file=out, flush=True)
            except CliError as error:
                print(f"payflow: could not delete {endpoint['id']}: {error}", file=out)
        server.shutdown()
        server.server_close()
    return 0


def _print_event(out: TextIO, checked: Checked, webhook_id: str, forward_to: str | None) -> None:
    event = checked.event
    stamp = time.strftime("%Y-%m-%d %H:%M:%S")
    verdict = (
        "signature ok (stripe, standard-webhooks)"
        if checked.stripe_ok and checked.standard_ok
        else f"SIGNATURE INVALID (stripe: {_ok(checked.stripe_ok)}, "
        f"standard-webhooks: {_ok(checked.standard_ok)})"
    )
    print(
        f"{stamp}   --> {event.get('type')} [{event.get('id')}] {verdict} webhook-id={webhook_id}",
        file=out,
        flush=True,
    )
    if forward_to:
        answer = (
            f"[{checked.forward_status}]"
            if checked.forward_status is not None
            else f"[ERROR {checked.forward_error}]"
        )
        print(f"{stamp}  <--  {answer} POST {forward_to} [{event.get('id')}]", file=out, flush=True)


def _ok(value: bool) -> str:
    return "ok" if value else "failed"


def _aws_client(service: str, aws_endpoint: str) -> Any:
    import boto3

    return boto3.client(  # type: ignore[call-overload]
        service,
        endpoint_url=aws_endpoint,
        region_name=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
        aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID", "testing"),
        aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "testing"),
    )


def ledger_check(
    aws_endpoint: str, stack: str, merchant: str | None = None, out: TextIO | None = None
) -> int:
    """Recompute every balance (of one merchant, or all) from the postings of
    `<stack>-payments`; 1 on any drift."""
    out = out or sys.stdout
    from chalicelib.dal.ledger import LedgerStore
    from chalicelib.services.ledger import LedgerService

    dynamodb = _aws_client("dynamodb", aws_endpoint)
    report = LedgerService(LedgerStore(dynamodb, f"{stack}-payments"), dynamodb).check(merchant)
    print(
        f"{report.entries} journal entries, {len(report.unbalanced)} unbalanced, "
        f"{len(report.drift)} balances drifted from their postings",
        file=out,
    )
    for entry in report.unbalanced:
        print(f"  unbalanced: {entry}", file=out)
    for drift in report.drift:
        print(f"  drift: {drift}", file=out)
    return 0 if report.ok else 1


def redrive(aws_endpoint: str, stack: str, limit: int) -> int:
    """Move up to `limit` messages from `<stack>-webhooks-dlq` back to `<stack>-webhooks`."""
    from chalicelib.dal.webhooks import WebhookQueue

    sqs = _aws_client("sqs", aws_endpoint)
    queue = WebhookQueue(
        sqs,
        sqs.get_queue_url(QueueName=f"{stack}-webhooks")["QueueUrl"],
        sqs.get_queue_url(QueueName=f"{stack}-webhooks-dlq")["QueueUrl"],
    )
    return queue.redrive(limit)


def reset(data_dir: str | None) -> int:
    """`payflow reset`: wipe the embedded AWS's data directory; refused while a sandbox runs."""
    from pathlib import Path

    from payflow.sandbox.persistence import DEFAULT_DATA_DIR, DataDirError, wipe

    path = Path(data_dir or os.environ.get("PAYFLOW_DATA_DIR") or DEFAULT_DATA_DIR)
    try:
        deleted = wipe(path)
    except DataDirError as error:
        print(f"payflow: {error}", file=sys.stderr)
        return 1
    print(f"payflow: {path}: {len(deleted)} file(s) deleted, the next start begins empty")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="payflow", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)

    listen_cmd = commands.add_parser("listen", help="print (and forward) webhooks as they come")
    listen_cmd.add_argument(
        "--api-base", default=os.environ.get("PAYFLOW_API_BASE", DEFAULT_API_BASE)
    )
    listen_cmd.add_argument(
        "--api-key", default=os.environ.get("PAYFLOW_SECRET_KEY", "sk_test_payflow")
    )
    listen_cmd.add_argument(
        "--events", default="*", help="comma-separated event types (default: every type)"
    )
    listen_cmd.add_argument("--forward-to", help="POST each event to this URL as well")
    listen_cmd.add_argument("--host", default="127.0.0.1", help="where to receive events")
    listen_cmd.add_argument("--port", type=int, default=0, help="0: any free port")

    redrive_cmd = commands.add_parser("redrive-dlq", help="move dead-lettered webhooks back")
    redrive_cmd.add_argument(
        "--aws-endpoint", default=os.environ.get("AWS_ENDPOINT_URL", DEFAULT_AWS_ENDPOINT)
    )
    redrive_cmd.add_argument("--stack", default="payflow")
    redrive_cmd.add_argument("--limit", type=int, default=1000)

    check_cmd = commands.add_parser(
        "ledger-check", help="recompute balances from postings and report any drift"
    )
    check_cmd.add_argument(
        "--aws-endpoint", default=os.environ.get("AWS_ENDPOINT_URL", DEFAULT_AWS_ENDPOINT)
    )
    check_cmd.add_argument("--stack", default="payflow")
    check_cmd.add_argument("--merchant", help="only this merchant (default: every merchant)")

    reset_cmd = commands.add_parser(
        "reset", help="delete the sandbox's saved state (stop the sandbox first)"
    )
    reset_cmd.add_argument(
        "--data-dir",
        default=None,
        help="the directory to wipe (default: $PAYFLOW_DATA_DIR, else .payflow/ in the checkout)",
    )

    args = parser.parse_args(argv)
    if args.command == "reset":
        return reset(args.data_dir)
    try:
        if args.command == "listen":
            stop = threading.Event()
            signal.signal(signal.SIGINT, lambda *_: stop.set())
            signal.signal(signal.SIGTERM, lambda *_: stop.set())
            return listen(
                api_base=args.api_base.rstrip("/"),
                api_key=args.api_key,
                events=[e.strip() for e in args.events.split(",") if e.strip()],
                forward_to=args.forward_to,
                host=args.host,
                port=args.port,
                stop=stop,
            )
        if args.command == "ledger-check":
            return ledger_check(args.aws_endpoint, args.stack, args.merchant)
        moved = redrive(args.aws_endpoint, args.stack, args.limit)
        print(f"moved {moved} message(s) from {args.stack}-webhooks-dlq to {args.stack}-webhooks")
        return 0
    except CliError as error:
        print(f"payflow: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
