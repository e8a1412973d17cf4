"""`payflow backfill-indexes` on the embedded sandbox: payments and events stored before their
indexes existed (written here the old way, their index attributes removed) are found by the
connector and method filters and by a payment's timeline once it ran, and by nothing before."""

from __future__ import annotations

import re
from typing import Any

from chalicelib.container import services
from chalicelib.dal.dynamo import from_attrs, to_attrs
from chalicelib.dal.objects import ObjectStore
from payflow.backfill import backfill
from payflow.cli import main
from tests.conftest import Api, new_merchant
from tests.integration.conftest import Hooks
from tests.integration.table_writes import TableWrites
from tests.integration.test_orchestration import pay, simulators

PAYMENT_INDEX_ATTRIBUTES = (
    "gsi2pk",
    "gsi2sk",
    "gsi3pk",
    "gsi3sk",
    "connector",
    "payment_method_type",
)
EVENT_INDEX_ATTRIBUTES = ("gsi2pk", "gsi2sk", "object_id")


def stored_the_old_way(kind: str, object_id: str, names: tuple[str, ...]) -> None:
    """Remove an item's index attributes, as an older PayFlow left the item."""
    services().dynamodb.update_item(
        TableName=services().settings.payments_table,
        Key=to_attrs({"pk": object_id, "sk": kind}),
        UpdateExpression="REMOVE " + ", ".join(names),
    )


def item(kind: str, object_id: str) -> dict[str, Any]:
    found = services().dynamodb.get_item(
        TableName=services().settings.payments_table,
        Key=to_attrs({"pk": object_id, "sk": kind}),
        ConsistentRead=True,
    )
    return from_attrs(found["Item"])


def ids(api: Api, path: str, **params: object) -> list[str]:
    response = api.get(path, params={"limit": 100, **params})
    assert response.status_code == 200, response.text
    return [obj["id"] for obj in response.json()["data"]]


def graphql_ids(api: Api, connector: str) -> list[str]:
    query = "query($c: String) { payment_intents(connector: $c, limit: 100) { id } }"
    response = api.session.post(
        f"{api.base}/graphql", json={"query": query, "variables": {"c": connector}}, timeout=30
    )
    assert response.status_code == 200, response.text
    return [pi["id"] for pi in response.json()["data"]["payment_intents"]]


def backfill_command(sandbox: Any, capsys: Any, *options: str) -> str:
    """`payflow backfill-indexes OPTIONS` against the sandbox; its output."""
    argv = ["backfill-indexes", "--aws-endpoint", sandbox.aws_url, *options]
    assert main(argv) == 0
    return str(capsys.readouterr().out)


def old_payments(api: Api, count: int) -> tuple[str, list[str]]:
    """`count` card payments at a fresh connector, stored the old way with their events."""
    connector, _ = simulators(api, "legacy", "spare")
    paid = [pay(api).json()["id"] for _ in range(count)]
    for pi_id in paid:
        stored_the_old_way("payment_intent", pi_id, PAYMENT_INDEX_ATTRIBUTES)
        for event_id in ids(api, "/v1/events", related_object=pi_id):
            stored_the_old_way("event", event_id, EVENT_INDEX_ATTRIBUTES)
    return connector, paid


