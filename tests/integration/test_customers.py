"""Customers and PaymentMethods through the real path, with stripe-python as the client."""

from __future__ import annotations

import pytest
import stripe

from tests.conftest import Api


@pytest.fixture
def client(api_url: str, merchant: dict) -> stripe.StripeClient:
    return stripe.StripeClient(
        merchant["secret_key"], base_addresses={"api": api_url}, max_network_retries=2
    )


def _events(api: Api, type_: str) -> list[dict]:
    return api.get("/v1/events", params={"type": type_, "limit": 100}).json()["data"]


def test_customer_lifecycle_with_events(client: stripe.StripeClient, api: Api) -> None:
    # Given a new customer with contact details
    customer = client.v1.customers.create(
        params={
            "email": "jenny@example.com",
            "name": "Jenny Rosen",
            "address": {"city": "Berlin", "country": "DE"},
            "metadata": {"crm": "42"},
        }
    )
    assert customer.id.startswith("cus_") and customer.address.city == "Berlin"
    # When it is updated, then deleted
    updated = client.v1.customers.update(
        customer.id, params={"phone": "+49 30 1234", "metadata": {"crm": "", "tier": "gold"}}
    )
    assert updated.phone == "+49 30 1234" and updated.metadata.to_dict() == {"tier": "gold"}
    deleted = client.v1.customers.delete(customer.id)
    # Then each change was announced, and the deleted customer reads as Stripe's tombstone
    assert deleted.deleted is True
    assert client.v1.customers.retrieve(customer.id).deleted is True
    for kind in ("customer.created", "customer.updated", "customer.deleted"):
        assert [e["data"]["object"]["id"] for e in _events(api, kind)] == [customer.id]
    assert _events(api, "customer.updated")[0]["data"]["previous_attributes"]["phone"] is None


def test_list_filters_by_email_and_skips_deleted(client: stripe.StripeClient) -> None:
    a = client.v1.customers.create(params={"email": "a@example.com"})
    b = client.v1.customers.create(params={"email": "b@example.com"})
    client.v1.customers.create(params={"email": "a@example.com"})
    client.v1.customers.delete(b.id)
    same = client.v1.customers.list(params={"email": "a@example.com"})
    assert len(same.data) == 2 and same.data[-1].id == a.id
    assert b.id not in [c.id for c in client.v1.customers.list().auto_paging_iter()]


def test_payment_method_from_token_attach_detach(client: stripe.StripeClient, api: Api) -> None:
    customer = client.v1.customers.create(params={"name": "Jo"})
    # Given a card PaymentMethod made from Stripe's test token
    pm = client.v1.payment_methods.create(
        params={"type": "card", "card": {"token": "tok_mastercard"}}
    )
    assert pm.card.brand == "mastercard" and pm.card.last4 == "4444" and pm.customer is None
    assert (
        pm.card.fingerprint
        == client.v1.payment_methods.retrieve("pm_card_mastercard").card.fingerprint
    )
    # When it is attached, updated, listed and detached
    attached = client.v1.payment_methods.attach(pm.id, params={"customer": customer.id})
    assert attached.customer == customer.id
    billed = client.v1.payment_methods.update(
        pm.id, params={"billing_details": {"name": "Jo Doe", "address": {"postal_code": "10115"}}}
    )
    assert billed.billing_details.name == "Jo Doe"
    assert billed.billing_details.address.postal_code == "10115"
    listed = client.v1.customers.payment_methods.list(customer.id)
    assert [m.id for m in listed.data] == [pm.id]
    assert [
        m.id for m in client.v1.payment_methods.list(params={"customer": customer.id}).data
    ] == [pm.id]
    client.v1.payment_methods.detach(pm.id)
    # Then the customer has none, and both moves were announced
    assert client.v1.customers.payment_methods.list(customer.id).data == []
    assert [e["data"]["object"]["id"] for e in _events(api, "payment_method.attached")] == [pm.id]
    assert [e["data"]["object"]["id"] for e in _events(api, "payment_method.detached")] == [pm.id]


