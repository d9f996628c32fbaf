"""Timers as partition state: the timer itself and the heap of due moments across partitions."""

import heapq
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class Timer:
    """A due moment of one partition, and what its rule needs then."""

    id: str
    due_at: datetime
    kind: str
    payload: dict[str, Any] = field(default_factory=dict)


@dataclass
class TimerHeap:
    """Due moments of every owned partition's timers, soonest first.

    Entries are never removed in place: a cancelled, moved or fired timer leaves a stale
    entry that `due` skips because the partition no longer holds that timer at that time.
    """

    entries: list[tuple[datetime, str, int]] = field(default_factory=list)

    def push(self, partition: int, timer: Timer) -> None:
        """Remember when `timer` of `partition` is due."""
        heapq.heappush(self.entries, (timer.due_at, timer.id, partition))

    def due(
        self, now: datetime, *, current: Callable[[int, str], Timer | None]
    ) -> list[tuple[int, Timer]]:
        """The timers due at `now`, by due time; `current` says what a partition holds now.

        The due entries stay in the heap until their partition no longer holds them (they
        fired and that was persisted), so a batch that is not persisted fires them again.
        """
        found: list[tuple[int, Timer]] = []
        kept: set[tuple[datetime, str, int]] = set()
        while self.entries and self.entries[0][0] <= now:
            entry = heapq.heappop(self.entries)
            due_at, timer_id, partition = entry
            timer = current(partition, timer_id)
            if timer is not None and timer.due_at == due_at and entry not in kept:
                found.append((partition, timer))
                kept.add(entry)
        for entry in kept:
            heapq.heappush(self.entries, entry)
        return found

    def __len__(self) -> int:
        return len(self.entries)


def encode_timer(timer: Timer) -> dict[str, Any]:
    """A timer as stored (its id is the document's key)."""
    return {"due_at": timer.due_at.isoformat(), "kind": timer.kind, "payload": timer.payload}


def decode_timer(timer_id: str, doc: dict[str, Any]) -> Timer:
    """A stored timer."""
    kind = sys.intern(doc["kind"])  # a few kinds, one string each
    return Timer(timer_id, datetime.fromisoformat(doc["due_at"]), kind, doc["payload"])
