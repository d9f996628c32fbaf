"""Crash and delay points for the fault tests (tests/faults); off unless a test enables them.

`LEXCARE_FAULT_INJECTION` is a comma-separated list of `<point>:<topic>` entries, read once
at import. Unset (every normal run), each check is one test of an empty frozenset.

Points, all on the consuming side of a handler (topic without the environment prefix):
- `before_publish:<topic>`: the process dies as a handler publishes to `<topic>`, i.e.
  after the handler's database writes, before its publish and before its offset commit.
- `after_handle:<topic>`: the process dies when a handler of `<topic>` returned, i.e.
  after its writes and publishes, before its offset commit.
- `runtime_after_persist:<service>` / `runtime_after_publish:<service>`: the process dies
  in the stateful runtime (shared/runtime) after a batch is stored and before it is
  published, or after it is published and before its offsets are committed.
- `slow_publish:<topic>`: a publish to `<topic>` first sleeps `LEXCARE_FAULT_DELAY_S`
  seconds (default 5), so a test can stop the service while a handler is in flight.
- `runtime_slow_publish:<service>`: the stateful runtime sleeps as long between storing
  a batch and publishing it, so a test can stop the service while a batch is in flight.
"""

import asyncio
import os

CRASH_EXIT_CODE = 86
"""Exit status of a process killed by a crash point (no cleanup, no commit, no flush)."""

POINTS: frozenset[str] = frozenset(
    entry.strip()
    for entry in os.environ.get("LEXCARE_FAULT_INJECTION", "").split(",")
    if entry.strip()
)
DELAY_S = float(os.environ.get("LEXCARE_FAULT_DELAY_S", "5"))


def crash_at(point: str, topic: str) -> None:
    """Kill the process at once when `point:topic` is enabled (as SIGKILL would)."""
    if POINTS and f"{point}:{topic}" in POINTS:
        os._exit(CRASH_EXIT_CODE)


async def delay_at(point: str, topic: str) -> None:
    """Sleep `LEXCARE_FAULT_DELAY_S` seconds when `point:topic` is enabled."""
    if POINTS and f"{point}:{topic}" in POINTS:
        await asyncio.sleep(DELAY_S)
