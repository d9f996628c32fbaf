"""Run a service under pyinstrument; SIGUSR1 writes the text report so far.

`python -m bench.profiled <service> <report path>`. The report is written on SIGUSR1
(the benchmark sends it before stopping the service), so it does not depend on how the
service's shutdown ends the process. A PyMongo command listener counts the database
round trips by command and collection; the counts head the report.
"""

import signal
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from pyinstrument import Profiler
from pymongo import monitoring

from bench.wrapped import run_service


class RoundTrips(monitoring.CommandListener):
    """Counts every database command the service sends, by command and collection."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.seconds = 0.0

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        """One round trip begins."""
        target = event.command.get(event.command_name)
        where = target if isinstance(target, str) else ""
        self.counts[f"{event.command_name} {where}".strip()] += 1

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        """Add its duration."""
        self.seconds += event.duration_micros / 1e6

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        """Add its duration."""
        self.seconds += event.duration_micros / 1e6

    def summary(self) -> str:
        """Counts, most frequent first, and the total time spent waiting on them."""
        total = sum(self.counts.values())
        lines = [f"database round trips: {total} ({self.seconds:.1f} s awaited in total)"]
        lines += [f"  {n:>7}  {name}" for name, n in self.counts.most_common()]
        return "\n".join(lines) + "\n"


def main() -> None:
    """Start profiling the main thread (asyncio loop included), then run the service."""
    service, report = sys.argv[1], Path(sys.argv[2])
    profiler = Profiler(interval=0.002)
    trips = RoundTrips()
    monitoring.register(trips)

    def write_report(_signum: int, _frame: Any) -> None:
        session = profiler.stop()
        text = profiler.output_text(color=False, unicode=True, show_all=False)
        report.write_text(trips.summary() + text)
        del session

    signal.signal(signal.SIGUSR1, write_report)
    profiler.start()
    run_service(service)


if __name__ == "__main__":
    main()
