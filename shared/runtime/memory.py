"""Giving freed heap back to the system after the runtime's transient peaks.

Compaction and restore decode many values for a moment; CPython frees them, but glibc's
allocator keeps the freed pages of its heap (only the top of the heap is given back, and a
few live objects anywhere pin the rest), so the process's RSS stays at its peak.
`malloc_trim(0)` returns every free page. Measured in docs/benchmarks.md (session 9).
"""

import ctypes
import ctypes.util
import functools

import structlog

log = structlog.get_logger("lexcare.runtime")


@functools.cache
def _trim() -> "ctypes._NamedFuncPointer | None":
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):  # not glibc (musl has no malloc_trim)
        return None


def give_back() -> bool:
    """Return the heap's free pages to the system; False where the C library cannot."""
    trim = _trim()
    if trim is None:
        return False
    trim(0)
    return True
