"""Payment orchestration on the executed state machine: retries, failover, hard declines,
circuit breakers, repeated confirms, and a batch of payments under random PSP faults."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from chalicelib.container import services
from payflow.sandbox.pollers import wait_for
from tests.conftest import ADMIN_KEY, CONFIRM_WAIT_MS, Api


def simulators(api: Api, *ids: str, **policy: object) -> list[str]:
    """Route this merchant to fresh simulators (in this order), with a circuit policy."""
    suffix = uuid.uuid4().hex[:6]
    names = [f"{name}_{suffix}" for name in ids]
    body = {
        "connectors": [
            {"id": name, "kind": "simulator", "priority": i + 1, "payment_method_types": ["card"]}
            for i, name in enumerate(names)
        ],
        "circuit_breaker": {
            "window_seconds": 60,
            "failure_rate_threshold": 0.5,
            "minimum_calls": 3,
            "cooldown_seconds": 30,
            **policy,
        },
    }
    response = api.session.post(api.base + "/v1/routing", json=body, timeout=10)
    assert response.status_code == 200, response.text
    return names


def set_simulator(api: Api, connector: str, **settings: object) -> dict:
    response = requests.post(
        f"{api.base}/v1/connectors/{connector}",
        json=settings,
        headers={"Authorization": f"Bearer {ADMIN_KEY}"},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return response.json()


def pay(api: Api, payment_method: str = "pm_card_visa", **extra: object) -> requests.Response:
    return api.post(
        "/v1/payment_intents",
        {
            "amount": 1000,
            "currency": "usd",
            "confirm": "true",
            "payment_method": payment_method,
            **extra,
        },
    )


def attempts(api: Api, pi_id: str) -> dict:
    return api.get(f"/v1/payment_intents/{pi_id}/attempts").json()


def authorizations(pi_id: str) -> list[dict]:
    return [
        r
        for r in services().simulator_ledger.all_records()
        if r.get("operation") == "authorize"
        and r.get("payment_intent") == pi_id
        and r.get("status") == "authorized"
    ]


def test_transient_error_is_retried_then_succeeds(api: Api):
    primary, _backup = simulators(api, "primary", "backup")
    set_simulator(api, primary, fail_next_calls=1, fail_with="unavailable")
    response = pay(api)
    assert response.status_code == 200, response.text
    pi = response.json()
    assert pi["status"] == "succeeded"
    calls = attempts(api, pi["id"])["data"]
    assert [(c["connector"], c["outcome"]) for c in calls] == [
        (primary, "PspUnavailable"),
        (primary, "authorized"),
    ]
    assert all(isinstance(c["latency_ms"], int) for c in calls)
    assert len(authorizations(pi["id"])) == 1


def test_exhausted_retries_fail_over_to_the_next_connector(api: Api):
    primary, backup = simulators(api, "primary", "backup")
    set_simulator(api, primary, fail_next_calls=10, fail_with="rate_limited")
    pi = pay(api).json()
    assert pi["status"] == "succeeded"
    listing = attempts(api, pi["id"])
    outcomes = [(c["connector"], c["outcome"]) for c in listing["data"]]
    # The confirm handler's own try, then the state machine's try and its 2 retries (the
    # sandbox's PspRetryMaxAttempts); the third failure opens the circuit (minimum_calls 3),
    # so the last retry is refused by it; a reconcile, then the backup.
    assert outcomes == [(primary, "PspRateLimited")] * 3 + [
        (primary, "CircuitOpen"),
        (primary, "not_found"),
        (backup, "authorized"),
    ]
    assert listing["routing"][0]["candidates"] == [primary, backup]
    assert [r["connector"] for r in authorizations(pi["id"])] == [backup]


def test_hard_decline_ends_the_attempt_without_failover(api: Api):
    primary, _backup = simulators(api, "primary", "backup")
    response = pay(api, "pm_card_chargeDeclinedInsufficientFunds")
    assert response.status_code == 402
    pi = response.json()["error"]["payment_intent"]
    assert pi["status"] == "requires_payment_method"
    assert pi["last_payment_error"]["decline_code"] == "insufficient_funds"
    assert [(c["connector"], c["outcome"]) for c in attempts(api, pi["id"])["data"]] == [
        (primary, "declined")
    ]


def test_all_connectors_failing_returns_to_requires_payment_method(api: Api):
    primary, backup = simulators(api, "primary", "backup")
    for connector in (primary, backup):
        set_simulator(api, connector, fail_next_calls=10, fail_with="unavailable")
    response = pay(api)
    assert response.status_code == 402
    error = response.json()["error"]
    assert error["code"] == "processing_error"
    assert error["payment_intent"]["status"] == "requires_payment_method"
    assert error["payment_intent"]["last_payment_error"]["code"] == "processing_error"
    assert authorizations(error["payment_intent"]["id"]) == []


def test_a_timeout_that_charged_is_found_and_not_charged_again_elsewhere(api: Api):
    primary, _backup = simulators(api, "primary", "backup")
    # Every call times out; half of simulated timeouts charge before the answer is lost.
    set_simulator(api, primary, timeout_rate=1.0, seed=7)
    pi = pay(api).json()
    charged = authorizations(pi["id"])
    assert len(charged) == 1, charged
    assert pi["status"] == "succeeded"
    outcomes = [c["outcome"] for c in attempts(api, pi["id"])["data"]]
    if charged[0]["connector"] == primary:
        assert "reconciled" in outcomes or "authorized" in outcomes


def test_circuit_opens_after_the_threshold_and_routing_skips_it(api: Api):
    primary, backup = simulators(api, "primary", "backup", minimum_calls=3)
    set_simulator(api, primary, fail_next_calls=3, fail_with="unavailable")
    first = pay(api).json()
    assert first["status"] == "succeeded"
    listed = {c["id"]: c for c in api.get("/v1/connectors").json()["data"]}
    assert listed[primary]["circuit"]["state"] == "open"
    assert listed[primary]["health"] == "down"
    second = pay(api).json()
    decision = attempts(api, second["id"])["routing"][0]
    assert decision["candidates"] == [backup]
    assert decision["skipped"][primary] == "circuit open"


def wait_for_cooldown(connector: str, cooldown_seconds: float) -> None:
    """Until the open circuit's cool-down has passed (by the circuit's own opened_at)."""
    import time

    opened_at = services().circuits.states([connector])[connector].opened_at
    assert opened_at is not None, f"the circuit of {connector} is not open"
    wait_for(lambda: time.time() >= opened_at + cooldown_seconds, timeout=cooldown_seconds + 5)


def test_half_open_probe_closes_the_circuit_on_success(api: Api):
    primary, _backup = simulators(api, "primary", "backup", minimum_calls=3, cooldown_seconds=1)
    set_simulator(api, primary, fail_next_calls=3, fail_with="unavailable")
    pay(api)
    assert {c["id"]: c for c in api.get("/v1/connectors").json()["data"]}[primary]["circuit"][
        "state"
    ] == "open"
    wait_for_cooldown(primary, 1)
    probe = pay(api).json()
    assert [c["connector"] for c in attempts(api, probe["id"])["data"]] == [primary]
    circuit = {c["id"]: c for c in api.get("/v1/connectors").json()["data"]}[primary]["circuit"]
    assert circuit["state"] == "closed" and circuit["calls"] == 0


def test_half_open_probe_failure_reopens(api: Api):
    primary, backup = simulators(api, "primary", "backup", minimum_calls=3, cooldown_seconds=1)
    set_simulator(api, primary, fail_next_calls=3, fail_with="unavailable")
    pay(api)
    wait_for_cooldown(primary, 1)
    set_simulator(api, primary, fail_next_calls=1, fail_with="unavailable")
    probe = pay(api).json()
    assert probe["status"] == "succeeded"
    calls = attempts(api, probe["id"])["data"]
    assert calls[0] == {**calls[0], "connector": primary, "outcome": "PspUnavailable"}
    assert calls[-1]["connector"] == backup
    state = {c["id"]: c for c in api.get("/v1/connectors").json()["data"]}[primary]["circuit"]
    assert state["state"] == "open"


def test_repeated_confirm_while_the_execution_runs_starts_nothing_new(api: Api):
    (slow,) = simulators(api, "slow")
    # The confirm handler's own call fails at once, so the state machine takes over; its
    # call then outlasts the confirm's wait.
    set_simulator(
        api,
        slow,
        fail_next_calls=1,
        latency_ms_min=CONFIRM_WAIT_MS + 800,
        latency_ms_max=CONFIRM_WAIT_MS + 800,
    )
    created = api.post(
        "/v1/payment_intents", {"amount": 500, "currency": "usd", "payment_method": "pm_card_visa"}
    ).json()
    first = api.post(
        f"/v1/payment_intents/{created['id']}/confirm", headers={"Idempotency-Key": "confirm-1"}
    )
    assert first.status_code == 200 and first.json()["status"] == "processing"
    again = api.post(f"/v1/payment_intents/{created['id']}/confirm")
    assert again.status_code == 400
    assert again.json()["error"]["code"] == "payment_intent_unexpected_state"
    replay = api.post(
        f"/v1/payment_intents/{created['id']}/confirm", headers={"Idempotency-Key": "confirm-1"}
    )
    assert replay.headers["Idempotent-Replayed"] == "true"
    # The stream's recovery consumer also starts this execution: same name, same execution.
    pi = services().payment_intents.retrieve(
        created["merchant_id"] if "merchant_id" in created else _merchant_of(api), created["id"]
    )
    services().payment_intents.ensure_execution(pi)
    executions = services().payment_intents._workflows._client.list_executions(
        stateMachineArn=services().settings.payment_state_machine_arn
    )["executions"]
    assert len([e for e in executions if e["name"].startswith(created["id"])]) == 1
    wait_for(
        lambda: api.get(f"/v1/payment_intents/{created['id']}").json()["status"] != "processing",
        timeout=10,
    )
    final = api.get(f"/v1/payment_intents/{created['id']}").json()
    assert final["status"] == "succeeded"
    assert len(authorizations(created["id"])) == 1


def _merchant_of(api: Api) -> str:
    return services().merchants.authenticate(api.session.auth[0])


def test_capture_and_cancel_go_to_the_connector_that_authorized(api: Api):
    primary, backup = simulators(api, "primary", "backup")
    set_simulator(api, primary, enabled=False)
    held = pay(api, capture_method="manual").json()
    assert held["status"] == "requires_capture"
    assert api.post(f"/v1/payment_intents/{held['id']}/capture").json()["status"] == "succeeded"
    captures = [
        r
        for r in services().simulator_ledger.all_records()
        if r.get("operation") == "capture" and held["id"] in r["pk"]
    ]
    assert [c["connector"] for c in captures] == [backup]


def test_routing_by_bin_currency_and_amount(api: Api):
    suffix = uuid.uuid4().hex[:6]
    body = {
        "connectors": [
            {"id": f"mc_only_{suffix}", "kind": "simulator", "priority": 1, "card_bins": ["5*"]},
            {
                "id": f"big_eur_{suffix}",
                "kind": "simulator",
                "priority": 1,
                "currencies": ["eur"],
                "min_amount": 5000,
            },
            {"id": f"rest_{suffix}", "kind": "simulator", "priority": 2},
        ]
    }
    assert api.session.post(api.base + "/v1/routing", json=body, timeout=10).status_code == 200
    visa = pay(api, "pm_card_visa").json()
    decision = attempts(api, visa["id"])["routing"][0]
    assert decision["candidates"] == [f"rest_{suffix}"]
    assert "BIN" in decision["skipped"][f"mc_only_{suffix}"]
    mastercard = pay(api, "pm_card_mastercard").json()
    assert attempts(api, mastercard["id"])["routing"][0]["candidates"][0] == f"mc_only_{suffix}"
    big = api.post(
        "/v1/payment_intents",
        {"amount": 6000, "currency": "eur", "confirm": "true", "payment_method": "pm_card_visa"},
    ).json()
    assert attempts(api, big["id"])["routing"][0]["candidates"][0] == f"big_eur_{suffix}"


def test_invalid_routing_is_a_400_naming_the_field(api: Api):
    response = api.session.post(
        api.base + "/v1/routing", json={"connectors": [{"id": "x", "kind": "paypal"}]}, timeout=10
    )
    assert response.status_code == 400
    assert response.json()["error"]["param"].startswith("connectors[0]")


def test_connector_settings_need_the_admin_key(api: Api):
    response = api.post("/v1/connectors/simulator", {"timeout_rate": "0.5"})
    assert response.status_code == 403
    bad = requests.post(
        f"{api.base}/v1/connectors/simulator",
        data={"timeout_rate": "1.5"},
        headers={"Authorization": f"Bearer {ADMIN_KEY}"},
        timeout=10,
    )
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "timeout_rate"


def test_a_hundred_payments_under_thirty_percent_faults_end_cleanly(api: Api):
    primary, backup = simulators(api, "primary", "backup", minimum_calls=1000)
    for seed, connector in enumerate((primary, backup)):
        set_simulator(api, connector, timeout_rate=0.15, error_rate=0.15, seed=seed)

    def one(i: int) -> dict:
        local = Api(api.base, api.session.auth[0])
        response = local.post(
            "/v1/payment_intents",
            {
                "amount": 100 + i,
                "currency": "usd",
                "confirm": "true",
                "payment_method": "pm_card_visa",
            },
            headers={"Idempotency-Key": f"batch-{i}"},
        )
        assert response.status_code in (200, 402), response.text
        body = response.json()
        return body if response.status_code == 200 else body["error"]["payment_intent"]

    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(one, range(100)))
    statuses: dict[str, int] = {}
    charges: dict[str, list[dict]] = {}
    for record in services().simulator_ledger.all_records():
        if record.get("operation") == "authorize" and record.get("status") == "authorized":
            charges.setdefault(record["payment_intent"], []).append(record)
    for pi in results:
        final = api.get(f"/v1/payment_intents/{pi['id']}").json()
        if final["status"] == "processing":
            services().payment_intents.ensure_execution(
                services().payment_intents.retrieve(_merchant_of(api), pi["id"])
            )
            final = api.get(f"/v1/payment_intents/{pi['id']}").json()
        statuses[final["status"]] = statuses.get(final["status"], 0) + 1
        charged = charges.get(pi["id"], [])
        assert len(charged) <= 1, (pi["id"], charged)
        if final["status"] == "succeeded":
            assert len(charged) == 1
        else:
            assert final["status"] == "requires_payment_method"
            assert final["last_payment_error"]["code"] == "processing_error"
            assert charged == []
    assert statuses.get("succeeded", 0) >= 90, statuses


@pytest.fixture(autouse=True)
def _faults_off():
    yield
    services().faults.disarm()


def _route_stripe_first(api: Api) -> str:
    (backup,) = [f"backup_{uuid.uuid4().hex[:6]}"]
    body = {
        "connectors": [
            {"id": "stripe", "kind": "stripe", "priority": 1},
            {"id": backup, "kind": "simulator", "priority": 2},
        ],
        "circuit_breaker": {"minimum_calls": 1000},
    }
    assert api.session.post(api.base + "/v1/routing", json=body, timeout=10).status_code == 200
    return backup


def test_payments_reach_stripe_through_the_stripe_connector(api: Api, fake_stripe):
    _route_stripe_first(api)
    pi = pay(api, capture_method="manual").json()
    assert pi["status"] == "requires_capture"
    stripe_id = next(
        i
        for i in fake_stripe.intents.values()
        if i["metadata"].get("payflow_payment_intent") == pi["id"]
    )["id"]
    captured = api.post(f"/v1/payment_intents/{pi['id']}/capture", {"amount_to_capture": 600})
    assert captured.json()["status"] == "succeeded"
    assert fake_stripe.intents[stripe_id]["amount_received"] == 600
    declined = pay(api, "pm_card_chargeDeclinedInsufficientFunds")
    assert declined.status_code == 402
    assert declined.json()["error"]["decline_code"] == "insufficient_funds"


def test_stripe_failing_fails_over_to_the_simulator(api: Api, fake_stripe):
    backup = _route_stripe_first(api)
    # The confirm handler's try, the state machine's try and its two retries.
    fake_stripe.misbehave("server_error", count=4)
    pi = pay(api).json()
    assert pi["status"] == "succeeded"
    outcomes = [(c["connector"], c["outcome"]) for c in attempts(api, pi["id"])["data"]]
    assert outcomes[:4] == [("stripe", "PspUnavailable")] * 4
    assert outcomes[-1] == (backup, "authorized")


def _step_functions_calls(action: Callable[[], requests.Response]) -> tuple[dict, list[str]]:
    """The body `action` answered with, and the Step Functions calls made meanwhile."""
    calls: list[str] = []
    events = services().payment_intents._workflows._client.meta.events

    def record(event_name: str, **_: object) -> None:
        calls.append(event_name.rsplit(".", 1)[-1])

    events.register("before-call", record)
    try:
        body = action().json()
    finally:
        events.unregister("before-call", record)
    return body, calls


def test_a_payment_answered_at_once_makes_no_step_functions_call(api: Api):
    (primary,) = simulators(api, "primary")
    paid, calls = _step_functions_calls(lambda: pay(api))
    assert paid["status"] == "succeeded"
    assert calls == []
    assert [(c["connector"], c["outcome"]) for c in attempts(api, paid["id"])["data"]] == [
        (primary, "authorized")
    ]


def test_confirm_waits_on_the_payment_not_on_describe_execution(api: Api):
    # Given Step Functions' DescribeExecution quota (about 15 calls a second per account), and
    # a first call that fails, so the state machine takes the payment over
    (primary,) = simulators(api, "primary")
    set_simulator(api, primary, fail_next_calls=1, fail_with="unavailable")

    # When the payment is confirmed and waited for
    paid, calls = _step_functions_calls(lambda: pay(api))

    # Then its outcome came from the PaymentIntent itself: one start, no polling of the execution
    assert paid["status"] == "succeeded"
    assert "StartExecution" in calls
    assert "DescribeExecution" not in calls
