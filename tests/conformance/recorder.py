"""Records every JSON body the test suite receives from PayFlow and checks it against Stripe's
schemas (tests/conformance/schemas.py).

Bodies arrive through `requests` response hooks (the tests' `Api` client, stripe-python's HTTP
client) and from the webhook receivers; tests/conftest.py fails a test whose bodies deviate and
prints the totals in the terminal summary.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

import requests

from tests.conformance.known_deviations import KNOWN_DEVIATIONS, is_known
from tests.conformance.schemas import Deviation, StripeSchemas, UnknownObject

PAYFLOW_EXTENSIONS: Final = frozenset(
    {
        "alert_settings",
        "analytics",
        "balance_release",
        "circuit_move",
        "connector",
        "connector_alert",
        "customer_action",
        "execution",
        "merchant",
        "metrics",
        "payment_attempt",
        "reconciliation.bank_statement",
        "reconciliation.bank_statement_entry",
        "reconciliation.discrepancy",
        "reconciliation.exception",
        "reconciliation.run",
        "routing",
        "simulator_sweep",
        "webhook_dead_letter_queue",
        "webhook_delivery",
        "webhook_endpoint.resend",
        "webhook_endpoint_health",
    }
)
"""`object` values of PayFlow's own objects (sandbox, routing, delivery logs): Stripe has no
schema for them, so they are counted, not validated. Anything else must be a Stripe object."""

SANDBOX_PREFIX: Final = "/v1/sandbox/"
_RUNTIME_500: Final = {"Code", "Message"}


@dataclass(frozen=True)
class Failure:
    """A body that does not conform, where it came from, and during which test."""

    source: str
    test: str | None
    problem: str


class BodyRecorder:
    """Validates bodies as they arrive and keeps the tally (thread-safe: receivers record from
    their own threads)."""

    def __init__(self, schemas: Callable[[], StripeSchemas]) -> None:
        self._schemas_factory = schemas
        self._schemas: StripeSchemas | None = None
        self._lock = threading.Lock()
        self.validated = 0
        """Bodies (and objects inside lists and events) checked against a Stripe schema."""
        self.extensions = 0
        """Bodies that are PayFlow's own objects."""
        self.crashes = 0
        """5xx bodies of the runtime, not PayFlow (a simulated Lambda crash)."""
        self.failures: list[Failure] = []
        self.known: Counter[tuple[str, str]] = Counter()
        self.current_test: str | None = None

    @property
    def schemas(self) -> StripeSchemas:
        if self._schemas is None:
            self._schemas = self._schemas_factory()
        return self._schemas

    def on_response(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        """A `requests` response hook: record the body if it is JSON from PayFlow's API."""
        if "json" not in response.headers.get("content-type", ""):
            return
        path = urlsplit(response.url).path
        source = f"{response.request.method} {path} -> {response.status_code}"
        try:
            body = response.json()
        except ValueError:
            self._fail(source, "the body is not JSON though its content type says so")
            return
        if response.status_code >= 500 and isinstance(body, dict) and set(body) == _RUNTIME_500:
            # Chalice's answer when a view raised past PayFlow (the fault injector's crashes);
            # on AWS, API Gateway's. Not PayFlow's body, so not Stripe's to match.
            with self._lock:
                self.crashes += 1
            return
        if path.startswith("/v1/") or (isinstance(body, dict) and "error" in body):
            self.record(body, source=source, path=path)

    def record_bytes(self, raw: bytes, *, source: str) -> None:
        """Record a raw JSON body (a delivered webhook)."""
        try:
            body = json.loads(raw)
        except ValueError:
            self._fail(source, "the body is not JSON")
            return
        self.record(body, source=source)

    def record(self, body: Any, *, source: str, path: str | None = None) -> None:
        """Validate one body; deviations not in the allow-list become failures."""
        if not isinstance(body, dict):
            self._fail(source, f"the body is a {type(body).__name__}, not an object")
            return
        for problem in self._check(body, path):
            if isinstance(problem, Deviation):
                key = is_known(problem.object, problem.field)
                if key is not None:
                    with self._lock:
                        self.known[key] += 1
                    continue
            self._fail(source, str(problem))

    def _check(self, body: dict[str, Any], path: str | None) -> list[Deviation | str]:
        kind = body.get("object")
        if kind in PAYFLOW_EXTENSIONS or (
            kind is None and "error" not in body and (path or "").startswith(SANDBOX_PREFIX)
        ):
            with self._lock:
                self.extensions += 1
            return []
        try:
            found: list[Deviation | str] = list(self.schemas.deviations(body, path))
        except UnknownObject as unknown:
            if kind == "list" and isinstance(body.get("data"), list):
                # A list at a PayFlow route (deliveries, attempts): each item on its own.
                return [p for item in body["data"] for p in self._check(item, None)]
            return [f"{unknown}: neither a Stripe object nor a PayFlow extension"]
        with self._lock:
            self.validated += 1
        return found

    def _fail(self, source: str, problem: str) -> None:
        with self._lock:
            self.failures.append(Failure(source, self.current_test, problem))

    def failures_of(self, test: str) -> list[Failure]:
        """The failures recorded while `test` ran."""
        with self._lock:
            return [f for f in self.failures if f.test == test]

    def tally(self) -> dict[str, Any]:
        """The counts and failures as plain data, for a pytest-xdist worker to hand on."""
        with self._lock:
            return {
                "validated": self.validated,
                "extensions": self.extensions,
                "crashes": self.crashes,
                "failures": [(f.source, f.test, f.problem) for f in self.failures],
                "known": [[*key, count] for key, count in self.known.items()],
            }

    def add(self, tally: dict[str, Any]) -> None:
        """Adds a worker's `tally()` to this one (the controller of a parallel run)."""
        with self._lock:
            self.validated += tally["validated"]
            self.extensions += tally["extensions"]
            self.crashes += tally["crashes"]
            self.failures.extend(Failure(*failure) for failure in tally["failures"])
            for object_type, field, count in tally["known"]:
                self.known[(object_type, field)] += count

    def stale_allowances(self) -> list[tuple[str, str]]:
        """Allow-list entries no body needed (fixed, so they can go)."""
        return sorted(key for key in KNOWN_DEVIATIONS if not self.known[key])

    def summary(self) -> list[str]:
        """Lines for the terminal summary."""
        lines = [
            f"{self.validated} bodies validated against Stripe's schemas, "
            f"{self.extensions} PayFlow extension bodies, {self.crashes} runtime 5xx bodies, "
            f"{len(self.failures)} failing"
        ]
        for (object_type, field), count in sorted(self.known.items()):
            lines.append(f"  known deviation {object_type}.{field}: {count} bodies")
        if self.validated and self.known:
            stale = self.stale_allowances()
            if stale:
                lines.append(f"  allow-list entries no body needed: {stale}")
        for failure in self.failures[:20]:
            lines.append(f"  FAIL {failure.source} ({failure.test}): {failure.problem}")
        return lines


RECORDER: Final = BodyRecorder(StripeSchemas.load)
"""The session's recorder: one tally for every client and receiver of the suite."""


def recorded_session() -> requests.Session:
    """A `requests.Session` whose every response the recorder checks."""
    session = requests.Session()
    session.hooks["response"].append(RECORDER.on_response)
    return session
