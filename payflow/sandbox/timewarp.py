"""Make the embedded Step Functions engine's clock run faster.

ASL Retry intervals are whole seconds (IntervalSeconds >= 1, on AWS and in moto alike), so a
state machine that retries with backoff takes seconds per retry. The sandbox can scale the
waits of moto's ASL interpreter (Retry and Wait states) by a factor: 1.0 keeps real time,
0.01 turns a 2 s backoff into 20 ms. The definition is untouched; only the emulator's clock
changes, so tests exercise the very ASL that deploys.
"""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any


def scale_step_functions_time(factor: float) -> None:
    """Scale the sleeps of moto's ASL Retry and Wait states by `factor` (process-wide)."""
    from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
    from moto.stepfunctions.parser.asl.component.state.wait.wait_function import wait_function

    def sleep(seconds: float) -> None:
        time.sleep(seconds * factor)

    retrier_decl.time = SimpleNamespace(sleep=sleep)  # type: ignore[assignment]

    def scaled_wait(self: object, env: Any, wait_seconds: float) -> None:
        # An interrupted wait (the execution was stopped) simply ends, as in moto's own code.
        if wait_seconds > 0:
            env.program_state_event.wait(wait_seconds * factor)

    wait_function.WaitFunction._wait_interval = scaled_wait  # type: ignore[method-assign]