def test_attaching_a_test_card_id_saves_a_copy(client: stripe.StripeClient) -> None:
    customer = client.v1.customers.create()
    saved = client.v1.payment_methods.attach("pm_card_visa", params={"customer": customer.id})
    assert saved.id != "pm_card_visa" and saved.customer == customer.id
    assert saved.card.last4 == "4242"
    again = client.v1.payment_methods.attach("pm_card_visa", params={"customer": customer.id})
    assert again.id != saved.id  # the test card stays available to everyone


def test_customer_created_with_default_payment_method(client: stripe.StripeClient) -> None:
    customer = client.v1.customers.create(
        params={
            "payment_method": "pm_card_visa",
            "invoice_settings": {"default_payment_method": "pm_card_visa"},
        },
    )
    default = customer.invoice_settings.default_payment_method
    assert default.startswith("pm_") and default != "pm_card_visa"
    expanded = client.v1.customers.retrieve(
        customer.id, params={"expand": ["invoice_settings.default_payment_method"]}
    )
    assert expanded.invoice_settings.default_payment_method.card.last4 == "4242"


def test_errors_change_nothing(api: Api) -> None:
    unknown = api.post("/v1/customers", data={"nickname": "x"})
    assert unknown.status_code == 400
    assert unknown.json()["error"]["code"] == "parameter_unknown"
    assert unknown.json()["error"]["param"] == "nickname"
    bad_nested = api.post("/v1/customers", data={"address[planet]": "Mars"})
    assert bad_nested.json()["error"]["param"] == "address[planet]"
    foreign = api.get("/v1/customers/cus_doesnotexist")
    assert foreign.status_code == 404 and foreign.json()["error"]["code"] == "resource_missing"
    raw = api.post("/v1/payment_methods", data={"type": "card"})
    assert raw.status_code == 400 and raw.json()["error"]["param"] == "card[token]"
    bad_token = api.post("/v1/payment_methods", data={"type": "card", "card[token]": "tok_nope"})
    assert bad_token.status_code == 400
    bad_expand = api.get("/v1/customers", params={"expand[]": "email"})
    assert bad_expand.status_code == 400
    assert "data.email" in bad_expand.json()["error"]["message"]
    assert api.get("/v1/customers").json()["data"] == []


def test_tenants_are_isolated(api: Api, api_url: str) -> None:
    from tests.conftest import new_merchant

    mine = api.post("/v1/customers", data={"email": "me@example.com"}).json()
    other = Api(api_url, new_merchant(api_url)["secret_key"])
    assert other.get(f"/v1/customers/{mine['id']}").status_code == 404
    assert other.post(f"/v1/customers/{mine['id']}", data={"name": "x"}).status_code == 404
    assert other.get("/v1/customers", params={"email": "me@example.com"}).json()["data"] == []
    pm = api.post("/v1/payment_methods", data={"type": "card", "card[token]": "tok_visa"}).json()
    attach = other.post(f"/v1/payment_methods/{pm['id']}/attach", data={"customer": mine["id"]})
    assert attach.status_code == 404


def test_search_customers(client: stripe.StripeClient) -> None:
    ada = client.v1.customers.create(params={"email": "ada@example.com", "name": "Ada Lovelace"})
    client.v1.customers.create(params={"email": "bob@example.com", "metadata": {"vip": "yes"}})
    found = client.v1.customers.search(params={"query": "email:'ada@example.com'"})
    assert [c.id for c in found.data] == [ada.id]
    vip = client.v1.customers.search(params={"query": "metadata['vip']:'yes'"})
    assert [c.email for c in vip.data] == ["bob@example.com"]
    client.v1.customers.delete(ada.id)
    assert client.v1.customers.search(params={"query": "name:'Ada'"}).data == []
