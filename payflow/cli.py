"""`payflow`: developer commands for a running sandbox (`payflow COMMAND --help` for each).

Every command finds the sandbox as payflow/locate.py describes (PAYFLOW_PORT, PAYFLOW_AWS_PORT,
the sandbox's state file, then 127.0.0.1:8000 and :4566) and says in one line what is wrong
when it cannot reach it.
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
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TextIO

from payflow import locate
from payflow.api_client import LOCAL, ApiClient
from payflow.locate import CliError

FORWARDED_HEADERS = ("stripe-signature", "webhook-id", "webhook-timestamp", "webhook-signature")
__all__ = ["CliError", "ledger_check", "listen", "main", "redrive"]


@dataclass(frozen=True)
class Checked:
    """One received event and what the signature checks said."""

    event: dict[str, Any]
    stripe_ok: bool
    standard_ok: bool
    forward_status: int | None = None
    forward_error: str | None = None


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
        with LOCAL.open(request, timeout=10) as response:
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
    client = ApiClient(api_base, api_key, timeout=10)
    try:
        endpoint = client.post(
            "/v1/webhook_endpoints",
            {
                "url": url,
                "enabled_events": list(events),
                "description": "payflow listen (temporary)",
                "metadata": {"payflow_listen": "true"},
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
                client.delete(f"/v1/webhook_endpoints/{endpoint['id']}")
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


def ledger_check(
    aws_endpoint: str, stack: str, merchant: str | None = None, out: TextIO | None = None
) -> int:
    """Recompute every balance (of one merchant, or all) from the postings of
    `<stack>-payments`; 1 on any drift."""
    out = out or sys.stdout
    from chalicelib.dal.ledger import LedgerStore
    from chalicelib.services.ledger import LedgerService

    dynamodb = locate.aws_client("dynamodb", aws_endpoint)
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

    sqs = locate.aws_client("sqs", aws_endpoint)
    queue = WebhookQueue(
        sqs,
        sqs.get_queue_url(QueueName=f"{stack}-webhooks")["QueueUrl"],
        sqs.get_queue_url(QueueName=f"{stack}-webhooks-dlq")["QueueUrl"],
    )
    return queue.redrive(limit)


# -- the command line ----------------------------------------------------------------------------


def _api_options(command: argparse.ArgumentParser, *, key: bool = True) -> None:
    command.add_argument(
        "--api-base",
        help="the sandbox's API (default: PAYFLOW_API_BASE, PAYFLOW_PORT, its state file, "
        f"http://127.0.0.1:{locate.DEFAULT_API_PORT})",
    )
    if key:
        command.add_argument(
            "--api-key",
            default=os.environ.get("PAYFLOW_API_KEY")
            or os.environ.get("PAYFLOW_SECRET_KEY")
            or locate.DEMO_SECRET_KEY,
            help="a merchant's secret key (default: PAYFLOW_API_KEY, else the demo merchant's "
            f"{locate.DEMO_SECRET_KEY} the banner prints)",
        )


def _aws_options(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--aws-endpoint",
        help="the sandbox's AWS endpoint (default: PAYFLOW_AWS_PORT, AWS_ENDPOINT_URL, its "
        f"state file, http://127.0.0.1:{locate.DEFAULT_AWS_PORT})",
    )
    command.add_argument("--stack", default="payflow", help="stack name (default: payflow)")


def build_parser() -> argparse.ArgumentParser:
    """Every command and its options (`payflow COMMAND --help`)."""
    parser = argparse.ArgumentParser(
        prog="payflow",
        description="Developer commands for a running PayFlow sandbox (`make dev`).",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    listen_cmd = commands.add_parser(
        "listen",
        help="print (and forward) webhooks as they come, like `stripe listen`",
        description="Registers a temporary webhook endpoint, prints every event as it arrives "
        "with the result of both signature checks (stripe-python and standardwebhooks), "
        "optionally forwards it with its original headers, and deletes the endpoint on exit.",
    )
    _api_options(listen_cmd)
    listen_cmd.add_argument(
        "--events", default="*", help="comma-separated event types (default: every type)"
    )
    listen_cmd.add_argument("--forward-to", help="POST each event to this URL as well")
    listen_cmd.add_argument("--host", default="127.0.0.1", help="where to receive events")
    listen_cmd.add_argument("--port", type=int, default=0, help="0: any free port")

    redrive_cmd = commands.add_parser(
        "redrive-dlq",
        help="move dead-lettered webhooks back to the webhook queue",
        description="Moves messages from <stack>-webhooks-dlq back to <stack>-webhooks, where "
        "each delivery starts a fresh retry schedule.",
    )
    _aws_options(redrive_cmd)
    redrive_cmd.add_argument("--limit", type=int, default=1000, help="at most this many")

    check_cmd = commands.add_parser(
        "ledger-check",
        help="recompute balances from postings and report any drift",
        description="Recomputes every balance from the journal's postings; exit code 1 on an "
        "unbalanced entry or a drifted balance.",
    )
    _aws_options(check_cmd)
    check_cmd.add_argument("--merchant", help="only this merchant (default: every merchant)")

    env_cmd = commands.add_parser(
        "env",
        help="print `export` lines for the sandbox's AWS endpoint (aws CLI, chalice local)",
        description="Prints export lines: the embedded AWS endpoint, dummy credentials, a "
        "region, and the handlers' environment resolved from infra/environment.json. "
        'Use as: eval "$(payflow env)"',
    )
    _aws_options(env_cmd)
    env_cmd.add_argument(
        "--aws-only",
        action="store_true",
        help="only what the aws CLI needs (endpoint, credentials, region)",
    )

    local_cmd = commands.add_parser(
        "chalice-local",
        help="serve app.py with `chalice local` against the running sandbox's AWS",
        description="Runs `chalice local` (stage local, autoreload) with the environment the "
        "sandbox gives its handlers. Payment executions and webhooks run in the `make dev` "
        "process.",
    )
    _aws_options(local_cmd)
    local_cmd.add_argument("--host", default="127.0.0.1")
    local_cmd.add_argument("--port", type=int, default=8001, help="default: 8001")
    local_cmd.add_argument("--no-autoreload", action="store_true")

    from payflow import recon

    recon.add_parser(commands, _api_options)

    reset_cmd = commands.add_parser(
        "reset",
        help="delete the sandbox's saved state (stop the sandbox first)",
        description="Wipes the embedded AWS's data directory, so the next `make dev` starts "
        "empty. Refused while a sandbox holds the directory.",
    )
    reset_cmd.add_argument(
        "--data-dir",
        default=None,
        help="the directory to wipe (default: $PAYFLOW_DATA_DIR, else .payflow/ in the checkout)",
    )

    from payflow import backfill, seed, trigger

    trigger.add_command(commands, _api_options)
    seed.add_command(commands, _api_options)
    backfill.add_command(commands, _aws_options)
    return parser


def reset(data_dir: str | None) -> int:
    """`payflow reset`: wipe the embedded AWS's data directory; refused while a sandbox runs."""
    from payflow.sandbox.persistence import DEFAULT_DATA_DIR, DataDirError, wipe

    path = Path(data_dir or os.environ.get("PAYFLOW_DATA_DIR") or DEFAULT_DATA_DIR)
    try:
        deleted = wipe(path)
    except DataDirError as error:
        print(f"payflow: {error}", file=sys.stderr)
        return 1
    print(f"payflow: {path}: {len(deleted)} file(s) deleted, the next start begins empty")
    return 0


