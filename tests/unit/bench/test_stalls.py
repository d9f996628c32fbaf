"""bench.stalls: a service's event-loop stalls, told apart by whether it ran meanwhile."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from bench import stalls

LOOP = """
import asyncio, time
from bench.stalls import install_from_env

install_from_env()

async def main():
    await asyncio.sleep(0.1)
    began = time.thread_time()
    while time.thread_time() - began < 0.2:  # the loop's own work: 200 ms of CPU
        pass
    await asyncio.sleep(0.1)
    time.sleep(0.3)  # the loop waits without running (as for a core)
    await asyncio.sleep(0.1)

asyncio.run(main())
"""


def test_a_stall_of_work_and_a_stall_of_waiting_are_told_apart(tmp_path):
    path = tmp_path / "stalls.jsonl"
    env = {**os.environ, "BENCH_STALLS_FILE": str(path), "BENCH_STALLS_MS": "50"}
    before = time.time()
    subprocess.run([sys.executable, "-c", LOOP], env=env, check=True, cwd=Path.cwd())
    seen = [json.loads(line) for line in path.read_text().splitlines()]
    work = max(seen, key=lambda s: s["cpu_ms"])
    waiting = max(seen, key=lambda s: s["ms"] - s["cpu_ms"])
    assert work["ms"] >= 190 and work["cpu_ms"] >= 150
    assert waiting["ms"] >= 290 and waiting["cpu_ms"] <= 60
    assert stalls.read(path, before, time.time()) == {
        "count": len(seen),
        "stalled_ms": round(sum(s["ms"] for s in seen), 1),
        "running_ms": round(sum(s["cpu_ms"] for s in seen), 1),
        "longest_ms": max(s["ms"] for s in seen),
    }
    assert stalls.read(path, time.time(), time.time() + 1)["count"] == 0


def test_without_a_threshold_nothing_is_watched(tmp_path):
    path = tmp_path / "stalls.jsonl"
    env = {k: v for k, v in os.environ.items() if not k.startswith("BENCH_STALLS")}
    env["BENCH_STALLS_FILE"] = str(path)
    subprocess.run([sys.executable, "-c", LOOP], env=env, check=True, cwd=Path.cwd())
    assert not path.exists()
