"""Durable state, end to end: `python -m payflow.sandbox` in a child process with a data
directory, killed with SIGKILL under load or stopped with SIGINT, then started again.

Each test starts its own sandbox processes (the session sandbox is ephemeral): a few seconds
each, so the load is small and the checks are the chaos run's invariants (payflow/chaos.py).
"""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from payflow.chaos import INVARIANTS, Client, FlakyReceiver, Observed, charges_of
from payflow.sandbox.child import ChildSandbox
from payflow.sandbox.persistence import RUNNING_FILE

SECRET_KEY = "sk_test_durable"
PAYMENTS = 20
LEASE_MS = 2000


@pytest.fixture
def sandboxes(tmp_path: Path) -> Iterator[list[ChildSandbox]]:
    """Sandbox processes a test starts on one data directory; any left running are killed."""
    started: list[ChildSandbox] = []
    yield started
    for sandbox in started:
        if sandbox.running():
            sandbox.kill()


def start(
    sandboxes: list[ChildSandbox], tmp_path: Path, retry_schedule: str = "0,0,1"
) -> ChildSandbox:
    sandbox = ChildSandbox(
        tmp_path / "data",
        tmp_path / "sandbox.log",
        {
            "PAYFLOW_SECRET_KEY": SECRET_KEY,
            "PAYFLOW_SANDBOX_TIME_SCALE": "0.01",
            "PAYFLOW_WEBHOOK_RETRY_SCHEDULE": retry_schedule,
            # A request the kill cut off holds its Idempotency-Key this long (60 s by
            # default): retries until then are answered 409, as Stripe answers while one is
            # in progress.
            "PAYFLOW_IDEMPOTENCY_LEASE_MS": str(LEASE_MS),
        },
    )
    sandboxes.append(sandbox)
    sandbox.start(timeout=90)
    return sandbox


def confirm(api_url: str, key: str) -> requests.Response:
    return requests.post(
        f"{api_url}/v1/payment_intents",
        auth=(SECRET_KEY, ""),
        headers={"Idempotency-Key": key},
        data={
            "amount": 1500,
            "currency": "usd",
            "payment_method": "pm_card_visa",
            "confirm": "true",
        },
        timeout=30,
    )


def settle(
    sandbox: ChildSandbox, client: Client, pi_ids: set[str], timeout: float = 30.0
) -> tuple[dict[str, dict[str, Any]], int]:
    """Every PaymentIntent once none is processing and every pending delivery waits only for
    its message in flight; returns them and how many messages are in flight.

    A message the killed sandbox had received comes back after the queue's visibility timeout
    (60 s), as on AWS when a Lambda dies mid-batch: the test does not wait for it, it checks
    that it is there.
    """
    sqs = sandbox.client("sqs")
    queue = sqs.get_queue_url(QueueName="payflow-webhooks")["QueueUrl"]
    counters = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesDelayed"]
    deadline = time.monotonic() + timeout
    while True:
        payments = {pi: client.get(f"/v1/payment_intents/{pi}") for pi in pi_ids}
        processing = [pi for pi, p in payments.items() if p["status"] == "processing"]
        pending = [
            d
            for endpoint in client.all("/v1/webhook_endpoints")
            for d in client.all(
                f"/v1/webhook_endpoints/{endpoint['id']}/deliveries", status="pending"
            )
        ]
        found = sqs.get_queue_attributes(
            QueueUrl=queue, AttributeNames=[*counters, "ApproximateNumberOfMessagesNotVisible"]
        )["Attributes"]
        waiting = sum(int(found[name]) for name in counters)
        in_flight = int(found["ApproximateNumberOfMessagesNotVisible"])
        # At most: a message the relay sent again after the kill leaves its older copy in
        # flight too (the delivery handler drops that copy when it comes back).
        if not processing and not waiting and len(pending) <= in_flight:
            return payments, in_flight
        if time.monotonic() > deadline:
            pytest.fail(
                f"not settled: processing {processing}, {len(pending)} pending deliveries, "
                f"{waiting} messages waiting, {in_flight} in flight"
            )
        time.sleep(0.2)


