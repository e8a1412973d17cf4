"""search_body: Stripe's search result, page cursors, and the bound on work per request."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.dal.objects import Page
from chalicelib.domain.payment_intents import PaymentIntent
from chalicelib.errors import ParameterInvalid
from chalicelib.services.search import BATCH, ScanBudget, decode_page, encode_page, search_body

KIND = "payment_intent"
URL = "/v1/payment_intents/search"


class FakeObjects:
    """ObjectStore.list over an in-memory list, newest first, counting the objects it reads."""

    def __init__(self, items: list[dict[str, Any]]) -> None:
        self._items = sorted(items, key=lambda item: item["id"], reverse=True)
        self.read = 0
        self.calls = 0

    def list(
        self,
        kind: str,
        merchant_id: str,
        *,
        limit: int,
        starting_after: str | None = None,
        ending_before: str | None = None,
        filters: dict[str, str] | None = None,
        indexed: tuple[str, str] | None = None,
    ) -> Page:
        assert (kind, ending_before, filters, indexed) == (KIND, None, None, None)
        mine = [i for i in self._items if i["merchant_id"] == merchant_id]
        if starting_after is not None:
            mine = [i for i in mine if i["id"] < starting_after]
        # Like the real store: it asks DynamoDB for limit + 1 to know whether there is more.
        window = mine[: limit + 1]
        self.read += len(window)
        self.calls += 1
        return Page(items=window[:limit], has_more=len(window) > limit)


def stored(n: int, *, merchant: str = "acct_1", **fields: Any) -> dict[str, Any]:
    pi = PaymentIntent(
        id=f"pi_{n:06d}",
        merchant_id=merchant,
        amount=fields.pop("amount", 100 + n),
        currency="usd",
        status=fields.pop("status", "requires_payment_method"),
        created=1_700_000_000 + n,
        client_secret=f"pi_{n:06d}_secret",
        **fields,
    )
    return pi.model_dump(mode="json")


def search(objects: FakeObjects, query: str, **kwargs: Any) -> dict[str, Any]:
    kwargs.setdefault("limit", 10)
    kwargs.setdefault("page", None)
    return search_body(objects, KIND, PaymentIntent, "acct_1", URL, query=query, **kwargs)  # type: ignore[arg-type]


def test_the_body_is_stripes_search_result_of_api_objects_newest_first():
    # Given three PaymentIntents, two of them over 101
    objects = FakeObjects([stored(1), stored(2), stored(3)])

    # When
    body = search(objects, "amount>101")

    # Then
    assert body["object"] == "search_result" and body["url"] == URL
    assert [pi["id"] for pi in body["data"]] == ["pi_000003", "pi_000002"]
    assert body["data"][0] == PaymentIntent.model_validate(stored(3)).to_api()
    assert (body["has_more"], body["next_page"]) == (False, None)


def test_following_next_page_returns_every_match_once_in_order():
    # Given 57 PaymentIntents, every third one succeeded
    items = [stored(n, status="succeeded" if n % 3 == 0 else "canceled") for n in range(57)]
    objects = FakeObjects(items)
    expected = [f"pi_{n:06d}" for n in reversed(range(57)) if n % 3 == 0]

    # When paging by 4
    seen: list[str] = []
    page = None
    while True:
        body = search(objects, 'status:"succeeded"', limit=4, page=page)
        assert len(body["data"]) <= 4
        seen += [pi["id"] for pi in body["data"]]
        if not body["has_more"]:
            assert body["next_page"] is None
            break
        page = body["next_page"]

    # Then
    assert seen == expected


def test_a_full_page_stops_reading_at_limit_plus_one_match():
    # Given 5,000 matching PaymentIntents
    objects = FakeObjects([stored(n) for n in range(5_000)])

    # When one page of 10 is asked for
    body = search(objects, "amount>0", limit=10)

    # Then one store page of limit + 1 was read, not the merchant's every object
    assert len(body["data"]) == 10 and body["has_more"]
    assert objects.calls == 1 and objects.read == 12


def test_a_sparse_match_stops_after_enough_objects_and_resumes_there():
    # Given 3,000 PaymentIntents of which only the newest and the oldest match
    items = [stored(n, amount=999 if n in (0, 2_999) else 100) for n in range(3_000)]
    objects = FakeObjects(items)
    budget = ScanBudget(enough=500, most=2_000)

    # When
    first = search(objects, "amount:999", budget=budget)

    # Then the page holds what it found within the bound and says there is more
    assert [pi["id"] for pi in first["data"]] == ["pi_002999"]
    assert first["has_more"] and first["next_page"]
    # (a store page may pass `enough` by less than one page; each reads one extra object)
    assert objects.read <= budget.enough + BATCH + objects.calls

    # When the caller follows next_page: nothing matches within `most`, so an empty page
    # still says has_more and where to resume
    objects.read = objects.calls = 0
    second = search(objects, "amount:999", budget=budget, page=first["next_page"])
    assert second["data"] == [] and second["has_more"]
    assert objects.read <= budget.most + objects.calls

    # Then the next page reaches the oldest match and the end
    third = search(objects, "amount:999", budget=budget, page=second["next_page"])
    assert [pi["id"] for pi in third["data"]] == ["pi_000000"]
    assert (third["has_more"], third["next_page"]) == (False, None)


def test_no_match_in_a_small_store_is_an_empty_last_page():
    objects = FakeObjects([stored(n) for n in range(30)])
    body = search(objects, 'status:"succeeded"')
    assert (body["data"], body["has_more"], body["next_page"]) == ([], False, None)


def test_a_bad_query_reads_nothing():
    objects = FakeObjects([stored(1)])
    with pytest.raises(ParameterInvalid):
        search(objects, "nope:1")
    assert objects.calls == 0


@pytest.mark.parametrize(
    "page",
    ["", "not base64 at all!", encode_page("charge", "ch_1"), encode_page(KIND, "")[:-1] + "!"],
)
def test_a_page_cursor_this_search_did_not_issue_is_a_400_on_page(page: str):
    objects = FakeObjects([stored(1)])
    with pytest.raises(ParameterInvalid) as raised:
        search(objects, "amount>0", page=page)
    assert raised.value.param == "page"
    assert objects.calls == 0


def test_a_cursor_round_trips():
    assert decode_page(encode_page(KIND, "pi_123"), KIND) == "pi_123"
    assert decode_page(None, KIND) is None
