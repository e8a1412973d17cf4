"""The docs blueprint, mounted on a throwaway app: OpenAPI document, offline Swagger UI, assets."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from urllib.parse import urljoin, urlsplit

import pytest
from chalice import Chalice
from chalice.test import Client

from chalicelib.api.docs import docs

BASE = "http://payflow.test"


@pytest.fixture(scope="module")
def client() -> Iterator[Client]:
    # Registering the blueprint makes this app its `current_app` for the whole process: the
    # session sandbox's app gets it back after, or its /openapi.json would be this app's.
    before = docs._current_app
    app = Chalice(app_name="docs-test")
    app.register_blueprint(docs)
    try:
        with Client(app) as test_client:
            yield test_client
    finally:
        docs._current_app = before


def _references(html: str) -> list[str]:
    return re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", html)


def test_openapi_json_is_an_openapi_3_document(client: Client) -> None:
    # When
    response = client.http.get("/openapi.json")

    # Then
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    document = json.loads(response.body)
    assert document["openapi"].startswith("3.")
    # Generated from the app it is mounted on: this throwaway app serves only the docs.
    assert sorted(document["paths"]) == ["/docs", "/docs/{asset}", "/openapi.json"]


def test_openapi_json_passes_the_openapi_validator(client: Client) -> None:
    validator = pytest.importorskip("openapi_spec_validator")

    # When
    document = json.loads(client.http.get("/openapi.json").body)

    # Then: raises on any schema violation or dangling $ref
    validator.validate(document)


def test_docs_page_loads_only_local_assets(client: Client) -> None:
    # When
    response = client.http.get("/docs")

    # Then
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/html")
    html = response.body.decode()
    assert 'id="swagger-ui"' in html
    assert not re.search(r"https?://", html), "the page must not load anything from a CDN"
    assets = [ref for ref in _references(html) if not ref.startswith("data:")]
    assert assets
    for ref in assets:
        url = urlsplit(urljoin(f"{BASE}/docs", ref))
        assert url.netloc == "payflow.test", ref
        assert url.path.startswith("/docs/"), ref


def test_every_asset_the_page_references_is_served(client: Client) -> None:
    # Given
    html = client.http.get("/docs").body.decode()
    paths = [
        urlsplit(urljoin(f"{BASE}/docs", ref)).path
        for ref in _references(html)
        if not ref.startswith("data:")
    ]

    # When / Then
    for path in paths:
        response = client.http.get(path)
        assert response.status_code == 200, path


def test_docs_page_forbids_third_party_origins(client: Client) -> None:
    # When
    csp = client.http.get("/docs").headers["Content-Security-Policy"]

    # Then
    assert "default-src 'none'" in csp
    assert "script-src 'self'" in csp
    assert "connect-src 'self'" in csp


@pytest.mark.parametrize(
    ("asset", "content_type"),
    [
        ("swagger-ui-bundle.js", "text/javascript"),
        ("swagger-ui.css", "text/css"),
        ("payflow-docs.js", "text/javascript"),
    ],
)
def test_asset_is_served_with_its_content_type(
    client: Client, asset: str, content_type: str
) -> None:
    # When
    response = client.http.get(f"/docs/{asset}")

    # Then
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith(content_type)
    assert "Cache-Control" in response.headers
    assert response.body


def test_initializer_points_swagger_ui_at_our_document(client: Client) -> None:
    # When
    script = client.http.get("/docs/payflow-docs.js").body.decode()

    # Then
    assert 'url: "openapi.json"' in script
    assert "petstore" not in script
    assert "validatorUrl: null" in script


@pytest.mark.parametrize(
    "asset",
    ["nope.js", "swagger-ui-bundle.js.map", "__init__.py", "..", "..%2F..%2Fetc%2Fpasswd"],
)
def test_unknown_asset_is_a_stripe_shaped_404(client: Client, asset: str) -> None:
    # When
    response = client.http.get(f"/docs/{asset}")

    # Then
    assert response.status_code == 404
    error = json.loads(response.body)["error"]
    assert error["type"] == "invalid_request_error"
    assert error["code"] == "resource_missing"
