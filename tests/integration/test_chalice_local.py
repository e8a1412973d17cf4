"""`chalice local` beside the sandbox (what `make chalice-local` runs): the same app, served by
Chalice's dev server against the sandbox's AWS; the payment's execution and its webhooks run in
the sandbox (its Lambda invoke endpoint and pollers)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from payflow.chalice_local import chalice_command, local_environment
from tests.conftest import ADMIN_KEY, ROOT, new_merchant
from tests.integration.test_cli import _clean_environment, _free_port
from tests.integration.webhook_receiver import receiving


@pytest.fixture(scope="module")
def chalice_local(sandbox: Any) -> Iterator[str]:
    """`chalice local` on a free port, its environment derived from the running sandbox."""
    port = _free_port()
    environment = local_environment(sandbox.aws_url, sandbox.config.stack_name)
    environment["PAYFLOW_ADMIN_KEY"] = ADMIN_KEY
    process = subprocess.Popen(
        chalice_command("127.0.0.1", port, autoreload=False),
        env=_clean_environment(**environment),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                output = process.stdout.read().decode() if process.stdout else ""
                pytest.fail(f"chalice local did not start (exit {process.poll()}):\n{output}")
            time.sleep(0.2)
        yield url
    finally:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)
        if process.stdout is not None:
            process.stdout.close()


def test_a_payment_confirmed_through_chalice_local_runs_its_execution_and_webhooks(
    chalice_local: str, api_url: str
):
    # Given a merchant and an endpoint, both made through chalice local
    merchant = new_merchant(chalice_local)
    session = requests.Session()
    session.auth = (merchant["secret_key"], "")
    with receiving() as receiver:
        endpoint = session.post(
            f"{chalice_local}/v1/webhook_endpoints",
            data={"url": receiver.url, "enabled_events[]": "payment_intent.succeeded"},
            timeout=30,
        )
        assert endpoint.status_code == 200, endpoint.text

        # When a payment is created and confirmed through chalice local
        created = session.post(
            f"{chalice_local}/v1/payment_intents",
            data={"amount": 2000, "currency": "usd", "payment_method": "pm_card_visa"},
            timeout=30,
        )
        assert created.status_code == 200, created.text
        confirmed = session.post(
            f"{chalice_local}/v1/payment_intents/{created.json()['id']}/confirm", timeout=30
        )

        # Then the sandbox's execution charged it and its webhook arrives, signed
        assert confirmed.status_code == 200, confirmed.text
        assert confirmed.json()["status"] == "succeeded"
        (delivered,) = receiver.wait_for(lambda rs: len(rs) >= 1, timeout=20)
        assert delivered.event["data"]["object"]["id"] == created.json()["id"]
        assert delivered.headers["stripe-signature"].startswith("t=")

    # and the sandbox's own API sees the same object: one store behind both servers
    same = requests.get(
        f"{api_url}/v1/payment_intents/{created.json()['id']}",
        auth=(merchant["secret_key"], ""),
        timeout=10,
    )
    assert same.json()["status"] == "succeeded"
    attempts = session.get(
        f"{chalice_local}/v1/payment_intents/{created.json()['id']}/attempts", timeout=10
    ).json()
    assert [a["outcome"] for a in attempts["data"]] == ["authorized"]
