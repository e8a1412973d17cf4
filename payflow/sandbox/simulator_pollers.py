"""The simulator PSP's own background work in the sandbox: it is another company's system.

A real PSP decides on its own clock when a UPI request has expired and when to send (and send
again) its webhooks. The sandbox plays that with one poller: each round expires the customer
actions whose time is up (read from the business clock, so `POST /v1/sandbox/clock` moves them)
and POSTs the simulator's pending webhooks to the sandbox's own `/v1/psp_webhooks/simulator`.

On AWS the scheduled `simulator_tick` function (app.py) does the same once a minute. The
sandbox runs no schedules (it collects event source mappings only, never EventBridge rules),
so that function never runs here beside this poller.
"""

from __future__ import annotations

from chalicelib.connectors.simulator_webhooks import Post, post_with
from chalicelib.webhooks.sender import PinnedSender

SIMULATOR_WEBHOOK_SECRET = "whsec_simulator_sandbox_only"
"""The sandbox's default signing secret for the simulator's webhooks (not a real secret)."""


def post_over_http(url: str, body: bytes, headers: dict[str, str]) -> int:
    """POST a webhook to the sandbox's own API (on loopback, hence `allow_private`): the status
    PayFlow answered. The same client the deployed simulator_tick function posts with."""
    return post_with(PinnedSender(allow_private=True))(url, body, headers)


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
        post: Post = post_over_http,
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
