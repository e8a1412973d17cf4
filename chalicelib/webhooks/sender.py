"""The HTTP client that POSTs webhooks: a timeout, no redirects, the first KB of the answer,
and a connection pinned to the addresses that were checked.

SSRF policy (docs/security.md): the host is resolved once per attempt, every address it
resolves to must be globally routable (chalicelib.domain.addresses) unless the sandbox allows
private targets, and the connection goes to those checked addresses, never to a second lookup, so
a name that rebinds to 127.0.0.1 between the check and the connect reaches nothing. The Host
header and, for https, the TLS server name and certificate check stay those of the URL's host.
No proxy is used (a proxy would resolve the name again) and a 3xx is the answer, not a hop.

Kept behind a one-method interface (`Sender.post`) so that the delivery service can be given a
fake in tests and the real client everywhere else.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

from chalicelib.domain.addresses import is_global_address, parse_address
from chalicelib.domain.webhooks import RESPONSE_EXCERPT_BYTES, excerpt

USER_AGENT = "PayFlow/1.0 (+https://github.com/payflow; webhooks)"

Resolver = Callable[[str], Sequence[str]]
Connect = Callable[[tuple[str, int], float], socket.socket]
"""Opens a TCP connection to (address, port) within a timeout: socket.create_connection."""


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


class TargetRefused(Exception):
    """The URL's host resolves to an address webhooks may not be sent to."""


def resolve_host(host: str) -> list[str]:
    """The addresses `host` resolves to, in the resolver's order, without duplicates."""
    infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def checked_addresses(host: str, addresses: Sequence[str], *, allow_private: bool) -> list[str]:
    """The addresses to connect to, in order, once every one of them passed the policy (a name
    with one private answer among public ones is refused: another lookup may pick that one)."""
    if not addresses:
        raise TargetRefused(f"{host} does not resolve")
    if not allow_private:
        for address in addresses:
            if not is_global_address(address):
                raise TargetRefused(f"{host} resolves to {address}, which is not public")
    return list(addresses)


def _open(connect: Connect, addresses: Sequence[str], port: int, timeout: float) -> socket.socket:
    # Each checked address in turn (`localhost` may answer ::1 before 127.0.0.1), never a new
    # lookup: what connects is always something the policy saw.
    failure: OSError = OSError("no address to connect to")
    for address in addresses:
        try:
            return connect((address, port), timeout)
        except OSError as error:
            failure = error
    raise failure


class _PinnedHTTP(http.client.HTTPConnection):
    # http.client sends Host from `host`; only the TCP connection goes to the checked addresses.
    def __init__(
        self, host: str, port: int, *, addresses: Sequence[str], timeout: float, connect: Connect
    ) -> None:
        super().__init__(host, port, timeout=timeout)
        self._seconds = timeout
        self._addresses = addresses
        self._connect = connect

    def connect(self) -> None:
        self.sock = _open(self._connect, self._addresses, self.port, self._seconds)


class _PinnedHTTPS(http.client.HTTPSConnection):
    def __init__(
        self,
        host: str,
        port: int,
        *,
        addresses: Sequence[str],
        timeout: float,
        connect: Connect,
        context: ssl.SSLContext,
    ) -> None:
        super().__init__(host, port, timeout=timeout, context=context)
        self._seconds = timeout
        self._addresses = addresses
        self._connect = connect
        self._tls = context

    def connect(self) -> None:
        raw = _open(self._connect, self._addresses, self.port, self._seconds)
        # SNI and the certificate check are for the URL's host, not for the address.
        self.sock = self._tls.wrap_socket(raw, server_hostname=self.host)


class PinnedSender:
    """POSTs over http.client to the addresses that passed the policy: `timeout` seconds per
    request, no redirects, no proxy. `allow_private` is the sandbox's allow-list for receivers
    on loopback and private networks (PAYFLOW_SANDBOX); it never skips the single resolution."""

    def __init__(
        self,
        timeout: float = 10.0,
        *,
        allow_private: bool = False,
        resolve: Resolver = resolve_host,
        connect: Connect = socket.create_connection,
        tls: ssl.SSLContext | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._timeout = timeout
        self._allow_private = allow_private
        self._resolve = resolve
        self._connect = connect
        self._tls = tls
        self._clock = clock

    def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> SendResult:
        started = self._clock()
        try:
            status, data = self._post(url, body, headers)
        except Exception as error:
            return SendResult(None, self._elapsed(started), error=excerpt(_describe(error)))
        return SendResult(status, self._elapsed(started), response=excerpt(data))

    def _post(self, url: str, body: bytes, headers: Mapping[str, str]) -> tuple[int, bytes]:
        parts = urlsplit(url)
        host = parts.hostname or ""
        https = parts.scheme == "https"
        port = parts.port or (443 if https else 80)
        addresses = checked_addresses(host, self._resolved(host), allow_private=self._allow_private)
        connection: http.client.HTTPConnection
        if https:
            connection = _PinnedHTTPS(
                host,
                port,
                addresses=addresses,
                timeout=self._timeout,
                connect=self._connect,
                context=self._tls or ssl.create_default_context(),
            )
        else:
            connection = _PinnedHTTP(
                host, port, addresses=addresses, timeout=self._timeout, connect=self._connect
            )
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        try:
            connection.request(
                "POST",
                target,
                body=body,
                headers={
                    "Content-Type": "application/json; charset=utf-8",
                    "User-Agent": USER_AGENT,
                    **headers,
                },
            )
            response = connection.getresponse()
            return response.status, response.read(RESPONSE_EXCERPT_BYTES)
        finally:
            connection.close()

    def _resolved(self, host: str) -> Sequence[str]:
        try:
            return [str(parse_address(host))]
        except ValueError:
            return self._resolve(host)

    def _elapsed(self, started: float) -> int:
        return max(0, round((self._clock() - started) * 1000))


def _describe(error: BaseException) -> str:
    if isinstance(error, TimeoutError | socket.timeout):
        return "timed out"
    if isinstance(error, TargetRefused):
        return f"refused by PayFlow's URL policy: {error}"
    return f"{type(error).__name__}: {error}"
