"""GET /v1/payment_intents/search through HTTP and through stripe-python, against the sandbox."""

from __future__ import annotations

from typing import Any

import pytest
import stripe

from tests.conftest import Api, new_merchant

SEARCH = "/v1/payment_intents/search"


def create(api: Api, **params: Any) -> dict[str, Any]:
    response = api.post("/v1/payment_intents", {"currency": "usd", **params})
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def search(api: Api, query: str, **params: Any) -> dict[str, Any]:
    response = api.get(SEARCH, params={"query": query, **params})
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def ids(body: dict[str, Any]) -> list[str]:
    return [pi["id"] for pi in body["data"]]


@pytest.fixture
def shop(api: Api) -> dict[str, dict[str, Any]]:
    """Four PaymentIntents in four states, created oldest to newest."""
    return {
        "open": create(api, amount=500, **{"metadata[order_id]": "1", "metadata[tier]": "gold"}),
        "held": create(
            api,
            amount=1500,
            capture_method="manual",
            payment_method="pm_card_visa",
            confirm="true",
            **{"metadata[order_id]": "2"},
        ),
        "paid": create(
            api,
            amount=2500,
            payment_method="pm_card_visa",
            confirm="true",
            **{"metadata[order_id]": "3", "metadata[tier]": "gold"},
        ),
        "eur": create(api, amount=3500, currency="eur", **{"metadata[order_id]": "4"}),
    }


def test_search_by_status_answers_stripes_search_result(api: Api, shop: dict[str, Any]):
    # When
    body = search(api, 'status:"succeeded"')

    # Then
    assert body["object"] == "search_result" and body["url"] == SEARCH
    assert ids(body) == [shop["paid"]["id"]]
    assert body["data"][0] == api.get(f"/v1/payment_intents/{shop['paid']['id']}").json()
    assert (body["has_more"], body["next_page"]) == (False, None)
    assert ids(search(api, 'status:"requires_capture"')) == [shop["held"]["id"]]


def test_amount_ranges_currency_and_negation(api: Api, shop: dict[str, Any]):
    assert ids(search(api, "amount>1000 AND amount<3000")) == [
        shop["paid"]["id"],
        shop["held"]["id"],
    ]
    assert ids(search(api, "amount>=3500")) == [shop["eur"]["id"]]
    assert ids(search(api, "amount<=500")) == [shop["open"]["id"]]
    assert ids(search(api, 'currency:"eur"')) == [shop["eur"]["id"]]
    assert ids(search(api, '-currency:"usd"')) == [shop["eur"]["id"]]


def test_metadata_values_and_presence(api: Api, shop: dict[str, Any]):
    assert ids(search(api, "metadata['order_id']:'2'")) == [shop["held"]["id"]]
    assert ids(search(api, 'metadata["tier"]:"gold"')) == [shop["paid"]["id"], shop["open"]["id"]]
    assert ids(search(api, "-metadata['tier']:null")) == [shop["paid"]["id"], shop["open"]["id"]]
    assert ids(search(api, "metadata['tier']:null")) == [shop["eur"]["id"], shop["held"]["id"]]


def test_or_joins_and_and_with_or_is_refused(api: Api, shop: dict[str, Any]):
    # When
    either = search(api, 'status:"succeeded" OR currency:"eur"')
    mixed = api.get(SEARCH, params={"query": 'status:"x" AND amount>1 OR amount<5'})

    # Then
    assert ids(either) == [shop["eur"]["id"], shop["paid"]["id"]]
    assert mixed.status_code == 400
    assert mixed.json()["error"]["param"] == "query"
    assert "can't combine AND and OR" in mixed.json()["error"]["message"]


def test_created_ranges(api: Api, shop: dict[str, Any]):
    # Given the creation times of the four
    times = [pi["created"] for pi in shop.values()]
    first, last = min(times), max(times)

    # When / Then
    assert len(search(api, f"created>={first} AND created<={last}")["data"]) == 4
    assert search(api, f"created<{first}")["data"] == []
    assert search(api, f"created>{last}")["data"] == []
    assert set(ids(search(api, f"created:{last}"))) == {
        pi["id"] for pi in shop.values() if pi["created"] == last
    }


