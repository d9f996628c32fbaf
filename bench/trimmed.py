"""Run a service that gives its free heap back on SIGUSR2 (`bench --trim-memory`).

`python -m bench.trimmed <service>`. glibc keeps the pages of a transient peak (a
compaction, a restore, a burst of fetched records) until `malloc_trim`, so a process's RSS
read at an arbitrary moment mixes what it holds with what its allocator kept. At each
growth sample the benchmark reads RSS, sends SIGUSR2, and reads it again: the second
figure is what the service holds, the first what it held on to.

After giving back, the service also writes one line to its log, `{"bench_heap": {...}}`:
what its two allocators hold, in MiB. CPython's small-object allocator (objects of up to
512 bytes) takes memory from the system in arenas that it returns only once every object
in them is gone, so `pymalloc_arenas` against `pymalloc_in_use` is its fragmentation;
`malloc_in_use` / `malloc_free` / `malloc_mmapped` are glibc's (`mallinfo2`: larger
objects, numpy's arrays, SQLite's and the C libraries' own). RSS less these is the
program's code and libraries.
"""

import contextlib
import ctypes
import ctypes.util
import json
import os
import re
import signal
import sys
import tempfile
from typing import Any

from bench.wrapped import run_service
from shared.runtime.memory import give_back

MIB = 1024 * 1024
HEAP_LINE = "bench_heap"


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


def glibc_heap() -> dict[str, float]:
    """glibc's malloc: bytes in use, free in its heaps, and in chunks mapped on their own."""
    name = ctypes.util.find_library("c")
    try:
        mallinfo2 = ctypes.CDLL(name).mallinfo2  # glibc ≥ 2.33
    except (OSError, AttributeError, TypeError):
        return {}
    mallinfo2.restype = _MallInfo2
    info = mallinfo2()
    return {
        "malloc_in_use": info.uordblks / MIB,
        "malloc_free": info.fordblks / MIB,
        "malloc_mmapped": info.hblkhd / MIB,
    }


def pymalloc_heap() -> dict[str, float]:
    """CPython's small-object allocator: its arenas, and the bytes of live objects in them
    (from `sys._debugmallocstats`, which writes to the C stderr)."""
    with tempfile.TemporaryFile() as out:
        sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(out.fileno(), 2)
        try:
            sys._debugmallocstats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        out.seek(0)
        text = out.read().decode(errors="replace")
    figures: dict[str, float] = {}
    for label, value in re.findall(r"^(.*?)\s*=\s*([\d,]+)\s*$", text, re.MULTILINE):
        number = int(value.replace(",", ""))
        if re.fullmatch(r"\d+ arenas \* \d+ bytes/arena", label.strip()):
            figures["pymalloc_arenas"] = number / MIB
        elif label.strip() == "# bytes in allocated blocks":
            figures["pymalloc_in_use"] = number / MIB
    return figures


def main() -> None:
    """Install the signal, then run the service."""
    service = sys.argv[1]

    def trim(_signum: int, _frame: Any) -> None:
        give_back()
        with contextlib.suppress(Exception):  # a report must never stop the service
            heap = {**pymalloc_heap(), **glibc_heap()}
            print(json.dumps({HEAP_LINE: heap}), flush=True)

    signal.signal(signal.SIGUSR2, trim)
    run_service(service)


if __name__ == "__main__":
    main()
