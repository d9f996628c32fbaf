"""Run a service under tracemalloc; SIGUSR2 writes where its memory is allocated.

`python -m bench.traced <service> <report dir>`. On each SIGUSR2 (the benchmark sends one
at every growth sample) a report `<service>-<n>.txt` is written: the lines holding the
most memory now, and the lines whose memory grew most since the previous report — what
follows history when RSS does. One frame per allocation keeps tracemalloc's own cost
down (still a slower service: these runs measure memory, not speed).
"""

import signal
import sys
import tracemalloc
from pathlib import Path
from typing import Any

from bench.wrapped import run_service

TOP = 25


def main() -> None:
    """Start tracing, then run the service."""
    service, reports = sys.argv[1], Path(sys.argv[2])
    reports.mkdir(parents=True, exist_ok=True)
    previous: list[tracemalloc.Snapshot] = []

    def write_report(_signum: int, _frame: Any) -> None:
        snap = tracemalloc.take_snapshot().filter_traces(
            [tracemalloc.Filter(False, tracemalloc.__file__)]
        )
        traced, peak = tracemalloc.get_traced_memory()
        lines = [f"traced {traced / 2**20:.1f} MiB (peak {peak / 2**20:.1f} MiB)", "", "held now:"]
        lines += [f"  {stat}" for stat in snap.statistics("lineno")[:TOP]]
        if previous:
            lines += ["", "grown since the previous report:"]
            lines += [f"  {stat}" for stat in snap.compare_to(previous[0], "lineno")[:TOP]]
        previous[:] = [snap]
        n = len(list(reports.glob(f"{service}-*.txt")))
        (reports / f"{service}-{n}.txt").write_text("\n".join(lines) + "\n")

    signal.signal(signal.SIGUSR2, write_report)
    tracemalloc.start(1)
    run_service(service)


if __name__ == "__main__":
    main()
