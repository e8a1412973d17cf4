"""The bench's CPU meter and the latency floor it derives (bench/run.py)."""

from __future__ import annotations

import hashlib
import os
import time

from bench.run import CpuMeter, latency_floor_ms


def test_the_meter_counts_the_cpu_a_process_burns_and_not_its_waits() -> None:
    meter = CpuMeter({"this": os.getpid()})
    time.sleep(0.2)  # waiting costs no CPU
    began = time.process_time()
    digest = b""
    while time.process_time() - began < 0.3:
        digest = hashlib.sha256(digest).digest()
    used = meter.used()
    # the process's times come in clock ticks (10 ms here), process_time() finer
    assert 0.28 <= used["this"] < 0.45
    assert used["total"] == used["this"]


def test_the_floor_is_clients_times_cpu_per_payment_over_cores() -> None:
    # 150 ms of CPU a payment on 2 cores: 13.3 payments a second at most, so 8 clients that each
    # wait for their answer wait 600 ms on average at least
    run = {"clients": 8, "cores": 2, "cpu_ms_per_payment": {"total": 150.0}}
    assert latency_floor_ms(run) == 600.0
    assert latency_floor_ms({**run, "clients": 1}) == 75.0
