"""The chaos run at test size: payments under PSP faults, handler crashes, duplicated stream and
SQS deliveries and a flaky webhook receiver, then every invariant of payflow/chaos.py.

It runs `python -m payflow.chaos` in a process of its own: a sandbox owns its process's
environment and handler caches, which the session's sandbox uses.

80 payments is the smallest run that still arms every crash point (one every 15 payments, five
points) and, in practice, every other fault several times over; the test checks each one fired
and each invariant ran and held. `make chaos` runs 1,000.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from payflow.chaos import CRASH_POINTS, INVARIANTS

ROOT = Path(__file__).resolve().parents[2]
PAYMENTS = os.environ.get("PAYFLOW_CHAOS_TEST_PAYMENTS", "80")
FAULTS = (
    "PSP timeouts",
    "PSP errors",
    "payments declined",
    *(f"crash at {point}" for point in CRASH_POINTS),
    "batches delivered twice to",
    "webhook answers 500",
    "provider webhooks duplicated",
    "provider webhooks delayed",
    "provider webhooks reordered",
    "refunds reported failed",
)
"""Every kind of fault the run injects: each must have happened at least once."""


def injected(report: str) -> dict[str, int]:
    """The report's "faults injected" lines: name -> count."""
    lines = report.split("faults injected:", 1)[1].split("invariants:", 1)[0]
    return {
        line.rsplit(None, 1)[0].strip(): int(line.rsplit(None, 1)[1])
        for line in lines.strip().splitlines()
    }


@pytest.mark.timeout(540)
def test_nothing_is_lost_or_charged_twice_under_chaos() -> None:
    # When a chaos run of test size ends
    done = subprocess.run(
        [sys.executable, "-m", "payflow.chaos", "--payments", PAYMENTS, "--max-seconds", "420"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=500,
    )
    report = done.stdout
    print(report, done.stderr[-3000:])

    # Then every kind of fault did happen (each crash point, duplicates to every poller)
    assert done.returncode == 0, report + done.stderr[-3000:]
    counts = injected(report)
    for fault in FAULTS:
        matching = {name: n for name, n in counts.items() if name.startswith(fault)}
        assert matching and all(n > 0 for n in matching.values()), (fault, counts)
    # And every invariant was checked and holds
    for name, _ in INVARIANTS:
        assert f"[ok  ] {name}" in report, name
    assert "result: all invariants hold" in report
