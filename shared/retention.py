"""Retention: what a service keeps only to deduplicate is forgotten when it can't matter.

A service remembers handled event ids (`ProcessedEvents`) and finished timers
(`DurableTimers`, whose document also makes scheduling idempotent) only so that an event
Kafka delivers again changes nothing. Kafka delivers a handled event again when a batch is
rewound (recent events) or when a consumer group lost its committed offsets (the broker
keeps them a year for an idle group in compose), so both are forgotten after
LEXCARE_RETENTION_DAYS (30 by default), at start and then every LEXCARE_RETENTION_EVERY_S
(1 h): their collections stop growing with history.
"""

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta

import structlog

from shared.background import Background

log = structlog.get_logger("lexcare.retention")

Forget = Callable[[datetime], Awaitable[int]]
"""Drops what was finished before the cutoff; returns how many documents went."""


class Retention:
    """Calls each `forget(now - keep)` at start and then every `every`, until stopped."""

    def __init__(self, forgets: Sequence[Forget], *, keep: timedelta, every: timedelta) -> None:
        self.forgets = list(forgets)
        self.keep = keep
        self.every = every
        self._background = Background(self._run, name="retention")

    async def start(self) -> None:
        """Start forgetting in the background (nothing to do when nothing is kept)."""
        if self.forgets:
            self._background.start()

    async def stop(self) -> None:
        """Stop (an interrupted delete is simply done again next time)."""
        await self._background.stop()

    async def prune(self) -> int:
        """Forget now what is older than the retention; how many documents went."""
        cutoff = datetime.now(UTC) - self.keep
        forgotten = 0
        for forget in self.forgets:
            forgotten += await forget(cutoff)
        if forgotten:
            log.info("retention_forgot", count=forgotten, older_than=str(self.keep))
        return forgotten

    async def _run(self) -> None:
        while True:
            try:
                await self.prune()
            except Exception as e:  # the database is away, say: try again next time
                log.warning("retention_failed", error=f"{type(e).__name__}: {e}")
            await asyncio.sleep(self.every.total_seconds())
