"""Stripe's search endpoints over the object store, once for every searchable kind.

A search reads the merchant's objects of one kind newest first, page by page through
`ObjectStore.list`, and keeps those the query matches (`chalicelib.domain.search`). There is no
search index: the work per request is bounded instead (`ScanBudget`), and a page that hit the
bound says so with `has_more` and a `next_page` that resumes where the reading stopped.

Consistency: the store's list reads a DynamoDB global secondary index, which is eventually
consistent (typically well under a second on AWS). Stripe's search lags by up to a minute and
tells callers not to use it for read-after-write; PayFlow lags less but promises no more.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any

from chalicelib.dal.objects import INDEXED_BY, ObjectStore
from chalicelib.domain.search import matches, parse, required_value
from chalicelib.errors import ParameterInvalid

BATCH = 500
"""Most objects read per store page. The first page reads only `limit + 1` and each next one
twice as many, so a query most objects match reads little more than it returns, and a sparse
one needs few Query calls (each a round trip to the table)."""


@dataclass(frozen=True)
class ScanBudget:
    """How many stored objects one search request may read.

    A page ends at `limit` matches (plus one, to know there are more), at the end of the
    merchant's objects, or at a bound: after `enough` objects once it has a match, after
    `most` objects even without one. A bounded page may hold fewer than `limit` results, and
    when nothing matched in `most` objects it is empty with `has_more` true: follow
    `next_page` while `has_more` (stripe-python's auto-paging stops at an empty page).
    """

    enough: int = 1_000
    most: int = 3_000


def search_body(
    objects: ObjectStore,
    kind: str,
    model: type[Any],
    merchant_id: str,
    url: str,
    *,
    query: str,
    limit: int,
    page: str | None,
    budget: ScanBudget = ScanBudget(),
) -> dict[str, Any]:
    """A Stripe search result of the merchant's objects of `kind` that match `query`, newest
    first, `limit` at most, continuing after the opaque cursor `page`."""
    parsed = parse(query, kind)
    cursor = decode_page(page, kind)
    # A query that pins an indexed field's value reads only those objects, through its index.
    indexed = next(
        (
            (name, value)
            for name in INDEXED_BY
            if (value := required_value(parsed, name)) is not None
        ),
        None,
    )
    found: list[dict[str, Any]] = []
    scanned = 0
    size = limit + 1
    more = True
    while more and len(found) <= limit:
        if scanned >= budget.most or (found and scanned >= budget.enough):
            break
        batch = objects.list(
            kind,
            merchant_id,
            limit=min(size, BATCH, budget.most - scanned),
            starting_after=cursor,
            indexed=indexed,
        )
        size *= 2
        more = batch.has_more
        for item in batch.items:
            scanned += 1
            cursor = item["id"]
            obj = model.model_validate(item)
            body = obj.to_api()
            view = obj.search_view() if hasattr(obj, "search_view") else body
            if matches(parsed, view):
                found.append(body)
                if len(found) > limit:
                    # The extra match only proves there is more; the next page starts after
                    # the last one returned.
                    more = True
                    cursor = found[limit - 1]["id"]
                    break
    data = found[:limit]
    return {
        "object": "search_result",
        "data": data,
        "has_more": more,
        "next_page": encode_page(kind, cursor) if more and cursor else None,
        "url": url,
    }


def encode_page(kind: str, after: str) -> str:
    """The opaque `next_page` cursor: read on after object id `after` of `kind`."""
    return base64.urlsafe_b64encode(f"{kind}:{after}".encode()).decode().rstrip("=")


def decode_page(page: str | None, kind: str) -> str | None:
    """The object id a `page` cursor continues after; a cursor this search did not issue is
    a 400 on `page`."""
    if page is None:
        return None
    try:
        text = base64.urlsafe_b64decode(page + "=" * (-len(page) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        text = ""
    prefix, _, after = text.partition(":")
    if prefix != kind or not after:
        raise ParameterInvalid(
            "Invalid page: pass the next_page value of a previous search of this resource.",
            param="page",
        )
    return after
