"""The HTTP client that POSTs webhooks: a timeout, no redirects, the first KB of the answer.

Kept behind a one-method interface (`Sender.post`) so that the delivery service can be given a
fake in tests and the real client everywhere else.
"""

from __future__ import annotations

import ipaddress
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

from chalicelib.domain.webhooks import RESPONSE_EXCERPT_BYTES, excerpt

USER_AGENT = "PayFlow/1.0 (+https://github.com/payflow; webhooks)"


@dataclass(frozen=True)
class SendResult:
    """What one POST produced: an HTTP status with the start of the body, or an error."""

    status_code: int | None
    latency_ms: int
    response: str | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class Sender(Protocol):
    """Sends one webhook request."""

    def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> SendResult: ...


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    # A 3xx is the receiver's answer, not an invitation: following it could lead PayFlow to an
    # address the URL check never saw.
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


class UrllibSender:
    """POSTs with urllib: `timeout` seconds per request, no redirects, no proxy for loopback
    targets (a developer's HTTP_PROXY must not capture calls to 127.0.0.1)."""

    def __init__(
        self,
        timeout: float = 10.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        check_target: Callable[[str], object] | None = None,
    ) -> None:
        self._timeout = timeout
        self._clock = clock
        self._check_target = check_target
        self._direct = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect())
        self._proxied = urllib.request.build_opener(_NoRedirect())

    def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> SendResult:
        started = self._clock()
        request = urllib.request.Request(
            url,
            data=body,
            method="POST",
            headers={
                "Content-Type": "application/json; charset=utf-8",
                "User-Agent": USER_AGENT,
                **headers,
            },
        )
        try:
            if self._check_target is not None:
                self._check_target(url)
            opener = self._direct if _is_loopback(url) else self._proxied
            with opener.open(request, timeout=self._timeout) as response:
                status, data = response.status, response.read(RESPONSE_EXCERPT_BYTES)
        except urllib.error.HTTPError as error:
            status, data = error.code, _read_quietly(error)
        except Exception as error:
            return SendResult(None, self._elapsed(started), error=excerpt(_describe(error)))
        return SendResult(status, self._elapsed(started), response=excerpt(data))

    def _elapsed(self, started: float) -> int:
        return max(0, round((self._clock() - started) * 1000))


def _read_quietly(error: urllib.error.HTTPError) -> bytes:
    try:
        return error.read(RESPONSE_EXCERPT_BYTES)
    except Exception:
        return b""
    finally:
        error.close()


def _describe(error: BaseException) -> str:
    if isinstance(error, urllib.error.URLError):
        error = error.reason if isinstance(error.reason, BaseException) else error
    if isinstance(error, TimeoutError | socket.timeout):
        return "timed out"
    return f"{type(error).__name__}: {error}"


def _is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
