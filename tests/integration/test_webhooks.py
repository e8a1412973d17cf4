"""Signed webhook delivery through the real path: API -> DynamoDB -> stream -> relay -> SQS ->
delivery handler -> a receiver on 127.0.0.1, in the session's embedded sandbox.

The sandbox runs with PAYFLOW_WEBHOOK_RETRY_SCHEDULE=0,0,1 (tests/conftest.py): three attempts,
the third one second after the second.
"""

from __future__ import annotations

import json
import time
from typing import Any

import stripe
from standardwebhooks.webhooks import Webhook

from chalicelib.container import services
from chalicelib.dal.objects import ObjectStore
from chalicelib.dal.webhooks import WebhookStore
from tests.conftest import Api
from tests.integration.conftest import Hooks, wait_until_drained
from tests.integration.webhook_receiver import Received, eventually


def create_payment(api: Api, **params: Any) -> dict[str, Any]:
    response = api.post("/v1/payment_intents", {"amount": 2000, "currency": "usd", **params})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def events_of(api: Api, pi_id: str, event_type: str) -> dict[str, Any]:
    events = api.get("/v1/events", params={"type": event_type, "limit": 100}).json()["data"]
    matching = [e for e in events if e["data"]["object"]["id"] == pi_id]
    assert len(matching) == 1, events
    return matching[0]


def deliveries_of(api: Api, event_id: str) -> list[dict[str, Any]]:
    response = api.get(f"/v1/events/{event_id}/deliveries")
    assert response.status_code == 200, response.text
    data: list[dict[str, Any]] = response.json()["data"]
    return data


def the_delivery(api: Api, event_id: str, status: str) -> dict[str, Any]:
    """The event's single delivery once it has `status` (waits for it)."""

    def check() -> dict[str, Any]:
        deliveries = deliveries_of(api, event_id)
        assert len(deliveries) == 1, deliveries
        delivery = deliveries[0]
        assert delivery["status"] == status, delivery
        return delivery

    result: dict[str, Any] = eventually(check)
    return result


def verify_both(request: Received, secret: str) -> dict[str, Any]:
    """The event, after stripe-python's and standardwebhooks' own checks accepted it."""
    body = request.body.decode()
    event = stripe.Webhook.construct_event(body, request.headers["stripe-signature"], secret)
    verified: dict[str, Any] = Webhook(secret).verify(request.body, request.headers)
    assert verified == json.loads(body) and event["id"] == verified["id"]
    return verified


def test_every_event_arrives_signed_for_stripe_and_standard_webhooks(api: Api, hooks: Hooks):
    # Given a receiver subscribed to everything
    receiver = hooks.receiver()
    endpoint = hooks.endpoint(receiver)

    # When a payment is created and confirmed
    pi = create_payment(api, payment_method="pm_card_visa", confirm="true")

    # Then each of its events arrives once, accepted by both libraries (deliveries are
    # unordered: wait for both, not for the last one sent)
    expected = {"payment_intent.created", "payment_intent.succeeded"}
    requests = receiver.wait_for(lambda rs: expected <= {r.event["type"] for r in rs})
    for request in requests:
        event = verify_both(request, endpoint["secret"])
        assert event["object"] == "event" and event["livemode"] is False
        assert event["id"].startswith("evt_") and event["api_version"]
        obj = event["data"]["object"]
        assert pi["id"] in (obj["id"], obj.get("payment_intent")), obj
        if event["type"] == "payment_intent.created":
            assert event["request"]["id"].startswith("req_")
        assert request.headers["content-type"].startswith("application/json")
        (delivery,) = deliveries_of(api, event["id"])
        assert request.webhook_id == delivery["id"]
        assert delivery["webhook_endpoint"] == endpoint["id"]
    assert len({r.webhook_id for r in requests}) == len(requests)
    succeeded = receiver.of_type("payment_intent.succeeded")[0].event
    assert succeeded["data"]["object"]["status"] == "succeeded"
    assert succeeded["data"]["previous_attributes"]["status"] != "succeeded"
    # and pending_webhooks counts down to 0 once delivered
    event_id = succeeded["id"]
    eventually(lambda: _assert_pending(api, event_id, 0))


def _assert_pending(api: Api, event_id: str, expected: int) -> None:
    event = api.get(f"/v1/events/{event_id}").json()
    assert event["pending_webhooks"] == expected, event


