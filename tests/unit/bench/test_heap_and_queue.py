"""The benchmark's heap report (bench.trimmed) and routing's queue measure (bench.queue)."""

import json
import subprocess
import sys

from bench import queue, trimmed


def test_the_heap_report_reads_both_allocators():
    heap = {**trimmed.pymalloc_heap(), **trimmed.glibc_heap()}
    assert 0 < heap["pymalloc_in_use"] <= heap["pymalloc_arenas"]
    assert heap["malloc_in_use"] > 0  # this machine's C library is glibc


def test_a_sample_writes_the_heap_line_the_benchmark_reads():
    code = (
        "import os, signal, sys; sys.argv = ['x', 'none'];"
        "import bench.trimmed as t; t.run_service = lambda s: os.kill(os.getpid(), signal.SIGUSR2);"
        "t.main()"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    (line,) = [x for x in out.stdout.splitlines() if x.startswith('{"bench_heap"')]
    assert set(json.loads(line)["bench_heap"]) >= {"pymalloc_arenas", "malloc_in_use"}


def test_every_freed_slot_reaches_a_waiting_case_behind_the_other_field():
    _seconds, reached = queue.per_freed_slot(waiting=30, freed=4)
    assert reached == 4
