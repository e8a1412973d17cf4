"""GET /v1/events and /v1/events/{id}: the outbox as Stripe's events API."""

from __future__ import annotations

from tests.conftest import Api, new_merchant
from tests.integration.test_webhooks import create_payment


def ids(response) -> list[str]:
    assert response.status_code == 200, response.text
    return [event["id"] for event in response.json()["data"]]


def test_events_list_filter_page_and_retrieve(api: Api, api_url: str):
    # Given three payments, one of them confirmed
    first = create_payment(api)
    second = create_payment(api, payment_method="pm_card_visa", confirm="true")
    third = create_payment(api)
    everything = api.get("/v1/events", params={"limit": 100}).json()
    events = everything["data"]
    assert everything["object"] == "list" and everything["url"] == "/v1/events"
    assert not everything["has_more"]

    # Newest first, one event per change
    assert [e["id"] for e in events] == sorted((e["id"] for e in events), reverse=True)
    created = [e for e in events if e["type"] == "payment_intent.created"]
    assert [e["data"]["object"]["id"] for e in created] == [third["id"], second["id"], first["id"]]
    assert any(e["type"] == "payment_intent.succeeded" for e in events)

    # type, types[] and wildcards
    assert ids(api.get("/v1/events", params={"type": "payment_intent.created"})) == [
        e["id"] for e in created
    ]
    succeeded = ids(api.get("/v1/events", params={"type": "payment_intent.succeeded"}))
    assert len(succeeded) == 1
    both = ids(
        api.get(
            "/v1/events", params={"types[]": ["payment_intent.created", "payment_intent.succeeded"]}
        )
    )
    assert set(both) == {e["id"] for e in created} | set(succeeded)
    pi_events = [e for e in events if e["type"].startswith("payment_intent.")]
    assert len(ids(api.get("/v1/events", params={"type": "payment_intent.*"}))) == len(pi_events)

    # created ranges
    oldest = min(e["created"] for e in events)
    newest = max(e["created"] for e in events)
    assert len(ids(api.get("/v1/events", params={"created[gte]": oldest}))) == len(events)
    assert ids(api.get("/v1/events", params={"created[gt]": newest})) == []
    assert ids(api.get("/v1/events", params={"created[lt]": oldest})) == []
    exact = ids(api.get("/v1/events", params={"created": newest}))
    assert exact == [e["id"] for e in events if e["created"] == newest]
    bad = api.get("/v1/events", params={"created[after]": 1})
    assert bad.status_code == 400

    # pagination with Stripe's cursors
    page = api.get("/v1/events", params={"limit": 2}).json()
    assert page["has_more"] and [e["id"] for e in page["data"]] == [e["id"] for e in events[:2]]
    rest = ids(api.get("/v1/events", params={"limit": 100, "starting_after": events[1]["id"]}))
    assert rest == [e["id"] for e in events[2:]]
    before = ids(api.get("/v1/events", params={"ending_before": events[2]["id"]}))
    assert before == [e["id"] for e in events[:2]]

    # retrieve
    event = api.get(f"/v1/events/{created[0]['id']}").json()
    assert event == created[0] | {"pending_webhooks": event["pending_webhooks"]}
    assert event["object"] == "event" and event["request"]["id"].startswith("req_")
    assert api.get("/v1/events/evt_nope").status_code == 404
    stranger = Api(api_url, new_merchant(api_url)["secret_key"])
    assert stranger.get(f"/v1/events/{event['id']}").status_code == 404
    assert ids(stranger.get("/v1/events")) == []


def test_related_object_keeps_the_events_of_one_payment_and_its_charges(api: Api):
    # Given two confirmed payments (each writes PaymentIntent and charge events)
    mine = create_payment(api, payment_method="pm_card_visa", confirm="true")
    other = create_payment(api, payment_method="pm_card_visa", confirm="true")

    # When the events are listed for one of them
    response = api.get(
        "/v1/events",
        params={"related_object": mine["id"], "created[gte]": mine["created"], "limit": 100},
    )

    # Then every event is about it: the PaymentIntent itself or its charge, nothing of the other
    assert response.status_code == 200, response.text
    events = response.json()["data"]
    types = {event["type"] for event in events}
    assert {"payment_intent.created", "payment_intent.succeeded", "charge.succeeded"} <= types
    for event in events:
        obj = event["data"]["object"]
        assert mine["id"] in (obj["id"], obj.get("payment_intent")), event["type"]
    assert other["id"] not in {event["data"]["object"]["id"] for event in events}

    # A charge's events are indexed under its PaymentIntent: they are found by a filter instead
    charge = api.get("/v1/events", params={"related_object": mine["latest_charge"]}).json()
    assert {e["type"] for e in charge["data"]} == {"charge.succeeded"}


def test_related_object_must_be_an_identifier(api: Api):
    response = api.get("/v1/events", params={"related_object": "x" * 300})
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "related_object"