def test_old_payments_are_found_by_the_filters_once_backfilled_and_nothing_is_announced(
    api: Api, merchant: dict, sandbox: Any, hooks: Hooks, capsys: Any
):
    # Given: two payments an older PayFlow stored, with their events, and a webhook endpoint
    receiver = hooks.receiver()
    hooks.endpoint(receiver)
    connector, paid = old_payments(api, 2)
    newest_first = list(reversed(paid))
    receiver.wait_for(
        lambda got: sum(r.event["type"] == "payment_intent.succeeded" for r in got) == 2
    )
    events_before = ids(api, "/v1/events")

    # Then: the filters and the payment's timeline miss them
    assert ids(api, "/v1/payment_intents", connector=connector) == []
    assert graphql_ids(api, connector) == []
    assert not set(paid) & set(ids(api, "/v1/payment_intents", payment_method_type="card"))
    assert ids(api, "/v1/events", related_object=paid[0]) == []
    writes = TableWrites(sandbox)

    # When: a dry run
    out = backfill_command(sandbox, capsys, "--merchant", merchant["id"], "--dry-run")

    # Then: it counts what it would do and writes nothing
    assert "payment_intent: 2 scanned, 2 to update, 0 already current, 0 skipped" in out
    assert "dry run: nothing written" in out
    assert writes.of_merchant(merchant["id"]) == []
    assert ids(api, "/v1/payment_intents", connector=connector) == []

    # When: the backfill
    received = receiver.count()
    out = backfill_command(sandbox, capsys, "--merchant", merchant["id"])

    # Then: every payment and event got its attributes, and the filters find them
    assert "payment_intent: 2 scanned, 2 updated, 0 already current, 0 skipped" in out
    events = re.search(r"event: (\d+) scanned, (\d+) updated, 0 already current", out)
    assert events and events[1] == events[2] and int(events[1]) == len(events_before)
    assert ids(api, "/v1/payment_intents", connector=connector) == newest_first
    assert ids(api, "/v1/payment_intents", connector=connector, payment_method_type="card") == (
        newest_first
    )
    assert ids(api, "/v1/payment_intents", payment_method_type="card")[:2] == newest_first
    assert graphql_ids(api, connector) == newest_first
    found = api.get(
        "/v1/payment_intents/search", params={"query": f"connector:'{connector}'"}
    ).json()
    assert [pi["id"] for pi in found["data"]] == newest_first
    assert ids(api, "/v1/events", related_object=paid[0])

    # And: only the index attributes changed: a MODIFY per item, its data and version as they were
    changes = writes.of_merchant(merchant["id"])
    assert {r["eventName"] for r in changes} == {"MODIFY"} and len(changes) == 2 + len(
        events_before
    )
    for record in changes:
        old, new = (from_attrs(record["dynamodb"][image]) for image in ("OldImage", "NewImage"))
        assert old["data"] == new["data"] and old["version"] == new["version"]
        assert set(new) - set(old) <= {*PAYMENT_INDEX_ATTRIBUTES, *EVENT_INDEX_ATTRIBUTES}

    # And: no event and no webhook came of it. A payment made now is announced after the
    # backfill's records in the stream's order: once its webhook is in, theirs would be too.
    marker = api.post("/v1/payment_intents", {"amount": 100, "currency": "usd"}).json()["id"]
    got = receiver.wait_for(lambda got: any(r.event["data"]["object"]["id"] == marker for r in got))
    assert [r.event["type"] for r in got[received:]] == ["payment_intent.created"]
    assert ids(api, "/v1/events")[1:] == events_before

    # When: it runs again
    out = backfill_command(sandbox, capsys, "--merchant", merchant["id"])

    # Then: nothing is left to do
    assert "payment_intent: 3 scanned, 0 updated, 3 already current" in out
    assert re.search(r"event: \d+ scanned, 0 updated", out)


def test_a_run_stopped_by_its_limit_goes_on_from_its_cursor(
    api: Api, merchant: dict, sandbox: Any, capsys: Any
):
    # Given: three payments stored the old way
    connector, paid = old_payments(api, 3)
    options = ("--merchant", merchant["id"], "--kind", "payment_intent")

    # When: a run bounded to two items, then one resumed from its cursor
    first = backfill_command(sandbox, capsys, *options, "--limit", "2")
    cursor = re.search(r"--resume (\S+)", first)
    assert "payment_intent: 2 scanned, 2 updated" in first and cursor
    assert ids(api, "/v1/payment_intents", connector=connector) == list(reversed(paid[:2]))
    rest = backfill_command(sandbox, capsys, *options, "--resume", cursor[1])

    # Then: the second run read only the third, and ended
    assert "payment_intent: 1 scanned, 1 updated" in rest and "--resume" not in rest
    assert ids(api, "/v1/payment_intents", connector=connector) == list(reversed(paid))

    # And: a cursor is refused by a run over other kinds, in one line
    assert main(["backfill-indexes", "--aws-endpoint", sandbox.aws_url, "--resume", cursor[1]]) == 1
    assert "same --merchant and --kind" in capsys.readouterr().err
    assert main(["backfill-indexes", "--aws-endpoint", sandbox.aws_url, "--kind", "pi"]) == 1
    assert "unknown --kind pi: one of payment_intent, event," in capsys.readouterr().err


