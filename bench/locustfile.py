"""`make load`: a bounded, headless locust run against the API.

`make load` starts an embedded sandbox on free ports (bench/load.py) and runs
`locust --headless -u 10 -r 5 -t 30s` against it; point it at any running PayFlow with
`locust -f bench/locustfile.py --headless -u 10 -r 5 -t 30s --host http://127.0.0.1:8000`
(PAYFLOW_SECRET_KEY picks the key, default the sandbox's demo key).
"""

from __future__ import annotations

import os
import random
import uuid

from locust import HttpUser, between, task

KEY = os.environ.get("PAYFLOW_SECRET_KEY", "sk_test_payflow")


class Merchant(HttpUser):
    """A merchant's server: pays, captures later, reads and lists, as a checkout would."""

    wait_time = between(0.05, 0.2)

    def on_start(self) -> None:
        self.client.auth = (KEY, "")
        self.recent: list[str] = []

    @task(6)
    def pay(self) -> None:
        with self.client.post(
            "/v1/payment_intents",
            data={
                "amount": random.randint(100, 50_000),
                "currency": "usd",
                "payment_method": "pm_card_visa",
                "confirm": "true",
            },
            headers={"Idempotency-Key": uuid.uuid4().hex},
            name="POST /v1/payment_intents (confirm)",
            catch_response=True,
        ) as response:
            if response.status_code == 200:
                self.recent = [response.json()["id"], *self.recent[:19]]
                response.success()
            else:
                response.failure(f"{response.status_code}: {response.text[:200]}")

    @task(2)
    def authorize_then_capture(self) -> None:
        held = self.client.post(
            "/v1/payment_intents",
            data={
                "amount": 2500,
                "currency": "eur",
                "payment_method": "pm_card_mastercard",
                "capture_method": "manual",
                "confirm": "true",
            },
            name="POST /v1/payment_intents (manual)",
        )
        if held.status_code == 200 and held.json()["status"] == "requires_capture":
            self.client.post(
                f"/v1/payment_intents/{held.json()['id']}/capture",
                name="POST /v1/payment_intents/{id}/capture",
            )

    @task(1)
    def decline(self) -> None:
        with self.client.post(
            "/v1/payment_intents",
            data={
                "amount": 900,
                "currency": "usd",
                "payment_method": "pm_card_chargeDeclined",
                "confirm": "true",
            },
            name="POST /v1/payment_intents (declined)",
            catch_response=True,
        ) as response:
            if response.status_code == 402:
                response.success()
            else:
                response.failure(f"expected 402, got {response.status_code}")

    @task(4)
    def retrieve(self) -> None:
        if self.recent:
            self.client.get(
                f"/v1/payment_intents/{random.choice(self.recent)}",
                name="GET /v1/payment_intents/{id}",
            )

    @task(2)
    def list_recent(self) -> None:
        self.client.get("/v1/payment_intents", params={"limit": 10}, name="GET /v1/payment_intents")
