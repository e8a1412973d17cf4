"""`make recon-bench`: reconcile N payments of one day with 1% injected discrepancies on the
embedded sandbox; prints what was found, what was missed, the false positives and the times.

    .venv/bin/python bench/recon.py [--payments 2000] [--rate 0.01] [--concurrency 8]

The discrepancies are the simulator's (chalicelib/connectors/simulator_settlement.py), one kind
after another; each is expected as one exception about one object, and anything else the run
reports is a false positive.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import requests  # noqa: E402

ADMIN_KEY = "sk_admin_recon_bench"
EXPECTED_KIND = {
    "unknown_charge": ("missing_in_payflow",),
    "missed_capture": ("missed_capture",),
    "amount_differs": ("amount_over", "amount_under"),
    "late_settlement": ("missing_at_provider",),
    "refund_twice": ("duplicate_settlement",),
}
"""The exception each injected discrepancy must become (about the object it names)."""


@dataclass
class ReconBench:
    """What one benchmark run measured."""

    payments: int
    injected: int
    found: int
    missed: int
    false_positives: int
    lines: int
    payments_seconds: float
    reconcile_seconds: float
    lines_per_second: float


def _session(key: str) -> requests.Session:
    session = requests.Session()
    session.auth = (key, "")
    return session


def day_of_today() -> str:
    return time.strftime("%Y-%m-%d", time.gmtime())


def run_bench(
    api_url: str,
    *,
    payments: int,
    rate: float = 0.01,
    seed: int = 1,
    concurrency: int = 8,
    timeout: float = 1800.0,
    admin_key: str = ADMIN_KEY,
    count: int | None = None,
) -> ReconBench:
    """Make a merchant and `payments` payments today (5% authorized only, 3% refunded), inject
    `count` (default max(1, rate x payments)) discrepancies, reconcile the day and compare."""
    admin = {"Authorization": f"Bearer {admin_key}"}
    merchant = requests.post(
        f"{api_url}/v1/sandbox/merchants", data={"name": "recon bench"}, headers=admin, timeout=30
    ).json()
    key = merchant["secret_key"]
    connector = f"recon_{uuid.uuid4().hex[:6]}"
    routing = _session(key).post(
        f"{api_url}/v1/routing",
        json={"connectors": [{"id": connector, "kind": "simulator", "priority": 1}]},
        timeout=30,
    )
    routing.raise_for_status()
    started = time.monotonic()
    with ThreadPoolExecutor(concurrency) as pool:
        refunds = [r for r in pool.map(lambda i: _payment(api_url, key, i), range(payments)) if r]
    _settled(api_url, key, refunds, timeout)
    payments_seconds = time.monotonic() - started
    day = day_of_today()
    count = count or max(1, round(rate * payments))
    injected = _session(key).post(
        f"{api_url}/v1/sandbox/reconciliation/discrepancies",
        json={"date": day, "connector": connector, "seed": seed, "count": count},
        timeout=300,
    )
    injected.raise_for_status()
    made = injected.json()["data"]
    started = time.monotonic()
    run = _reconcile(api_url, key, day, timeout)
    reconcile_seconds = time.monotonic() - started
    found = _exceptions(api_url, key, run["id"])
    expected = {(m["subject"], m["kind"]) for m in made}
    matched = {
        (subject, kind)
        for subject, kind in expected
        if any(e["object_id"] == subject and e["kind"] in EXPECTED_KIND[kind] for e in found)
    }
    explained = {
        e["id"]
        for e in found
        for subject, kind in expected
        if e["object_id"] == subject and e["kind"] in EXPECTED_KIND[kind]
    }
    return ReconBench(
        payments=payments,
        injected=len(made),
        found=len(matched),
        missed=len(expected - matched),
        false_positives=len([e for e in found if e["id"] not in explained]),
        lines=run["counts"]["rows"],
        payments_seconds=round(payments_seconds, 1),
        reconcile_seconds=round(reconcile_seconds, 1),
        lines_per_second=round(run["counts"]["rows"] / reconcile_seconds, 1),
    )


def _payment(api_url: str, key: str, i: int) -> str | None:
    """Payment number `i`; the id of its refund when it has one."""
    session = _session(key)
    manual = i % 20 == 7
    data = {
        "amount": 500 + (i * 37) % 9_500,
        "currency": "usd",
        "confirm": "true",
        "payment_method": "pm_card_visa",
    }
    if manual:
        data["capture_method"] = "manual"
    pi = session.post(f"{api_url}/v1/payment_intents", data=data, timeout=60).json()
    assert pi.get("status") in ("succeeded", "requires_capture"), pi
    if i % 33 == 5 and not manual:
        refund = session.post(
            f"{api_url}/v1/refunds", data={"payment_intent": pi["id"]}, timeout=60
        ).json()
        assert refund.get("status") in ("succeeded", "pending"), refund
        return str(refund["id"])
    return None


def _settled(api_url: str, key: str, refunds: list[str], timeout: float) -> None:
    """Until every refund's saga has ended (a refund still pending settles on another day)."""
    session = _session(key)
    deadline = time.monotonic() + timeout
    for refund_id in refunds:
        while True:
            refund = session.get(f"{api_url}/v1/refunds/{refund_id}", timeout=60).json()
            if refund["status"] != "pending":
                assert refund["status"] == "succeeded", refund
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"{refund_id} still pending")
            time.sleep(0.2)


def _reconcile(api_url: str, key: str, day: str, timeout: float) -> dict[str, Any]:
    session = _session(key)
    run = session.post(
        f"{api_url}/v1/reconciliation/runs", data={"date": day, "sla_days": 0}, timeout=60
    ).json()
    deadline = time.monotonic() + timeout
    while run["status"] == "running":
        if time.monotonic() > deadline:
            raise TimeoutError(f"{run['id']} still running after {timeout} s")
        time.sleep(0.2)
        run = session.get(f"{api_url}/v1/reconciliation/runs/{run['id']}", timeout=60).json()
    if run["status"] != "succeeded":
        raise RuntimeError(f"{run['id']} {run['status']}: {run.get('failure')}")
    return run


def _exceptions(api_url: str, key: str, run_id: str) -> list[dict[str, Any]]:
    session = _session(key)
    found: list[dict[str, Any]] = []
    params: dict[str, Any] = {"run": run_id, "limit": 100}
    while True:
        page = session.get(
            f"{api_url}/v1/reconciliation/exceptions", params=params, timeout=60
        ).json()
        found.extend(page["data"])
        if not page["has_more"]:
            return found
        params["starting_after"] = page["data"][-1]["id"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Reconciliation benchmark on the sandbox")
    parser.add_argument("--payments", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=0.01)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args(argv)
    from payflow.sandbox.runtime import Sandbox, SandboxConfig

    config = SandboxConfig(
        api_port=0,
        aws_port=0,
        admin_key=ADMIN_KEY,
        secret_key="sk_test_recon_bench_demo",
        settings=(("PAYFLOW_LOG_LEVEL", "CRITICAL"),),
        time_scale=0.01,
    )
    with Sandbox(config) as running:
        result = run_bench(
            running.api_url,
            payments=args.payments,
            rate=args.rate,
            seed=args.seed,
            concurrency=args.concurrency,
        )
    print(json.dumps(asdict(result), indent=2))
    return 0 if result.missed == 0 and result.false_positives == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
