"""A small client of PayFlow's HTTP API for the developer commands (standard library only).

Requests go straight to the sandbox (proxies ignored: it is on 127.0.0.1), form-encoded the
way stripe-python encodes them, with the merchant's key as a bearer token.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from typing import Any

from payflow.locate import CliError

LOCAL = urllib.request.build_opener(urllib.request.ProxyHandler({}))
"""An opener that ignores proxy settings: PayFlow and webhook receivers are local."""


class ApiError(CliError):
    """PayFlow answered with an error: its HTTP status and Stripe-shaped body."""

    def __init__(self, method: str, url: str, status: int, body: dict[str, Any]) -> None:
        error = body.get("error") if isinstance(body.get("error"), dict) else {}
        self.status = status
        self.error: dict[str, Any] = error or {}
        summary = self.error.get("message") or json.dumps(body)[:200]
        code = self.error.get("code") or self.error.get("type") or ""
        super().__init__(f"{method} {url}: HTTP {status} {code}: {summary}".replace("  ", " "))


def form(data: Mapping[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """`data` in Stripe's form encoding: nested maps as ``a[b]``, lists as ``a[0]``,
    booleans as ``true``/``false``; None values are left out."""
    pairs: list[tuple[str, str]] = []
    for key, value in data.items():
        name = f"{prefix}[{key}]" if prefix else str(key)
        if value is None:
            continue
        if isinstance(value, Mapping):
            pairs += form(value, name)
        elif isinstance(value, list | tuple):
            for index, item in enumerate(value):
                if isinstance(item, Mapping):
                    pairs += form(item, f"{name}[{index}]")
                else:
                    pairs.append((f"{name}[{index}]", _scalar(item)))
        else:
            pairs.append((name, _scalar(value)))
    return pairs


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class ApiClient:
    """PayFlow's API at `base` as the holder of `api_key`."""

    def __init__(self, base: str, api_key: str, *, timeout: float = 30.0) -> None:
        self.base = base.rstrip("/")
        self.api_key = api_key
        self.timeout = timeout

    def post(
        self,
        path: str,
        data: Mapping[str, Any] | None = None,
        *,
        idempotency_key: str | None = None,
        as_json: bool = False,
    ) -> dict[str, Any]:
        """POST `data` form-encoded (or as JSON, which PayFlow accepts too)."""
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        return self.request("POST", path, data or {}, headers, as_json=as_json)

    def get(self, path: str, query: Mapping[str, Any] | None = None) -> dict[str, Any]:
        suffix = f"?{urllib.parse.urlencode(form(query))}" if query else ""
        return self.request("GET", path + suffix)

    def delete(self, path: str) -> dict[str, Any]:
        return self.request("DELETE", path)

    def request(
        self,
        method: str,
        path: str,
        data: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        *,
        as_json: bool = False,
    ) -> dict[str, Any]:
        """The decoded answer; ApiError on an HTTP error, CliError when nothing answers."""
        url = self.base + path
        sent = {"Authorization": f"Bearer {self.api_key}", "User-Agent": "payflow-cli"}
        body: bytes | None = None
        if data is not None and as_json:
            body = json.dumps(data).encode()
            sent["Content-Type"] = "application/json"
        elif data is not None:
            body = urllib.parse.urlencode(form(data)).encode()
        request = urllib.request.Request(
            url, data=body, method=method, headers={**sent, **(headers or {})}
        )
        try:
            with LOCAL.open(request, timeout=self.timeout) as response:
                answer: dict[str, Any] = json.loads(response.read() or b"{}")
                return answer
        except urllib.error.HTTPError as error:
            raw = error.read().decode(errors="replace")
            try:
                parsed = json.loads(raw)
            except ValueError:
                parsed = {"error": {"message": raw[:200]}}
            raise ApiError(method, url, error.code, parsed) from None
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise CliError(
                f"cannot reach PayFlow at {self.base} ({reason}): is the sandbox running "
                "(make dev)?"
            ) from None