def test_paging_with_page_and_next_page_until_the_end(api: Api):
    # Given seven matching PaymentIntents among non-matching ones
    matching = []
    for n in range(10):
        pi = create(api, amount=1000 + n, **{"metadata[batch]": "b" if n % 3 else "x"})
        if n % 3:
            matching.append(pi["id"])

    # When paging two at a time
    seen: list[str] = []
    body = search(api, "metadata['batch']:'b'", limit=2)
    pages = 1
    while body["has_more"]:
        assert len(body["data"]) == 2 and body["next_page"]
        seen += ids(body)
        body = search(api, "metadata['batch']:'b'", limit=2, page=body["next_page"])
        pages += 1
    seen += ids(body)

    # Then every match came once, newest first, and the last page says so
    assert seen == matching[::-1]
    assert pages == 3 and body["next_page"] is None


@pytest.mark.parametrize(
    ("params", "param", "fragment"),
    [
        ({"query": 'foo:"bar"'}, "query", "Field 'foo' is an unsupported search field"),
        ({"query": "status:succeeded"}, "query", "must be in quotation marks"),
        ({"query": 'status~"succ"'}, "query", "does not support '~'"),
        ({"query": "amount>1", "page": "bogus"}, "page", "next_page"),
        ({"query": "amount>1", "limit": "0"}, "limit", "between 1 and 100"),
        ({"query": "amount>1", "limit": "101"}, "limit", "between 1 and 100"),
        ({"query": "amount>1", "starting_after": "pi_1"}, "starting_after", "unknown parameter"),
        ({}, "query", "Missing required param: query"),
    ],
)
def test_an_unsupported_clause_or_parameter_is_a_stripe_shaped_400(
    api: Api, params: dict[str, str], param: str, fragment: str
):
    # When
    response = api.get(SEARCH, params=params)

    # Then: a 400 naming the parameter, never a 404 for a PaymentIntent called "search"
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and error["param"] == param
    assert fragment in error["message"]


def test_search_is_a_route_of_its_own_and_retrieve_still_works(api: Api):
    # Given
    pi = create(api, amount=700)

    # When / Then: the literal segment is not taken for an id, and ids still are
    assert api.get(f"/v1/payment_intents/{pi['id']}").json()["id"] == pi["id"]
    assert ids(search(api, "amount:700")) == [pi["id"]]
    assert api.post(SEARCH, {"query": "amount:700"}).status_code == 404


def test_another_merchants_objects_never_match(api: Api, api_url: str):
    # Given two merchants with identical PaymentIntents
    other = Api(api_url, new_merchant(api_url)["secret_key"])
    mine = create(api, amount=4242, **{"metadata[shared]": "same"})
    theirs = create(other, amount=4242, **{"metadata[shared]": "same"})

    # When each searches for them
    query = "metadata['shared']:'same' AND amount:4242"

    # Then each sees only its own, and a cursor from one leaks nothing to the other
    assert ids(search(api, query)) == [mine["id"]]
    assert ids(search(other, query)) == [theirs["id"]]
    assert search(other, "amount>0", limit=1)["has_more"] is False


def test_an_unauthenticated_search_is_a_401(api_url: str):
    response = Api(api_url, "sk_test_nobody").get(SEARCH, params={"query": "amount>0"})
    assert response.status_code == 401


@pytest.fixture
def sdk(api_url: str, merchant: dict):
    saved = stripe.api_base, stripe.api_key, stripe.max_network_retries
    stripe.api_base, stripe.api_key = api_url, merchant["secret_key"]
    stripe.max_network_retries = 2
    yield stripe
    stripe.api_base, stripe.api_key, stripe.max_network_retries = saved


def test_stripe_python_search_and_auto_paging(sdk, api_url: str, merchant: dict):
    # Given five PaymentIntents tagged for a campaign and one that is not
    tagged = [
        stripe.PaymentIntent.create(amount=900 + n, currency="usd", metadata={"campaign": "c1"}).id
        for n in range(5)
    ]
    stripe.PaymentIntent.create(amount=901, currency="usd")

    # When
    first = stripe.PaymentIntent.search(query="metadata['campaign']:'c1'", limit=2)
    every = [pi.id for pi in first.auto_paging_iter()]

    # Then
    assert isinstance(first, stripe.SearchResultObject)
    assert len(first.data) == 2 and first.has_more and first.next_page
    assert every == tagged[::-1]
    client = stripe.StripeClient(merchant["secret_key"], base_addresses={"api": api_url})
    found = client.v1.payment_intents.search(params={"query": "amount:901"})
    assert [pi.amount for pi in found.data] == [901, 901]


def test_stripe_python_raises_invalid_request_error_for_a_bad_query(sdk):
    with pytest.raises(stripe.InvalidRequestError) as raised:
        stripe.PaymentIntent.search(query="email:'a@b.c'")
    assert raised.value.param == "query"
    assert "unsupported search field for payment_intents" in str(raised.value.user_message)
