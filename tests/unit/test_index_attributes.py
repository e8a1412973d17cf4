"""An item's index attributes: one rule for a write and for the backfill of items stored
before an index existed (payflow backfill-indexes)."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from chalicelib.dal.dynamo import WriteBatch, from_attrs
from chalicelib.dal.objects import ObjectStore, index_attributes
from chalicelib.domain.events import Event
from chalicelib.domain.payment_intents import PaymentIntent, PaymentIntentStatus
from payflow.backfill import BackfillError, backfill, families, index_change

MERCHANT = "acct_1"


def payment(**fields: Any) -> PaymentIntent:
    values: dict[str, Any] = {
        "id": "pi_0001",
        "merchant_id": MERCHANT,
        "amount": 1000,
        "currency": "usd",
        "status": PaymentIntentStatus.SUCCEEDED,
        "created": 1_700_000_000,
        "client_secret": "pi_0001_secret_x",
        "version": 3,
        "connector": "sim_a",
        "payment_method": "pm_card_visa",
        **fields,
    }
    return PaymentIntent(**values)


def stored(kind: str, obj: Any, **top_level: Any) -> dict[str, Any]:
    """The item a write of `obj` stores, as plain values."""
    batch = WriteBatch()
    ObjectStore(client=None, table_name="t").put_new(batch, kind, obj, **top_level)
    return from_attrs(batch.actions[0]["Put"]["Item"])


def test_a_written_payment_holds_exactly_the_attributes_the_rule_computes():
    # Given: a payment authorized at a connector, by card
    pi = payment()

    # When
    attributes = index_attributes("payment_intent", pi, **pi.attributes())
    item = stored("payment_intent", pi, **pi.attributes())

    # Then: the write stores those attributes and its data, nothing else
    assert {k: v for k, v in item.items() if k != "data"} == attributes
    assert attributes["gsi2pk"] == f"{MERCHANT}#payment_intent#sim_a"
    assert attributes["gsi3pk"] == f"{MERCHANT}#payment_intent#card"
    assert attributes["gsi2sk"] == attributes["gsi3sk"] == "pi_0001"
    assert attributes["version"] == 3 and attributes["status"] == "succeeded"


def test_a_payment_never_confirmed_is_in_neither_index():
    pi = payment(
        connector=None, payment_method=None, status=PaymentIntentStatus.REQUIRES_PAYMENT_METHOD
    )
    attributes = index_attributes("payment_intent", pi, **pi.attributes())
    assert not {"gsi2pk", "gsi3pk", "connector", "payment_method_type"} & set(attributes)


def test_an_event_is_indexed_under_its_payment_intent():
    event = Event(
        id="evt_1",
        merchant_id=MERCHANT,
        type="charge.succeeded",
        created=1,
        data_object={"id": "ch_1", "object": "charge", "payment_intent": "pi_0001"},
    )
    attributes = index_attributes("event", event, type=event.type)
    assert attributes["gsi2pk"] == f"{MERCHANT}#pi_0001"
    assert attributes["object_id"] == "ch_1" and "gsi3pk" not in attributes
    # A stored event's snapshot is packed: the change is computed from the unpacked object
    assert index_change(families()["event"], stored("event", event, type=event.type)) == ({}, [])


def test_an_item_stored_before_the_indexes_lacks_only_their_attributes():
    # Given: a payment's item as written today, and as an older PayFlow wrote it
    pi = payment()
    current = stored("payment_intent", pi, **pi.attributes())
    older = {
        k: v
        for k, v in current.items()
        if k not in ("gsi2pk", "gsi2sk", "gsi3pk", "gsi3sk", "connector", "payment_method_type")
    }
    family = families()["payment_intent"]

    # Then: the older item needs those six, set; today's needs nothing
    changed, removed = index_change(family, older)
    assert changed == {
        name: current[name]
        for name in ("connector", "payment_method_type", "gsi2pk", "gsi2sk", "gsi3pk", "gsi3sk")
    }
    assert removed == []
    assert index_change(family, current) == ({}, [])


def test_stale_index_attributes_are_replaced_or_removed_never_the_key_or_version():
    # Given: an item whose connector key names another connector, with a method key its
    # object no longer has, and a top-level version that differs from its data's
    pi = payment(payment_method=None)
    item = {
        **stored("payment_intent", pi, **pi.attributes()),
        "gsi2pk": f"{MERCHANT}#payment_intent#sim_old",
        "gsi3pk": f"{MERCHANT}#payment_intent#card",
        "gsi3sk": "pi_0001",
        "payment_method_type": "card",
        "version": 2,
    }

    # When
    changed, removed = index_change(families()["payment_intent"], item)

    # Then
    assert changed == {"gsi2pk": f"{MERCHANT}#payment_intent#sim_a"}
    assert removed == ["gsi3pk", "gsi3sk", "payment_method_type"]


def test_a_cursor_is_taken_back_only_by_the_run_that_printed_it():
    objects = ObjectStore(client=None, table_name="t")
    with pytest.raises(BackfillError, match="printed"):
        backfill(objects, [MERCHANT], ["payment_intent"], scope=MERCHANT, resume="not-a-cursor")
    # A cursor of a run over events only, as such a run prints it
    body = {"scope": MERCHANT, "kinds": ["event"], "merchant": MERCHANT, "kind": "event"}
    cursor = base64.urlsafe_b64encode(json.dumps({**body, "after": None}).encode()).decode()
    with pytest.raises(BackfillError, match="same --merchant and --kind"):
        backfill(objects, [MERCHANT], ["payment_intent"], scope=MERCHANT, resume=cursor)
