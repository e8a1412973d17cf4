"""The `payflow` commands against the session's sandbox: one-line errors when it cannot be
reached, `payflow trigger` for every event PayFlow emits, `payflow seed` at a small size, and
the sandbox clock hook the seed uses."""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import requests

from payflow.api_client import ApiClient
from payflow.cli import ledger_check, main
from payflow.seed import seed
from payflow.trigger import TRIGGERS, trigger
from tests.conftest import ADMIN_KEY, ROOT, Api

DAY = 86_400


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _clean_environment(**extra: str) -> dict[str, str]:
    """The shell of a user with no sandbox settings (nothing of this test process's)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PAYFLOW_", "AWS_", "MOTO_", "STRIPE_"))
    }
    return {**env, **extra}


def _payflow(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "payflow.cli", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    "command",
    [
        ["ledger-check"],
        ["redrive-dlq"],
        ["env"],
        ["listen"],
        ["trigger", "payment_intent.succeeded"],
        ["seed", "--payments", "5"],
        ["recon", "run", "--date", "2026-01-01"],
    ],
)
def test_a_command_without_a_sandbox_says_so_in_one_line(command: list[str], tmp_path: Path):
    # Given ports where nothing listens
    env = _clean_environment(
        PAYFLOW_PORT=str(_free_port()),
        PAYFLOW_AWS_PORT=str(_free_port()),
        PAYFLOW_DATA_DIR=str(tmp_path),
    )

    # When
    result = _payflow(*command, env=env)

    # Then
    assert result.returncode == 1, result
    assert "Traceback" not in result.stderr
    (line,) = result.stderr.splitlines()
    assert line.startswith("payflow: no sandbox") and "make dev" in line, line


@pytest.mark.parametrize(
    "command", [[], ["listen"], ["trigger"], ["seed"], ["chalice-local"], ["recon", "run"]]
)
def test_every_command_has_help(command: list[str]):
    result = _payflow(*command, "--help", env=_clean_environment())
    assert result.returncode == 0 and "usage: payflow" in result.stdout, result.stderr


def test_the_sandbox_state_file_points_the_commands_at_the_sandbox(
    sandbox: Any, merchant: dict, tmp_path: Path
):
    # Given no port in the environment, only the state file a sandbox leaves in its data dir
    (tmp_path / "sandbox.json").write_text(
        json.dumps({"api_url": sandbox.api_url, "aws_url": sandbox.aws_url})
    )
    env = _clean_environment(PAYFLOW_DATA_DIR=str(tmp_path), PAYFLOW_API_KEY=merchant["secret_key"])

    # When
    triggered = _payflow("trigger", "payment_intent.created", env=env)
    checked = _payflow("ledger-check", "--merchant", merchant["id"], env=env)

    # Then
    assert triggered.returncode == 0, triggered.stderr
    assert "Trigger succeeded: payment_intent.created" in triggered.stdout
    assert checked.returncode == 0 and "0 balances drifted" in checked.stdout, checked.stderr


def test_env_prints_what_the_aws_cli_and_chalice_local_need(sandbox: Any, capsys):
    # When
    code = main(["env", "--aws-endpoint", sandbox.aws_url])

    # Then
    out = capsys.readouterr().out.splitlines()
    lines = dict(x.removeprefix("export ").split("=", 1) for x in out if x.startswith("export "))
    assert code == 0
    assert lines["AWS_ENDPOINT_URL"] == sandbox.aws_url
    assert lines["AWS_DEFAULT_REGION"] == "us-east-1" and lines["AWS_ACCESS_KEY_ID"]
    assert lines["PAYFLOW_PAYMENTS_TABLE"] == sandbox.provisioned.physical_ids["PaymentsTable"]
    assert lines["PAYFLOW_WEBHOOK_QUEUE_URL"] == sandbox.provisioned.physical_ids["WebhookQueue"]
    assert (
        lines["PAYFLOW_PAYMENT_STATE_MACHINE_ARN"]
        == sandbox.provisioned.physical_ids["PaymentStateMachine"]
    )


@pytest.mark.parametrize("event", sorted(TRIGGERS))
def test_trigger_makes_the_event_through_the_api(event: str, api_url: str, merchant: dict):
    # Given
    client = ApiClient(api_url, merchant["secret_key"])
    out = io.StringIO()

    # When
    made = trigger(client, event, out=out, timeout=20)

    # Then the event is in the merchant's event list, about an object the trigger made
    ids = {obj["id"] for obj in made} | {obj.get("latest_charge") for obj in made}
    events = client.get("/v1/events", {"type": event, "limit": 100})["data"]
    assert any(e["data"]["object"]["id"] in ids for e in events), out.getvalue()
    assert f"Trigger succeeded: {event}" in out.getvalue()


def test_seed_writes_a_history_over_thirty_days_through_the_api(sandbox: Any, api_url: str):
    # When
    out = io.StringIO()
    report = seed(api_url, ADMIN_KEY, payments=20, merchants=2, concurrency=4, rng_seed=5, out=out)

    # Then: every payment exists, with created times over the past 30 days
    now = time.time()
    assert "seed: 20/20 payments" in out.getvalue()
    intents: list[dict[str, Any]] = []
    for merchant in report.merchants:
        listed = Api(api_url, merchant["secret_key"]).get("/v1/payment_intents?limit=100").json()
        intents += listed["data"]
        # and the ledger holds together: postings match balances
        assert ledger_check(sandbox.aws_url, sandbox.config.stack_name, merchant["id"]) == 0
    assert len(intents) == 20
    created = [pi["created"] for pi in intents]
    assert all(now - 31 * DAY <= c <= now for c in created)
    assert max(created) - min(created) > 7 * DAY
    statuses = Counter(pi["status"] for pi in intents)
    assert statuses["succeeded"] > 0 and len(statuses) > 1
    # events carry the history's time, not the seeding's
    first = Api(api_url, report.merchants[0]["secret_key"])
    events = first.get("/v1/events?limit=100").json()["data"]
    assert events and min(e["created"] for e in events) < now - DAY
    # and the clock is back to real time
    fresh = first.post("/v1/payment_intents", {"amount": 100, "currency": "usd"}).json()
    assert abs(fresh["created"] - now) < 60


def test_the_sandbox_clock_needs_the_admin_key_and_one_of_now_or_reset(
    api_url: str, merchant: dict
):
    admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
    url = f"{api_url}/v1/sandbox/clock"
    as_merchant = requests.post(url, data={"reset": "true"}, auth=(merchant["secret_key"], ""))
    assert as_merchant.status_code == 403
    for body in ({}, {"now": "1790000000", "reset": "true"}):
        answer = requests.post(url, data=body, headers=admin, timeout=10)
        assert answer.status_code == 400 and answer.json()["error"]["param"] == "now"
    assert requests.post(url, data={"now": "12"}, headers=admin, timeout=10).status_code == 400
    try:
        moved = requests.post(url, data={"now": "1790000000"}, headers=admin, timeout=10).json()
        assert abs(moved["now"] - 1_790_000_000) < 5 and moved["object"] == "sandbox_clock"
        pi = Api(api_url, merchant["secret_key"]).post(
            "/v1/payment_intents", {"amount": 100, "currency": "usd"}
        )
        assert abs(pi.json()["created"] - 1_790_000_000) < 60
    finally:
        reset = requests.post(url, data={"reset": "true"}, headers=admin, timeout=10).json()
    assert reset["offset"] == 0
