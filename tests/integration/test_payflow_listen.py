"""`payflow listen`: a temporary endpoint that prints, checks and forwards events."""

from __future__ import annotations

import io
import re
import threading

from payflow.cli import listen
from tests.conftest import Api
from tests.integration.conftest import Hooks
from tests.integration.test_webhooks import create_payment, verify_both
from tests.integration.webhook_receiver import eventually


def test_listen_prints_verifies_forwards_and_cleans_up(
    api: Api, hooks: Hooks, merchant: dict, api_url: str
):
    # Given `payflow listen --forward-to <local app>` running
    app = hooks.receiver()
    out = io.StringIO()
    stop = threading.Event()
    runner = threading.Thread(
        target=listen,
        kwargs={
            "api_base": api_url,
            "api_key": merchant["secret_key"],
            "forward_to": app.url,
            "out": out,
            "stop": stop,
        },
    )
    runner.start()
    try:
        ready = eventually(lambda: _match(r"signing secret is (whsec_\S+)", out.getvalue()))
        secret = ready.group(1)
        (endpoint,) = api.get("/v1/webhook_endpoints").json()["data"]
        assert endpoint["description"] == "payflow listen (temporary)"

        # When a payment happens
        pi = create_payment(api)

        # Then the event is printed with its signature check and forwarded, still verifiable
        forwarded = app.wait_for(lambda rs: len(rs) >= 1)[0]
        assert verify_both(forwarded, secret)["data"]["object"]["id"] == pi["id"]
        printed = eventually(
            lambda: _match(r"--> payment_intent.created \[(evt_\w+)\] (.*)", out.getvalue())
        )
        assert printed.group(1) == forwarded.event["id"]
        assert printed.group(2).startswith("signature ok (stripe, standard-webhooks)")
        eventually(lambda: _match(rf"<--  \[200\] POST {re.escape(app.url)}", out.getvalue()))
    finally:
        stop.set()
        runner.join(10)

    # and on exit the temporary endpoint is gone
    assert not runner.is_alive()
    assert "Deleted the temporary endpoint" in out.getvalue()
    assert api.get("/v1/webhook_endpoints").json()["data"] == []


def _match(pattern: str, text: str) -> re.Match[str]:
    match = re.search(pattern, text)
    assert match, text
    return match
