"""Property-based: random sequences of payments, captures, refunds (concurrent ones included),
cancels and PSP faults, run through the real API and handlers, keep the ledger's invariants
true after every step, and re-running any step changes nothing."""

from __future__ import annotations

import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import requests
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from chalicelib.container import services
from tests.conftest import ADMIN_KEY, Api, new_merchant

PAYMENT_METHODS = [
    "pm_card_visa",
    "pm_card_mastercard",
    "pm_card_chargeDeclined",
    "pm_card_refundFail",
]


SEEN: Counter[str] = Counter()
"""What the runs exercised: the test fails if the interesting paths never ran."""


class LedgerMachine(RuleBasedStateMachine):
    """One merchant, fresh simulators; every rule is an API call with an Idempotency-Key."""

    api_url = ""

    @initialize()
    def start(self) -> None:
        merchant = new_merchant(self.api_url)
        self.merchant_id = merchant["id"]
        self.api = Api(self.api_url, merchant["secret_key"])
        suffix = uuid.uuid4().hex[:6]
        self.connectors = [f"prop_a_{suffix}", f"prop_b_{suffix}"]
        body = {
            "connectors": [
                {"id": c, "kind": "simulator", "priority": i + 1}
                for i, c in enumerate(self.connectors)
            ],
            "circuit_breaker": {"minimum_calls": 1000},
        }
        assert (
            self.api.session.post(self.api_url + "/v1/routing", json=body, timeout=10).status_code
            == 200
        )
        self.payments: list[str] = []
        self.manual: list[str] = []
        # A deterministic pass through every kind of step (the invariants are checked after
        # it), then hypothesis explores from there.
        for manual, pm in (
            (False, "pm_card_visa"),
            (True, "pm_card_visa"),
            (False, "pm_card_refundFail"),
        ):
            self.create(amount=3000, manual=manual, pm=pm, confirm=True)
        visa, held, refund_fails = self.payments
        self._capture(held, 2000)
        self._refund(visa, 1000)
        self._refund(refund_fails, None)
        self._concurrent_refunds(visa, [900, 900, 900])

    def _post(self, path: str, data: dict) -> requests.Response:
        """Send, then send again with the same key: the replay must change nothing."""
        key = uuid.uuid4().hex
        response = self.api.post(path, data, headers={"Idempotency-Key": key})
        snapshot = self._ledger_snapshot()
        again = self.api.post(path, data, headers={"Idempotency-Key": key})
        assert again.status_code == response.status_code
        if response.status_code < 500:
            assert again.json() == response.json()
            assert again.headers.get("Idempotent-Replayed") == "true"
        assert self._ledger_snapshot() == snapshot
        return response

    def _ledger_snapshot(self) -> tuple:
        entries, balances = services().ledger._store.of_merchant(self.merchant_id)
        return tuple(sorted(e.id for e in entries)), tuple(sorted(balances.items()))

    @rule(
        amount=st.integers(100, 5000),
        manual=st.booleans(),
        pm=st.sampled_from(PAYMENT_METHODS),
        confirm=st.booleans(),
    )
    def create(self, amount: int, manual: bool, pm: str, confirm: bool) -> None:
        response = self._post(
            "/v1/payment_intents",
            {
                "amount": amount,
                "currency": "usd",
                "payment_method": pm,
                "capture_method": "manual" if manual else "automatic",
                "confirm": str(confirm).lower(),
            },
        )
        assert response.status_code in (200, 402)
        body = response.json()
        pi = body if response.status_code == 200 else body["error"]["payment_intent"]
        self.payments.append(pi["id"])
        if manual:
            self.manual.append(pi["id"])

    @precondition(lambda self: self.payments)
    @rule(data=st.data())
    def confirm(self, data: st.DataObject) -> None:
        pi = data.draw(st.sampled_from(self.payments))
        response = self._post(
            f"/v1/payment_intents/{pi}/confirm", {"payment_method": "pm_card_visa"}
        )
        assert response.status_code in (200, 400, 402)

    @precondition(lambda self: self.manual)
    @rule(data=st.data(), share=st.floats(0.1, 1.0))
    def capture(self, data: st.DataObject, share: float) -> None:
        pi = data.draw(st.sampled_from(self.manual))
        current = self.api.get(f"/v1/payment_intents/{pi}").json()
        self._capture(pi, max(1, int(current["amount"] * share)))

    def _capture(self, pi: str, amount: int) -> None:
        response = self._post(f"/v1/payment_intents/{pi}/capture", {"amount_to_capture": amount})
        assert response.status_code in (200, 400)
        SEEN[f"capture {response.status_code}"] += 1

    @precondition(lambda self: self.payments)
    @rule(data=st.data(), amount=st.one_of(st.none(), st.integers(1, 3000)))
    def refund(self, data: st.DataObject, amount: int | None) -> None:
        self._refund(data.draw(st.sampled_from(self.payments)), amount)

    def _refund(self, pi: str, amount: int | None) -> None:
        payload = {"payment_intent": pi} | ({"amount": amount} if amount else {})
        response = self._post("/v1/refunds", payload)
        assert response.status_code in (200, 400), response.text
        if response.status_code == 200:
            SEEN[f"refund {response.json()['status']}"] += 1

    @precondition(lambda self: self.payments)
    @rule(data=st.data(), amounts=st.lists(st.integers(1, 1500), min_size=2, max_size=4))
    def concurrent_refunds(self, data: st.DataObject, amounts: list[int]) -> None:
        self._concurrent_refunds(data.draw(st.sampled_from(self.payments)), amounts)

    def _concurrent_refunds(self, pi: str, amounts: list[int]) -> None:
        def one(amount: int) -> int:
            local = Api(self.api_url, self.api.session.auth[0])
            return local.post("/v1/refunds", {"payment_intent": pi, "amount": amount}).status_code

        with ThreadPoolExecutor(len(amounts)) as pool:
            codes = list(pool.map(one, amounts))
        assert set(codes) <= {200, 400, 409}
        SEEN["concurrent refunds"] += 1

    @precondition(lambda self: self.payments)
    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        pi = data.draw(st.sampled_from(self.payments))
        assert self._post(f"/v1/payment_intents/{pi}/cancel", {}).status_code in (200, 400)

    @rule(error_rate=st.sampled_from([0.0, 0.3, 0.6]), refund_decline=st.sampled_from([0.0, 0.5]))
    def psp_faults(self, error_rate: float, refund_decline: float) -> None:
        for connector in self.connectors:
            response = requests.post(
                f"{self.api_url}/v1/connectors/{connector}",
                json={
                    "error_rate": error_rate,
                    "refund_decline_rate": refund_decline,
                    "seed": len(self.payments),
                },
                headers={"Authorization": f"Bearer {ADMIN_KEY}"},
                timeout=10,
            )
            assert response.status_code == 200, response.text

    def _everything(self, path: str) -> list[dict]:
        page = self.api.get(path, params={"limit": 100}).json()
        assert not page["has_more"], f"{path}: more than one page"
        return list(page["data"])

    @invariant()
    def ledger_balances(self) -> None:
        if not hasattr(self, "merchant_id"):
            return
        report = services().ledger.check(self.merchant_id)
        assert report.ok, (report.unbalanced, report.drift)

    @invariant()
    def payments_match_their_ledger(self) -> None:
        if not getattr(self, "payments", None):
            return
        # The merchant is this run's own: one page of each list holds everything it made.
        intents = self._everything("/v1/payment_intents")
        refunds = self._everything("/v1/refunds")
        txns = self._everything("/v1/balance_transactions")
        by_id = {pi["id"]: pi for pi in intents}
        assert set(self.payments) <= set(by_id), set(self.payments) - set(by_id)
        for pi_id in self.payments:
            pi = by_id[pi_id]
            mine = [r for r in refunds if r["payment_intent"] == pi_id]
            live = sum(r["amount"] for r in mine if r["status"] in ("pending", "succeeded"))
            assert live <= pi["amount_received"], (pi_id, live, pi["amount_received"])
            charged = [
                t for t in txns if t["type"] == "charge" and t["source"] == pi["latest_charge"]
            ]
            if pi["status"] == "succeeded":
                assert sum(t["amount"] for t in charged) == pi["amount_received"]
            else:
                assert pi["amount_received"] == 0 and not charged
            for refund in mine:
                held = [t for t in txns if t["source"] == refund["id"]]
                total = sum(t["amount"] for t in held)
                expected = {
                    "succeeded": -refund["amount"],
                    "failed": 0,
                    "pending": -refund["amount"],
                }[refund["status"]]
                assert total == expected, (refund, held)


def test_ledger_invariants_hold_under_random_operations(api_url: str) -> None:
    LedgerMachine.api_url = api_url
    run = LedgerMachine.TestCase
    run.settings = settings(
        max_examples=6,
        stateful_step_count=8,
        deadline=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    SEEN.clear()
    run().runTest()
    assert SEEN["refund succeeded"] >= 6 and SEEN["capture 200"] >= 6, SEEN
    assert SEEN["concurrent refunds"] >= 6 and SEEN["refund failed"] >= 6, SEEN