def observe(
    sandbox: ChildSandbox,
    client: Client,
    payments: dict[str, dict[str, Any]],
    receiver: FlakyReceiver,
    errors: list[str],
) -> Observed:
    """What payflow.chaos's invariants look at, read through the API and the AWS endpoint."""
    endpoints = list(client.all("/v1/webhook_endpoints"))
    deliveries = {
        (d["event"], d["webhook_endpoint"]): d
        for endpoint in endpoints
        for d in client.all(f"/v1/webhook_endpoints/{endpoint['id']}/deliveries")
    }
    events = [e for e in client.all("/v1/events") if e["data"]["object"].get("id") in payments]
    authorizations: dict[str, list[dict[str, Any]]] = defaultdict(list)
    captures: dict[str, list[dict[str, Any]]] = defaultdict(list)
    dynamodb = sandbox.client("dynamodb")
    for page in dynamodb.get_paginator("scan").paginate(TableName="payflow-psp-simulator"):
        for item in page["Items"]:
            record = {k: next(iter(v.values())) for k, v in item.items()}
            pi_id = record.get("payment_intent") or next(
                (p for p in str(record.get("pk", "")).split(":") if p.startswith("pi_")), None
            )
            if pi_id not in payments:
                continue
            if record.get("operation") == "authorize" and record.get("status") == "authorized":
                authorizations[pi_id].append(record)
            elif record.get("operation") == "capture":
                captures[pi_id].append(record)
    sqs = sandbox.client("sqs")
    dlq = sqs.get_queue_url(QueueName="payflow-webhooks-dlq")["QueueUrl"]
    dead = sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10, VisibilityTimeout=60)
    return Observed(
        payments=payments,
        intended={pi: "auto" for pi in payments},
        authorizations=dict(authorizations),
        captures=dict(captures),
        events=events,
        endpoints=endpoints,
        deliveries=deliveries,
        dead_lettered={json.loads(m["Body"]).get("delivery") for m in dead.get("Messages", [])},
        hits=list(receiver.hits),
        errors=errors,
        charges=charges_of(client, payments),
    )


def violations(seen: Observed) -> dict[str, list[str]]:
    found = {name: check(seen) for name, check in INVARIANTS}
    return {name: lines for name, lines in found.items() if lines}


def subscribe(client: Client, receiver: FlakyReceiver) -> None:
    endpoint = client.post(
        "/v1/webhook_endpoints",
        {"url": receiver.url("all"), "enabled_events[]": ["*"], "metadata[chaos]": "all"},
    ).json()
    receiver.secrets["all"] = endpoint["secret"]


def test_kill_9_under_load_then_retries_answer_the_same_and_nothing_is_charged_twice(
    sandboxes: list[ChildSandbox], tmp_path: Path
) -> None:
    # Given a durable sandbox with a webhook endpoint subscribed to everything
    sandbox = start(sandboxes, tmp_path)
    with FlakyReceiver(failure_rate=0.0, seed=12) as receiver:
        subscribe(Client(sandbox.api_url, SECRET_KEY), receiver)

        # When 20 confirms with Idempotency-Keys run from threads and the sandbox is killed
        # with SIGKILL once a few have been answered
        answered: dict[str, dict[str, Any]] = {}
        lock = threading.Lock()
        keys = [f"durable-{i}" for i in range(PAYMENTS)]

        def one(key: str) -> None:
            try:
                response = confirm(sandbox.api_url, key)
            except requests.RequestException:
                return
            if response.status_code == 200:
                with lock:
                    answered[key] = response.json()

        threads = [threading.Thread(target=one, args=(key,)) for key in keys]
        for thread in threads:
            thread.start()
            time.sleep(0.05)
        deadline = time.monotonic() + 20
        while len(answered) < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
        sandbox.kill()
        for thread in threads:
            thread.join(30)
        assert 3 <= len(answered) < PAYMENTS, f"the kill came too late: {len(answered)} answered"

        # Then a restart serves every acknowledged PaymentIntent again
        restarted = start(sandboxes, tmp_path)
        client = Client(restarted.api_url, SECRET_KEY, give_up_after=30)
        for before in answered.values():
            assert client.get(f"/v1/payment_intents/{before['id']}")["id"] == before["id"]

        # And every request retried with its key answers one PaymentIntent (the same one
        # where an answer had come), never a 404 or a second payment
        errors: list[str] = []
        retried: dict[str, dict[str, Any]] = {}
        for key in keys:
            response = client.post("/v1/payment_intents", _confirm_form(), key=key)
            if response.status_code != 200:
                errors.append(f"{key}: {response.status_code} {response.text[:200]}")
                continue
            retried[key] = response.json()
            if key in answered and retried[key]["id"] != answered[key]["id"]:
                errors.append(f"{key}: {answered[key]['id']} became {retried[key]['id']}")
        assert not errors, errors
        assert len({pi["id"] for pi in retried.values()}) == PAYMENTS

        # And once settled, the chaos invariants hold: charged at most once, legal states
        # matching the PSP's book, every event delivered, duplicates droppable
        payments, in_flight = settle(restarted, client, {pi["id"] for pi in retried.values()})
        seen = observe(restarted, client, payments, receiver, errors)
        assert seen.events, "no event seen"
        found = violations(seen)
        delivered = "every event delivered to every subscribed endpoint, or failed into the DLQ"
        # Only deliveries whose message is in flight may still be pending (see settle).
        undelivered = found.pop(delivered, [])
        still_pending = [v for v in undelivered if ": still pending," in v]
        assert found == {}
        assert sorted(set(undelivered) - set(still_pending)) == []
        assert len(still_pending) <= in_flight
        assert restarted.stop() == 0


