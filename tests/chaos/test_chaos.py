"""The chaos run at test size: payments under PSP faults, handler crashes, duplicated stream and
SQS deliveries and a flaky webhook receiver, then every invariant of payflow/chaos.py.

It runs `python -m payflow.chaos` in a process of its own: a sandbox owns its process's
environment and handler caches, which the session's sandbox uses.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAYMENTS = os.environ.get("PAYFLOW_CHAOS_TEST_PAYMENTS", "200")


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

    # Then faults did happen, and every invariant holds
    assert done.returncode == 0, report + done.stderr[-3000:]
    assert "result: all invariants hold" in report
    for fault in ("crash at ", "delivered twice", "webhook answers 500", "PSP errors"):
        line = next(line for line in report.splitlines() if fault in line)
        assert int(line.split()[-1]) > 0, line
