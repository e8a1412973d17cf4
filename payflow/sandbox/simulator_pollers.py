"""The simulator PSP's own background work in the sandbox: it is another company's system.

A real PSP decides on its own clock when a UPI request has expired and when to send (and send
again) its webhooks. The sandbox plays that with one poller: each round expires the customer
actions whose time is up (read from the business clock, so `POST /v1/sandbox/clock` moves them)
and POSTs the simulator's pending webhooks to the sandbox's own `/v1/psp_webhooks/simulator`.
"""

from __future__ import annotations

from collections.abc import Callable

import requests

SIMULATOR_WEBHOOK_SECRET = "whsec_simulator_sandbox_only"
"""The sandbox's default signing secret for the simulator's webhooks (not a real secret)."""


def post_over_http(url: str, body: bytes, headers: dict[str, str]) -> int:
    """POST a webhook; the status PayFlow answered."""
    try:
        return requests.post(url, data=body, headers=headers, timeout=10).status_code
    except requests.RequestException as error:
        raise OSError(str(error)) from error


class SimulatorPoller:
    """Expires due customer actions and delivers the simulator's webhooks (a `Poller`)."""

    name = "simulator"
    concurrency = 1

    def __init__(
        self,
        api_url: str,
        secret: str,
        *,
        interval: float = 0.2,
        post: Callable[[str, bytes, dict[str, str]], int] = post_over_http,
    ) -> None:
        self._url = f"{api_url}/v1/psp_webhooks/simulator"
        self._secret = secret
        self._interval = interval
        self._post = post
        self._rounds = 0

    @property
    def idle_interval(self) -> float:
        return self._interval

    def prepare(self) -> None:
        pass

    def poll_once(self) -> bool:
        from chalicelib.container import services

        self._rounds += 1
        simulator = services().simulator
        expired = simulator.expire_due()
        delivered = simulator.deliver_webhooks(self._post, self._url, self._secret)
        return bool(expired or delivered)

    def mark(self) -> int:
        return self._rounds

    def is_idle(self, mark: int) -> bool:
        return self._rounds > mark + 1