def test_enabled_events_decide_what_each_endpoint_receives(api: Api, hooks: Hooks, sandbox):
    # Given one endpoint for succeeded payments only and one for everything
    only_succeeded, everything = hooks.receiver(), hooks.receiver()
    hooks.endpoint(only_succeeded, ["payment_intent.succeeded"])
    hooks.endpoint(everything, ["*"])

    # When
    pi = create_payment(api, payment_method="pm_card_visa", confirm="true")
    canceled = create_payment(api)
    api.post(f"/v1/payment_intents/{canceled['id']}/cancel")

    # Then
    everything.wait_for(
        lambda rs: (
            {"payment_intent.succeeded", "payment_intent.canceled"} <= {r.event["type"] for r in rs}
        )
    )
    got = only_succeeded.wait_for(lambda rs: len(rs) >= 1)
    wait_until_drained(sandbox)  # anything wrongly queued has arrived by now
    assert [r.event["type"] for r in only_succeeded.requests] == ["payment_intent.succeeded"]
    assert got[0].event["data"]["object"]["id"] == pi["id"]
    created = events_of(api, pi["id"], "payment_intent.created")
    assert len(deliveries_of(api, created["id"])) == 1  # only the catch-all endpoint's


def test_a_failed_attempt_is_retried_and_every_attempt_is_logged(api: Api, hooks: Hooks):
    # Given a receiver that fails once with 500, then accepts
    receiver = hooks.receiver([500])
    endpoint = hooks.endpoint(receiver, ["payment_intent.created"])

    # When
    pi = create_payment(api)

    # Then the same delivery (same webhook-id) came twice, and the log shows both attempts
    first, second = receiver.wait_for(lambda rs: len(rs) >= 2)
    assert first.webhook_id == second.webhook_id
    event = events_of(api, pi["id"], "payment_intent.created")
    delivery = the_delivery(api, event["id"], "succeeded")
    assert delivery["attempt_count"] == 2 and delivery["id"] == first.webhook_id
    failed, succeeded = delivery["attempts"]
    assert (failed["attempt"], failed["status_code"], failed["trigger"]) == (1, 500, "scheduled")
    assert (succeeded["attempt"], succeeded["status_code"]) == (2, 200)
    for attempt in (failed, succeeded):
        assert attempt["latency_ms"] >= 0 and attempt["created"] >= pi["created"]
        assert attempt["url"] == endpoint["url"] and attempt["error"] is None
        assert attempt["response"].startswith('{"status": ') and len(attempt["response"]) == 1024
    assert delivery["next_attempt_at"] is None
    # The endpoint's delivery list shows it too
    listed = api.get(f"/v1/webhook_endpoints/{endpoint['id']}/deliveries").json()
    assert [d["id"] for d in listed["data"]] == [delivery["id"]]
    assert api.get(f"/v1/events/{event['id']}").json()["pending_webhooks"] == 0


def test_a_refused_connection_is_logged_as_an_error(api: Api, hooks: Hooks):
    # Given an endpoint whose server is gone
    receiver = hooks.receiver()
    hooks.endpoint(receiver, ["payment_intent.created"])
    receiver.stop()

    # When
    pi = create_payment(api)

    # Then every scheduled attempt failed with the connection error in the log
    event = events_of(api, pi["id"], "payment_intent.created")
    delivery = the_delivery(api, event["id"], "failed")
    assert delivery["attempt_count"] == 3
    assert all(a["status_code"] is None and a["error"] for a in delivery["attempts"])