def run(args: argparse.Namespace) -> int:
    """Run the parsed command; CliError for what the user can fix."""
    if args.command == "reset":
        return reset(args.data_dir)
    found = locate.find(
        api_url=getattr(args, "api_base", None), aws_url=getattr(args, "aws_endpoint", None)
    )
    if args.command == "listen":
        stop = threading.Event()
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        return listen(
            api_base=locate.require_api(found),
            api_key=args.api_key,
            events=[e.strip() for e in args.events.split(",") if e.strip()],
            forward_to=args.forward_to,
            host=args.host,
            port=args.port,
            stop=stop,
        )
    if args.command == "recon":
        from payflow import recon

        return recon.run(args, locate.require_api(found))
    if args.command == "backfill-indexes":
        from payflow import backfill

        if args.aws:
            import boto3

            # The shell's own account and region (AWS_PROFILE, AWS_REGION...): a deployed stack.
            return backfill.run(args, boto3.client("dynamodb"))
        return backfill.run(args, locate.aws_client("dynamodb", locate.require_aws(found)))
    if args.command == "ledger-check":
        return ledger_check(locate.require_aws(found), args.stack, args.merchant)
    if args.command == "redrive-dlq":
        moved = redrive(locate.require_aws(found), args.stack, args.limit)
        print(f"moved {moved} message(s) from {args.stack}-webhooks-dlq to {args.stack}-webhooks")
        return 0
    if args.command in ("env", "chalice-local"):
        from payflow import chalice_local

        aws_url = locate.require_aws(found)
        if args.command == "env" and args.aws_only:
            environment = {**locate.DUMMY_AWS_ENVIRONMENT, "AWS_ENDPOINT_URL": aws_url}
        else:
            environment = chalice_local.local_environment(aws_url, args.stack)
        if args.command == "env":
            sys.stdout.write(chalice_local.export_lines(environment))
            return 0
        chalice_local.describe(environment, args.port)
        try:
            chalice_local.exec_chalice_local(
                environment, args.host, args.port, autoreload=not args.no_autoreload
            )
        except FileNotFoundError:
            raise CliError("chalice is not installed: run `make .venv/.installed-stamp`") from None
    from payflow import seed, trigger

    if args.command == "trigger":
        listing = args.list or not args.event
        return trigger.run(args, found.api_url if listing else locate.require_api(found))
    if args.command == "seed":
        return seed.run(args, locate.require_api(found))
    raise CliError(f"unknown command {args.command}")


def main(argv: Sequence[str] | None = None) -> int:
    """`payflow ...`: 0 on success; one line on stderr and a non-zero code otherwise."""
    args = build_parser().parse_args(argv)
    try:
        return run(args)
    except CliError as error:
        print(f"payflow: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("payflow: interrupted", file=sys.stderr)
        return 130
    except Exception as error:
        explained = locate.explain_aws_error(error)
        if explained is None:
            raise
        print(f"payflow: {explained}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
