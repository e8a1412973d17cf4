"""Hostile requests against the running sandbox: each is refused Stripe-shaped, none is a 5xx,
and none writes anything (the merchant's objects stay exactly as they were)."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib.api.forms import MAX_BODY_BYTES, MAX_PARAMETERS
from tests.conftest import Api
from tests.integration.table_writes import TableWrites


@pytest.fixture
def writes(sandbox: Any) -> TableWrites:
    """The payments table's writes from the start of the test on."""
    return TableWrites(sandbox)


@pytest.fixture
def untouched(merchant: dict, writes: TableWrites) -> Iterator[None]:
    """Fails the test if anything of the merchant's was written (added, changed or removed)
    while it ran."""
    writes.records()
    yield
    assert writes.of_merchant(merchant["id"]) == []


def raw_request(
    api: Api, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    """One request sent exactly as given: no client re-quotes the path or fixes the body."""
    parts = urlsplit(api.base)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    key = api.session.auth[0]  # type: ignore[index]
    try:
        connection.request(
            method,
            path,
            body=body,
            headers={"Authorization": f"Bearer {key}", **(headers or {})},
        )
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def assert_stripe_error(status: int, body: bytes, expected: int, code: str | None = None) -> dict:
    assert status == expected, body[:500]
    error = json.loads(body)["error"]
    assert error["type"] == "invalid_request_error"
    if code:
        assert error["code"] == code, error
    return error


def create_intent(api: Api) -> str:
    response = api.post("/v1/payment_intents", {"amount": 500, "currency": "usd"})
    assert response.status_code == 200, response.text
    return str(response.json()["id"])


def test_an_empty_metadata_key_is_refused_and_reads_keep_working(
    api: Api, merchant: dict, writes: TableWrites
):
    intent = create_intent(api)
    writes.records()
    for data in ({"metadata[]": "x"}, {"metadata[ ]": "x"}):
        response = api.post(f"/v1/payment_intents/{intent}", data)
        assert response.status_code == 400 and response.json()["error"]["param"] == "metadata"
    as_json = api.post(
        "/v1/payment_intents",
        data=json.dumps({"amount": 100, "currency": "usd", "metadata": {"": "x"}}),
        headers={"Content-Type": "application/json"},
    )
    assert as_json.status_code == 400
    assert as_json.json()["error"]["code"] == "parameter_invalid_metadata"
    assert writes.of_merchant(merchant["id"]) == []
    assert api.get(f"/v1/payment_intents/{intent}").status_code == 200
    assert api.get("/v1/payment_intents").status_code == 200
    assert api.get("/v1/events").status_code == 200


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/x-www-form-urlencoded", ("a" + "[b]" * 500 + "=1").encode()),
        ("application/json", b'{"metadata":' + b"[" * 2000 + b"]" * 2000 + b"}"),
        ("application/json", b'{"metadata":' + b'{"a":' * 2000 + b"1" + b"}" * 2001),
    ],
)
def test_deep_bodies_are_400(api: Api, untouched: None, content_type: str, body: bytes):
    status, _, answer = raw_request(
        api, "POST", "/v1/payment_intents", body, {"Content-Type": content_type}
    )
    assert_stripe_error(status, answer, 400)


def test_deep_query_keys_are_400(api: Api):
    response = api.get("/v1/payment_intents?" + "a" + "[b]" * 500 + "=1")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "parameters_exceed_max_depth"