def test_every_attempt_failing_ends_in_the_dead_letter_queue(api: Api, hooks: Hooks, sandbox):
    # Given a receiver that always answers 500
    receiver = hooks.receiver(default=500)
    hooks.endpoint(receiver, ["payment_intent.created"])

    # When
    pi = create_payment(api)

    # Then three attempts, the third one second after the second (the visibility timeout)
    _, second, third = receiver.wait_for(lambda rs: len(rs) >= 3)
    assert third.at - second.at >= 0.9
    event = events_of(api, pi["id"], "payment_intent.created")
    delivery = the_delivery(api, event["id"], "failed")
    assert delivery["attempt_count"] == 3 and delivery["next_attempt_at"] is None
    assert [a["status_code"] for a in delivery["attempts"]] == [500, 500, 500]
    assert api.get(f"/v1/events/{event['id']}").json()["pending_webhooks"] == 1
    # and the queue's redrive policy moved the message to the dead-letter queue
    assert eventually(lambda: _dead_lettered(sandbox, delivery["id"]))
    # In the dead-letter queue, and logged as failed after its third attempt: no fourth comes.
    assert receiver.count() == 3

    # When the receiver is fixed and the dead-letter queue redriven (what `payflow redrive-dlq`
    # runs)
    from payflow.cli import redrive

    receiver.default = 200
    moved = redrive(sandbox.aws_url, sandbox.config.stack_name, 1000)

    # Then the delivery succeeds on a fresh schedule
    assert moved >= 1
    fourth = receiver.wait_for(lambda rs: len(rs) >= 4)[3]
    assert fourth.webhook_id == delivery["id"]
    redriven = the_delivery(api, event["id"], "succeeded")
    assert redriven["attempt_count"] == 4
    assert api.get(f"/v1/events/{event['id']}").json()["pending_webhooks"] == 0


def _dead_lettered(sandbox: Any, delivery_id: str) -> bool:
    sqs = sandbox.aws.client("sqs")
    dlq = services().settings  # the handlers' settings name the dead-letter queue
    # The session's other tests leave messages there too, more than one receive returns: read
    # them all (each hidden while reading, so none comes twice), then show them again.
    messages: list[dict[str, Any]] = []
    while batch := sqs.receive_message(
        QueueUrl=dlq.webhook_dlq_url, MaxNumberOfMessages=10, VisibilityTimeout=30
    ).get("Messages", []):
        messages.extend(batch)
    for i in range(0, len(messages), 10):
        sqs.change_message_visibility_batch(
            QueueUrl=dlq.webhook_dlq_url,
            Entries=[
                {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0}
                for n, m in enumerate(messages[i : i + 10])
            ],
        )
    found = [json.loads(m["Body"]).get("delivery") for m in messages]
    assert delivery_id in found, found
    return True


def test_gone_disables_the_endpoint_and_an_event_says_so(api: Api, hooks: Hooks):
    # Given an endpoint answering 410 Gone, and a second one watching for disabled endpoints
    gone, watcher = hooks.receiver(default=410), hooks.receiver()
    endpoint = hooks.endpoint(gone, ["payment_intent.created"])
    watch = hooks.endpoint(watcher, ["webhook_endpoint.disabled", "payment_intent.canceled"])

    # When
    pi = create_payment(api)

    # Then the endpoint is disabled after one attempt, and the watcher is told
    notice = watcher.wait_for(lambda rs: len(rs) >= 1)[0]
    event = verify_both(notice, watch["secret"])
    assert event["type"] == "webhook_endpoint.disabled"
    assert event["data"]["object"]["id"] == endpoint["id"]
    assert event["data"]["object"]["status"] == "disabled"
    assert "secret" not in event["data"]["object"]
    assert event["data"]["previous_attributes"]["status"] == "enabled"
    current = api.get(f"/v1/webhook_endpoints/{endpoint['id']}").json()
    assert current["status"] == "disabled" and "disabled_reason" not in current
    health = api.get(f"/v1/webhook_endpoints/{endpoint['id']}/health").json()
    assert health["status"] == "disabled" and "410" in health["disabled_reason"]
    created = events_of(api, pi["id"], "payment_intent.created")
    assert the_delivery(api, created["id"], "failed")["attempt_count"] == 1
    # and receives nothing more
    api.post(f"/v1/payment_intents/{pi['id']}/cancel")
    watcher.wait_for(lambda rs: any(r.event["type"] == "payment_intent.canceled" for r in rs))
    assert gone.count() == 1