class WritesFirst:
    """The sandbox's DynamoDB client, with a real write of the item landing just before the
    backfill's first update of it (the race a running sandbox can meet)."""

    def __init__(self, client: Any, write: Any) -> None:
        self._client = client
        self._write = write
        self.raced = False

    def update_item(self, **params: Any) -> Any:
        if not self.raced:
            self.raced = True
            self._write()
        return self._client.update_item(**params)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def test_a_write_during_the_backfill_wins(api: Api, merchant: dict):
    # Given: a payment stored the old way, and a metadata update that lands between the
    # backfill's read of it and its update
    connector, (pi_id,) = old_payments(api, 1)

    def update() -> None:
        response = api.post(f"/v1/payment_intents/{pi_id}", {"metadata[order]": "42"})
        assert response.status_code == 200, response.text

    client = WritesFirst(services().dynamodb, update)
    objects = ObjectStore(client, services().settings.payments_table)
    version = item("payment_intent", pi_id)["version"]

    # When
    outcome = backfill(objects, [merchant["id"]], ["payment_intent"], scope=merchant["id"])

    # Then: the update's condition failed, the real write stands with index keys of its own
    tally = outcome.tallies["payment_intent"]
    assert client.raced and (tally.scanned, tally.updated, tally.concurrent) == (1, 0, 1)
    stored = item("payment_intent", pi_id)
    assert stored["version"] == version + 1 and stored["data"]["metadata"] == {"order": "42"}
    assert ids(api, "/v1/payment_intents", connector=connector) == [pi_id]

    # And: the next run finds it current
    plain = ObjectStore(services().dynamodb, services().settings.payments_table)
    again = backfill(plain, [merchant["id"]], ["payment_intent"], scope=merchant["id"])
    assert (again.tallies["payment_intent"].current, again.tallies["payment_intent"].updated) == (
        1,
        0,
    )


def test_an_item_deleted_during_the_backfill_is_not_created_again(api: Api, merchant: dict):
    # Given: a payment stored the old way, whose item goes before the backfill updates it
    _, (pi_id,) = old_payments(api, 1)
    table = services().settings.payments_table
    key = to_attrs({"pk": pi_id, "sk": "payment_intent"})

    def delete() -> None:
        services().dynamodb.delete_item(TableName=table, Key=key)

    objects = ObjectStore(WritesFirst(services().dynamodb, delete), table)

    # When
    outcome = backfill(objects, [merchant["id"]], ["payment_intent"], scope=merchant["id"])

    # Then: counted as a concurrent write, and no half item (index keys, no data) appeared
    assert outcome.tallies["payment_intent"].concurrent == 1
    assert "Item" not in services().dynamodb.get_item(TableName=table, Key=key)


def test_every_merchants_walk_resumes_in_the_next_merchant(api: Api, api_url: str, merchant: dict):
    # Given: two merchants, each with a payment stored the old way
    other = new_merchant(api_url)
    _, (first,) = old_payments(api, 1)
    _, (second,) = old_payments(Api(api_url, other["secret_key"]), 1)
    objects = ObjectStore(services().dynamodb, services().settings.payments_table)
    merchants = [merchant["id"], other["id"]]

    # When: a run bounded to one item, then its resumption
    stopped = backfill(objects, merchants, ["payment_intent"], scope="both", limit=1)
    assert stopped.cursor is not None and "gsi2pk" not in item("payment_intent", second)
    rest = backfill(objects, merchants, ["payment_intent"], scope="both", resume=stopped.cursor)

    # Then: each run updated one payment, the second in the other merchant, and ended
    assert stopped.tallies["payment_intent"].updated == rest.tallies["payment_intent"].updated == 1
    assert rest.cursor is None
    assert {"gsi2pk", "gsi3pk"} <= set(item("payment_intent", first)) & set(
        item("payment_intent", second)
    )


def test_index_attributes_a_write_would_no_longer_store_are_removed(api: Api, merchant: dict):
    # Given: a payment never confirmed (in no connector's index) whose item holds a connector
    # key an older rule gave it
    pi_id = api.post("/v1/payment_intents", {"amount": 500, "currency": "usd"}).json()["id"]
    services().dynamodb.update_item(
        TableName=services().settings.payments_table,
        Key=to_attrs({"pk": pi_id, "sk": "payment_intent"}),
        UpdateExpression="SET gsi2pk = :pk, gsi2sk = :id, connector = :c",
        ExpressionAttributeValues=to_attrs(
            {":pk": f"{merchant['id']}#payment_intent#sim_old", ":id": pi_id, ":c": "sim_old"}
        ),
    )
    assert ids(api, "/v1/payment_intents", connector="sim_old") == [pi_id]
    objects = ObjectStore(services().dynamodb, services().settings.payments_table)

    # When
    outcome = backfill(objects, [merchant["id"]], ["payment_intent"], scope=merchant["id"])

    # Then: the stray key is gone (a REMOVE alone), nothing else changed
    assert outcome.tallies["payment_intent"].updated == 1
    assert ids(api, "/v1/payment_intents", connector="sim_old") == []
    assert not {"gsi2pk", "gsi2sk", "connector"} & set(item("payment_intent", pi_id))
