"""Run a service that gives its free heap back on SIGUSR2 (`bench --trim-memory`).

`python -m bench.trimmed <service>`. glibc keeps the pages of a transient peak (a
compaction, a restore, a burst of fetched records) until `malloc_trim`, so a process's RSS
read at an arbitrary moment mixes what it holds with what its allocator kept. At each
growth sample the benchmark reads RSS, sends SIGUSR2, and reads it again: the second
figure is what the service holds, the first what it held on to.
"""

import signal
import sys
from typing import Any

from bench.wrapped import run_service
from shared.runtime.memory import give_back


def main() -> None:
    """Install the signal, then run the service."""
    service = sys.argv[1]

    def trim(_signum: int, _frame: Any) -> None:
        give_back()

    signal.signal(signal.SIGUSR2, trim)
    run_service(service)


if __name__ == "__main__":
    main()