def test_an_endpoint_failing_for_too_long_is_disabled(api: Api, hooks: Hooks, merchant: dict):
    # Given an endpoint that has been failing for six days (the limit is five)
    failing, watcher = hooks.receiver(default=503), hooks.receiver()
    endpoint = hooks.endpoint(failing, ["payment_intent.created"])
    hooks.endpoint(watcher, ["webhook_endpoint.disabled"])
    store = WebhookStore(
        services().dynamodb,
        services().settings.payments_table,
        ObjectStore(services().dynamodb, services().settings.payments_table),
    )
    stored = store.endpoint(merchant["id"], endpoint["id"])
    assert stored is not None
    six_days_ago = int(time.time()) - 6 * 86_400
    store.save_endpoint(
        stored.model_copy(update={"failing_since": six_days_ago, "version": stored.version + 1}),
        stored.version,
    )

    # When its next attempt fails
    pi = create_payment(api)

    # Then it is disabled at once, with an event, and not retried
    notice = watcher.wait_for(lambda rs: len(rs) >= 1)[0].event
    assert notice["type"] == "webhook_endpoint.disabled"
    assert notice["data"]["object"]["id"] == endpoint["id"]
    health = api.get(f"/v1/webhook_endpoints/{endpoint['id']}/health").json()
    assert str(six_days_ago) in health["disabled_reason"]
    created = events_of(api, pi["id"], "payment_intent.created")
    assert the_delivery(api, created["id"], "failed")["attempt_count"] == 1
    assert failing.count() == 1
    # Re-enabling it starts afresh
    enabled = api.post(f"/v1/webhook_endpoints/{endpoint['id']}", {"disabled": "false"}).json()
    assert enabled["status"] == "enabled"
    health = api.get(f"/v1/webhook_endpoints/{endpoint['id']}/health").json()
    assert health == {
        "object": "webhook_endpoint_health",
        "webhook_endpoint": endpoint["id"],
        "status": "enabled",
        "disabled_reason": None,
        "failing_since": None,
    }


def test_manual_retry_and_resend_of_failed_deliveries(api: Api, hooks: Hooks, api_url: str):
    # Given two deliveries that failed every scheduled attempt
    receiver = hooks.receiver(default=500)
    endpoint = hooks.endpoint(receiver, ["payment_intent.created", "payment_intent.canceled"])
    pi = create_payment(api)
    api.post(f"/v1/payment_intents/{pi['id']}/cancel")
    created = events_of(api, pi["id"], "payment_intent.created")
    canceled = events_of(api, pi["id"], "payment_intent.canceled")
    created_delivery = the_delivery(api, created["id"], "failed")
    the_delivery(api, canceled["id"], "failed")
    failed = api.get(
        f"/v1/webhook_endpoints/{endpoint['id']}/deliveries", params={"status": "failed"}
    ).json()["data"]
    assert len(failed) == 2
    receiver.default = 200
    before = receiver.count()

    # When one is retried by hand
    retried = api.post(f"/v1/webhook_deliveries/{created_delivery['id']}/retry")

    # Then it is attempted once more, now
    assert retried.status_code == 200, retried.text
    receiver.wait_for(lambda rs: len(rs) >= before + 1)
    delivery = the_delivery(api, created["id"], "succeeded")
    assert delivery["attempt_count"] == 4
    assert delivery["attempts"][-1]["trigger"] == "manual"
    fetched = api.get(f"/v1/webhook_deliveries/{created_delivery['id']}").json()
    assert fetched["status"] == "succeeded"

    # When every failed delivery since the payment's creation is resent
    resent = api.post(
        f"/v1/webhook_endpoints/{endpoint['id']}/resend", {"since": created["created"]}
    )

    # Then only the one still failed goes again, and succeeds
    assert resent.status_code == 200, resent.text
    assert resent.json()["resent"] == 1
    receiver.wait_for(lambda rs: len(rs) >= before + 2)
    assert the_delivery(api, canceled["id"], "succeeded")["attempt_count"] == 4
    for event in (created, canceled):
        assert api.get(f"/v1/events/{event['id']}").json()["pending_webhooks"] == 0
    # Another merchant's deliveries do not exist for this one
    from tests.conftest import new_merchant

    stranger = Api(api_url, new_merchant(api_url)["secret_key"])
    assert (
        stranger.post(f"/v1/webhook_deliveries/{created_delivery['id']}/retry").status_code == 404
    )
    assert stranger.get(f"/v1/events/{created['id']}/deliveries").status_code == 404


