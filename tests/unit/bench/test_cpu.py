"""The benchmark's CPU shares: per group, the rest of the machine, from /proc."""

import subprocess
import sys
import time

from bench import cpu
from bench.cpu import CpuReading


def test_shares_are_percent_of_a_core_and_the_rest_of_the_machine_is_other() -> None:
    before = CpuReading(at=10.0, processes={1: ("intake", 1.0), 2: ("kafka", 2.0)}, machine=100.0)
    after = CpuReading(at=12.0, processes={1: ("intake", 2.0), 2: ("kafka", 2.5)}, machine=103.0)

    assert cpu.shares(before, after) == {
        "intake": 50.0,
        "kafka": 25.0,
        "ferretdb": 0.0,
        "postgres": 0.0,
        "benchmark": 0.0,
        "other": 75.0,
        "machine": 150.0,
    }


def test_a_process_that_ended_is_lost_to_other_and_one_that_started_counts_whole() -> None:
    before = CpuReading(
        at=0.0, processes={1: ("postgres", 5.0), 2: ("postgres", 9.0)}, machine=100.0
    )
    after = CpuReading(
        at=1.0, processes={1: ("postgres", 5.2), 3: ("postgres", 0.3)}, machine=101.0
    )

    share = cpu.shares(before, after)
    assert (share["postgres"], share["other"], share["machine"]) == (50.0, 50.0, 100.0)


def test_a_reading_counts_the_cpu_a_process_spends() -> None:
    burn = "import time\nend = time.process_time() + 0.4\nwhile time.process_time() < end: pass\n"
    worker = subprocess.Popen([sys.executable, "-c", burn + "time.sleep(30)"])
    try:
        before = cpu.read({"worker": worker.pid})
        time.sleep(1.5)
        after = cpu.read({"worker": worker.pid})
    finally:
        worker.kill()

    share = cpu.shares(before, after)
    assert {"worker", "kafka", "ferretdb", "postgres", "benchmark", "other", "machine"} <= set(
        share
    )
    assert after.used["worker"] - before.used["worker"] > 0.1
    assert share["worker"] > 0
