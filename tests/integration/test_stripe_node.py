"""The official stripe-node client, unchanged, through a checkout-shaped scenario
(tests/node/scenario.mjs) against the sandbox, with the machine's Node.js.

The set-up installs stripe-node itself (`npm ci` from tests/node/package-lock.json into
tests/node/node_modules, once, when it is missing): nothing is installed by hand.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conformance.recorder import RECORDER
from tests.conftest import new_merchant

NODE_DIR = Path(__file__).resolve().parents[1] / "node"
PINNED = json.loads((NODE_DIR / "package.json").read_text())["dependencies"]["stripe"]


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"`{name}` is not on PATH: stripe-node runs with the machine's Node.js")
    return path


@pytest.fixture(scope="session")
def stripe_node() -> Path:
    """tests/node with its locked stripe-node installed."""
    installed = NODE_DIR / "node_modules" / "stripe" / "package.json"
    if not installed.exists() or json.loads(installed.read_text())["version"] != PINNED:
        subprocess.run(
            [_tool("npm"), "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=NODE_DIR,
            check=True,
            timeout=300,
        )
    return NODE_DIR


def test_stripe_node_checkout_scenario(stripe_node: Path, api_url: str) -> None:
    # Given a merchant of its own
    key = new_merchant(api_url)["secret_key"]

    # When stripe-node runs the scenario
    run = subprocess.run(
        [_tool("node"), "scenario.mjs"],
        cwd=stripe_node,
        env={**os.environ, "PAYFLOW_API_URL": api_url, "PAYFLOW_SECRET_KEY": key},
        capture_output=True,
        text=True,
        timeout=120,
    )

    # Then every step passed, in order
    lines: list[dict[str, Any]] = [json.loads(line) for line in run.stdout.splitlines() if line]
    steps = [line for line in lines if "step" in line]
    failed = [s for s in steps if not s["ok"]]
    assert run.returncode == 0 and not failed, (failed, run.stderr[-2000:])
    assert [s["step"] for s in steps] == [
        "registerWebhookEndpoint",
        "createAndConfirmWithPmCardVisa",
        "retrieve",
        "listWithAutoPagination",
        "partialCapture",
        "refund",
        "declinedCardIsStripeCardError",
        "webhookConstructEvent",
        "createCustomer",
        "saveCardWithSetupIntent",
        "offSessionPayment",
        "expandLatestCharge",
        "refundByCharge",
        "chargeRefundedWebhook",
        "deleteWebhookEndpoint",
    ]
    # and every object stripe-node received is checked against Stripe's schemas like the rest
    bodies = lines[-1]["bodies"]
    assert len(bodies) > 10
    for body in bodies:
        RECORDER.record(body, source="stripe-node")