def test_a_body_over_the_limit_is_a_stripe_shaped_413(api: Api, untouched: None):
    body = b"description=" + b"x" * MAX_BODY_BYTES
    status, _, answer = raw_request(
        api,
        "POST",
        "/v1/payment_intents",
        body,
        {"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert_stripe_error(status, answer, 413, "request_too_large")


def test_many_fields_are_refused_quickly(api: Api):
    body = "&".join(f"metadata[k{i}]=v" for i in range(MAX_PARAMETERS * 20)).encode()
    status, _, answer = raw_request(
        api,
        "POST",
        "/v1/payment_intents",
        body,
        {"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert_stripe_error(status, answer, 400, "parameters_exceed_max")


def test_arabic_indic_digits_are_not_an_amount(api: Api, untouched: None):
    response = api.post("/v1/payment_intents", {"amount": "\u0661\u0660\u0660", "currency": "usd"})
    assert response.status_code == 400 and response.json()["error"]["param"] == "amount"


def test_utf16_json_is_refused(api: Api, untouched: None):
    body = json.dumps({"amount": 100, "currency": "usd"}).encode("utf-16")
    status, _, answer = raw_request(
        api, "POST", "/v1/payment_intents", body, {"Content-Type": "application/json"}
    )
    assert_stripe_error(status, answer, 400, "parameter_invalid_encoding")


@pytest.mark.parametrize("suffix", ["%2Fcancel", "%2fcancel", "%2F..%2Fcancel", "%3Fa=b"])
def test_an_encoded_slash_or_question_mark_is_part_of_an_unknown_id(api: Api, suffix: str):
    intent = create_intent(api)
    status, _, answer = raw_request(api, "POST", f"/v1/payment_intents/{intent}{suffix}")
    assert_stripe_error(status, answer, 404, "resource_missing")
    assert api.get(f"/v1/payment_intents/{intent}").json()["status"] == "requires_payment_method"


def test_an_encoded_question_mark_is_not_a_list(api: Api):
    status, _, answer = raw_request(api, "GET", "/v1/balance_transactions/%3F")
    assert_stripe_error(status, answer, 404, "resource_missing")


@pytest.mark.parametrize("method", ["TRACE", "PUT", "PATCH", "CONNECT", "OPTIONS", "FOO"])
def test_unsupported_methods_are_stripe_shaped_405s(api: Api, method: str):
    status, headers, answer = raw_request(api, method, "/v1/payment_intents")
    assert_stripe_error(status, answer, 405, "method_not_allowed")
    assert "POST" in headers["Allow"]


_SEGMENTS = st.sampled_from(
    [
        "v1",
        "payment_intents",
        "refunds",
        "events",
        "webhook_endpoints",
        "balance_transactions",
        "cancel",
        "confirm",
        "capture",
        "deliveries",
        "sandbox",
        "merchants",
        "connectors",
        "x",
        "%2F",
        "%3F",
        "%00",
        "%25",
        "..",
        "%2e%2e",
        "pi_" + "A" * 24,
        "%E2%80%AE",
        "%ff",
        "",
    ]
)
_PATHS = st.lists(_SEGMENTS, min_size=1, max_size=5).map(lambda parts: "/" + "/".join(parts))
_BODIES = st.one_of(
    st.binary(max_size=200),
    st.text(alphabet="ab[]=&%0123456789\u0663", max_size=200).map(str.encode),
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=5),
        lambda inner: (
            st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3)
        ),
        max_leaves=20,
    ).map(lambda value: json.dumps({"metadata": value}).encode()),
)
_CONTENT_TYPES = st.sampled_from(
    ["application/x-www-form-urlencoded", "application/json", "text/plain", ""]
)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    method=st.sampled_from(["GET", "POST", "DELETE", "TRACE", "PUT"]),
    path=_PATHS,
    query=st.text(alphabet="ab[]=&%0123", max_size=40),
    body=_BODIES,
    content_type=_CONTENT_TYPES,
)
def test_no_request_is_a_5xx_or_a_write(
    api: Api,
    merchant: dict,
    writes: TableWrites,
    method: str,
    path: str,
    query: str,
    body: bytes,
    content_type: str,
):
    headers = {"Content-Type": content_type} if content_type else {}
    writes.records()  # what earlier examples wrote is theirs
    target = path + (f"?{query}" if query else "")
    status, _, answer = raw_request(api, method, target, body if method != "GET" else b"", headers)
    assert status < 500, (method, target, answer[:300])
    if status >= 400:
        assert "error" in json.loads(answer)
    if status >= 400:
        # A refused request leaves no trace (a create that happens to be valid may write).
        assert writes.of_merchant(merchant["id"]) == [], (method, target, answer[:300])


@pytest.mark.parametrize("path", ["/v1/nothing_here", "/v1/payment_intents"])
def test_a_non_ascii_authorization_header_is_a_stripe_error(api: Api, path: str):
    parts = urlsplit(api.base)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        connection.putrequest("GET", path)
        connection.putheader("Authorization", b"Bearer sk_test_\xe9\xff")
        connection.endheaders()
        response = connection.getresponse()
        status, body = response.status, response.read()
    finally:
        connection.close()
    assert status in (401, 404), body
    assert json.loads(body)["error"]["type"] == "invalid_request_error"
