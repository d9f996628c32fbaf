"""Python's cyclic garbage collector, set for a process that holds its state in memory.

A full collection scans every object the process holds, so with a partition's state in
memory it paused a service for as long as that state is large: intake's grew from 110 to
640 ms within a minute at 200 contacts/s, at every ~6 s (docs/benchmarks.md, session 16).
So, at start:

- the collector runs less often: a young collection after `young` new objects rather
  than CPython's 700 (the runtime's objects of a cycle are freed by reference counting
  when it ends; they need no collector);
- what the process holds at start (imports, the classifier) is moved out of its reach
  (`gc.freeze`), and so is what survives each full collection: the next one scans only
  what came since. Such objects are still freed by reference counting; only a reference
  cycle among them would wait, so every `full_every_s` one full collection scans them all
  again.

`full_every_s` 0 leaves CPython's collector as it is.
"""

import gc
import time
from collections.abc import Callable
from typing import Any

import structlog

log = structlog.get_logger("lexcare.collector")


class Collector:
    """The policy, as the collector's callback (`gc.callbacks`) runs it."""

    def __init__(
        self,
        *,
        full_every_s: float,
        clock: Callable[[], float] = time.monotonic,
        freeze: Callable[[], None] = gc.freeze,
        unfreeze: Callable[[], None] = gc.unfreeze,
    ) -> None:
        self.full_every_s = full_every_s
        self.clock = clock
        self.freeze, self.unfreeze = freeze, unfreeze
        self.next_full = clock() + full_every_s
        self.full = False
        """True while the collection under way scans everything (nothing frozen)."""
        self.started = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if info.get("generation") != 2:
            return
        now = self.clock()
        if phase == "start":
            self.started = now
            return
        if self.full:
            log.info(
                "full_collection",
                collected=info.get("collected", 0),
                ms=round((now - self.started) * 1000, 1),
            )
        self.full = now >= self.next_full
        if self.full:
            # The next full collection reaches everything: what was frozen, in case
            # reference cycles formed among it and were let go.
            self.unfreeze()
            self.next_full = now + self.full_every_s
        else:
            self.freeze()


def tune_collector(*, young: int, full_every_s: float) -> None:
    """Set the process's collector (once, at start, after the imports)."""
    if full_every_s <= 0:
        return
    _, middle, old = gc.get_threshold()
    gc.set_threshold(young, middle, old)
    gc.collect()
    gc.freeze()
    gc.callbacks.append(Collector(full_every_s=full_every_s))
