"""The OpenAPI document describes exactly the routes the real app serves."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from app import app

OPENAPI_PATH = Path(__file__).parents[2] / "chalicelib" / "api" / "openapi.json"
HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return json.loads(OPENAPI_PATH.read_text(encoding="utf-8"))


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method.upper(), operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in HTTP_METHODS
    ]


def _resolve(document: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    ref = node.get("$ref")
    if ref is None:
        return node
    target: Any = document
    for part in ref.removeprefix("#/").split("/"):
        target = target[part]
    return _resolve(document, target)


def test_documented_routes_are_the_app_routes(document: dict[str, Any]) -> None:
    # Given
    documented = {(path, method) for path, method, _ in _operations(document)}

    # When
    served = {
        (path, method)
        for path, entries in app.routes.items()
        for method in entries
        if method != "OPTIONS"
    }

    # Then: both differences in one message, so one run shows all the drift
    drift = {
        "documented but not served": sorted(documented - served),
        "served but not documented": sorted(served - documented),
    }
    assert drift == {"documented but not served": [], "served but not documented": []}


def test_every_operation_has_a_unique_operation_id(document: dict[str, Any]) -> None:
    # When
    ids = [operation.get("operationId") for _, _, operation in _operations(document)]

    # Then
    assert all(ids), "every operation needs an operationId"
    assert len(ids) == len(set(ids))


def test_every_post_documents_the_idempotency_key_header(document: dict[str, Any]) -> None:
    for path, method, operation in _operations(document):
        if method != "POST":
            continue

        # When
        parameters = [
            _resolve(document, p)
            for p in document["paths"][path].get("parameters", []) + operation.get("parameters", [])
        ]

        # Then
        headers = {p["name"]: p for p in parameters if p["in"] == "header"}
        assert "Idempotency-Key" in headers, path
        assert headers["Idempotency-Key"]["schema"]["maxLength"] == 255, path