def _confirm_form() -> dict[str, Any]:
    return {"amount": 1500, "currency": "usd", "payment_method": "pm_card_visa", "confirm": "true"}


def test_a_graceful_stop_keeps_payments_events_queued_webhooks_and_executions(
    sandboxes: list[ChildSandbox], tmp_path: Path
) -> None:
    # Given a durable sandbox whose webhook receiver fails every delivery (the next attempt
    # a minute later), with payments made and every delivery tried once
    sandbox = start(sandboxes, tmp_path, retry_schedule="0,60")
    with FlakyReceiver(failure_rate=1.0, seed=1) as receiver:
        client = Client(sandbox.api_url, SECRET_KEY)
        subscribe(client, receiver)
        pis = [client.post("/v1/payment_intents", _confirm_form()).json() for _ in range(3)]
        assert {pi["status"] for pi in pis} == {"succeeded"}
        events = sorted(e["id"] for e in client.all("/v1/events"))
        deadline = time.monotonic() + 20
        while len({hit.event_id for hit in receiver.hits}) < len(events):
            assert time.monotonic() < deadline, "not every delivery was tried"
            time.sleep(0.1)
        before = _state(sandbox)
        assert before["queued"]["payflow-webhooks"]["ApproximateNumberOfMessagesNotVisible"] == (
            len(events)
        )

        # When it is stopped with Ctrl-C and started again
        assert sandbox.stop() == 0
        assert not (tmp_path / "data" / RUNNING_FILE).exists()
        restarted = start(sandboxes, tmp_path, retry_schedule="0,60")
        client = Client(restarted.api_url, SECRET_KEY)

        # Then the payments, their events, the webhooks waiting for their next attempt, the
        # finished executions are all there, and provisioning created nothing twice
        for pi in pis:
            assert client.get(f"/v1/payment_intents/{pi['id']}")["status"] == "succeeded"
        assert sorted(e["id"] for e in client.all("/v1/events")) == events
        assert _state(restarted) == before
        assert restarted.stop() == 0


def _state(sandbox: ChildSandbox) -> dict[str, Any]:
    """Resources, queue depths and executions, as the AWS APIs list them."""
    sqs = sandbox.client("sqs")
    counters = [
        "ApproximateNumberOfMessages",
        "ApproximateNumberOfMessagesNotVisible",
        "ApproximateNumberOfMessagesDelayed",
    ]
    queued = {}
    for url in sqs.list_queues().get("QueueUrls", []):
        found = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=counters)["Attributes"]
        queued[url.rsplit("/", 1)[-1]] = {name: int(found[name]) for name in counters}
    return {
        "tables": sandbox.client("dynamodb").list_tables()["TableNames"],
        "queued": queued,
        "executions": _executions(sandbox),
    }


def _executions(sandbox: ChildSandbox) -> dict[str, str]:
    sfn = sandbox.client("stepfunctions")
    found = {}
    for machine in sfn.list_state_machines()["stateMachines"]:
        for execution in sfn.list_executions(stateMachineArn=machine["stateMachineArn"])[
            "executions"
        ]:
            found[execution["executionArn"]] = execution["status"]
    return found
