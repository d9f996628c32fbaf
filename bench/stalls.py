"""Where a service's event loop stalls, and whether it was running meanwhile (`bench --stalls`).

`python -m bench.stalls <service>` runs a service with a watchdog thread (also installed by
the other wrappers when `BENCH_STALLS_FILE` is set). Every 5 ms the thread asks the
service's event loop to note the time; when the loop has not done so for more than
`BENCH_STALLS_MS`, the loop is stalled, and when it catches up the thread appends one line
to `BENCH_STALLS_FILE`: when the stall began (Unix time), how long it lasted, and how much
CPU the loop's thread got meanwhile (`/proc/self/task/<tid>/stat`). A stall whose CPU is
close to its length is the service's own work (a long cycle, a collection); one with little
CPU is the process waiting for a core the machine gave to others.
"""

import asyncio
import json
import os
import sys
import threading
import time
from pathlib import Path

BEAT_S = 0.005
_TICKS = os.sysconf("SC_CLK_TCK")


def thread_cpu_s(tid: int) -> float:
    """User + system CPU time of thread `tid` of this process, seconds."""
    try:
        fields = Path(f"/proc/self/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICKS


class Watchdog:
    """Watches one event loop from its own thread; appends each stall to `path`."""

    def __init__(self, loop: asyncio.AbstractEventLoop, path: Path, limit_s: float) -> None:
        self.loop, self.path, self.limit_s = loop, path, limit_s
        self.tid = threading.get_native_id()  # created in the loop's thread
        self.last = time.monotonic()
        self.stopped = threading.Event()

    def _beat(self) -> None:
        self.last = time.monotonic()

    def start(self) -> None:
        """Watch from a daemon thread until the loop closes or `stop`."""
        threading.Thread(target=self._watch, name="bench-stalls", daemon=True).start()

    def stop(self) -> None:
        """Stop watching."""
        self.stopped.set()

    def _watch(self) -> None:
        began: tuple[float, float, float] | None = None  # monotonic, Unix time, CPU
        on_time_cpu = thread_cpu_s(self.tid)
        while not self.stopped.wait(BEAT_S):
            try:
                self.loop.call_soon_threadsafe(self._beat)
            except RuntimeError:  # the loop is closed
                return
            last = self.last
            late = time.monotonic() - last
            if late > self.limit_s and began is None:
                # CPU from the last reading while the loop was on time: the stall's first
                # `limit` ms count too (read now, they would be lost).
                began = (last, time.time() - late, on_time_cpu)
            elif late <= BEAT_S * 2:
                if began is not None:
                    self._write(began, last)
                    began = None
                on_time_cpu = thread_cpu_s(self.tid)

    def _write(self, began: tuple[float, float, float], ended: float) -> None:
        start, at, cpu = began
        stall = {
            "at": round(at, 3),
            "ms": round((ended - start) * 1000, 1),
            "cpu_ms": round((thread_cpu_s(self.tid) - cpu) * 1000, 1),
        }
        with self.path.open("a") as out:
            out.write(json.dumps(stall) + "\n")


def install_from_env() -> None:
    """With `BENCH_STALLS_FILE` set, watch every event loop this process runs."""
    path, limit_ms = os.environ.get("BENCH_STALLS_FILE"), os.environ.get("BENCH_STALLS_MS")
    if not path or not limit_ms:
        return
    original = asyncio.BaseEventLoop.run_forever

    def run_forever(loop: asyncio.BaseEventLoop) -> None:
        watchdog = Watchdog(loop, Path(path), float(limit_ms) / 1000)
        watchdog.start()
        try:
            original(loop)
        finally:
            watchdog.stop()

    asyncio.BaseEventLoop.run_forever = run_forever  # type: ignore[method-assign]


def read(path: Path, since: float, until: float) -> dict[str, float]:
    """The stalls that began in [since, until] (Unix time): how many, their total length and
    the CPU the loop's thread got during them, ms."""
    stalls = []
    if path.exists():
        stalls = [json.loads(line) for line in path.read_text().splitlines() if line]
    inside = [s for s in stalls if since <= s["at"] <= until]
    return {
        "count": len(inside),
        "stalled_ms": round(sum(s["ms"] for s in inside), 1),
        "running_ms": round(sum(s["cpu_ms"] for s in inside), 1),
        "longest_ms": max((s["ms"] for s in inside), default=0.0),
    }


if __name__ == "__main__":
    from bench.wrapped import run_service

    run_service(sys.argv[1])