def test_a_rolled_secret_signs_alongside_the_old_one_until_it_expires(api: Api, hooks: Hooks):
    # Given
    receiver = hooks.receiver()
    endpoint = hooks.endpoint(receiver, ["payment_intent.created"])
    old = endpoint["secret"]

    # When the secret is rolled with an hour of grace
    rolled = api.post(f"/v1/webhook_endpoints/{endpoint['id']}/roll_secret", {"expires_in": 3600})
    assert rolled.status_code == 200, rolled.text
    new = rolled.json()["secret"]
    assert new != old and new.startswith("whsec_")
    assert "secret" not in api.get(f"/v1/webhook_endpoints/{endpoint['id']}").json()
    create_payment(api)

    # Then both secrets verify the next event
    request = receiver.wait_for(lambda rs: len(rs) >= 1)[0]
    assert request.headers["stripe-signature"].count("v1=") == 2
    verify_both(request, old)
    verify_both(request, new)

    # When rolled again without grace
    newest = api.post(
        f"/v1/webhook_endpoints/{endpoint['id']}/roll_secret", {"expires_in": 0}
    ).json()["secret"]
    create_payment(api)

    # Then only the newest verifies
    request = receiver.wait_for(lambda rs: len(rs) >= 2)[1]
    verify_both(request, newest)
    try:
        stripe.Webhook.construct_event(
            request.body.decode(), request.headers["stripe-signature"], new
        )
    except stripe.SignatureVerificationError:
        pass
    else:
        raise AssertionError("the replaced secret still verifies")


def test_webhook_endpoint_api(api: Api, api_url: str):
    # Create: the secret is shown once
    created = api.post(
        "/v1/webhook_endpoints",
        {
            "url": "http://127.0.0.1:9/hooks",
            "enabled_events[]": ["payment_intent.succeeded", "payment_intent.canceled"],
            "description": "orders",
            "metadata[team]": "payments",
        },
        headers={"Idempotency-Key": "endpoint-1"},
    )
    assert created.status_code == 200, created.text
    endpoint = created.json()
    assert endpoint["object"] == "webhook_endpoint" and endpoint["id"].startswith("we_")
    assert endpoint["status"] == "enabled" and endpoint["secret"].startswith("whsec_")
    assert endpoint["metadata"] == {"team": "payments"} and endpoint["livemode"] is False
    replay = api.post(
        "/v1/webhook_endpoints",
        {
            "url": "http://127.0.0.1:9/hooks",
            "enabled_events[]": ["payment_intent.succeeded", "payment_intent.canceled"],
            "description": "orders",
            "metadata[team]": "payments",
        },
        headers={"Idempotency-Key": "endpoint-1"},
    )
    assert replay.json()["id"] == endpoint["id"]
    path = f"/v1/webhook_endpoints/{endpoint['id']}"

    # Retrieve and list never show it
    fetched = api.get(path).json()
    assert "secret" not in fetched and fetched["url"] == "http://127.0.0.1:9/hooks"
    listed = api.get("/v1/webhook_endpoints").json()
    assert [e["id"] for e in listed["data"]] == [endpoint["id"]]
    assert all("secret" not in e for e in listed["data"])

    # Update
    updated = api.post(
        path,
        {"enabled_events[]": ["*"], "disabled": "true", "metadata[team]": "", "description": "x"},
    ).json()
    assert updated["enabled_events"] == ["*"] and updated["status"] == "disabled"
    assert updated["metadata"] == {} and updated["description"] == "x"

    # Validation: Stripe-shaped errors naming the parameter
    bad_event = api.post(
        "/v1/webhook_endpoints", {"url": "http://x.test", "enabled_events[]": "nope"}
    )
    assert bad_event.status_code == 400
    assert bad_event.json()["error"]["param"] == "enabled_events"
    bad_url = api.post("/v1/webhook_endpoints", {"url": "ftp://x.test", "enabled_events[]": "*"})
    assert bad_url.status_code == 400 and bad_url.json()["error"]["param"] == "url"
    missing = api.post("/v1/webhook_endpoints", {"url": "http://x.test"})
    assert missing.json()["error"]["code"] == "parameter_missing"

    # Another merchant cannot see it
    from tests.conftest import new_merchant

    stranger = Api(api_url, new_merchant(api_url)["secret_key"])
    assert stranger.get(path).status_code == 404

    # Delete
    deleted = api.session.delete(api.base + path)
    assert deleted.json() == {"id": endpoint["id"], "object": "webhook_endpoint", "deleted": True}
    assert api.get(path).status_code == 404
