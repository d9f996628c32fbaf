"""The benchmark's CPU shares: per group, the rest of the machine, from /proc."""

import os
import time

from bench import cpu
from bench.cpu import CpuReading


def test_shares_are_percent_of_a_core_and_the_rest_of_the_machine_is_other() -> None:
    before = CpuReading(at=10.0, used={"intake": 1.0, "kafka": 2.0}, machine=100.0)
    after = CpuReading(at=12.0, used={"intake": 2.0, "kafka": 2.5}, machine=103.0)

    assert cpu.shares(before, after) == {
        "intake": 50.0,
        "kafka": 25.0,
        "other": 75.0,
        "machine": 150.0,
    }


def test_a_reading_counts_the_cpu_a_process_spends() -> None:
    before = cpu.read({"me": os.getpid()})
    deadline = time.process_time() + 0.3
    while time.process_time() < deadline:
        pass
    after = cpu.read({"me": os.getpid()})

    share = cpu.shares(before, after)
    assert {"me", "kafka", "ferretdb", "postgres", "benchmark", "other", "machine"} <= set(share)
    assert after.used["me"] - before.used["me"] >= 0.25
    assert share["me"] > 0 and share["machine"] >= share["me"] - 5
