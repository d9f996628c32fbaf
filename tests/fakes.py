"""In-memory stand-ins for shared plumbing, for unit tests of handlers."""

import contextlib
from collections.abc import AsyncIterator
from typing import Any


class MemoryProcessed:
    """A ledger of handled event ids in a set (what shared.batching marks)."""

    def __init__(self) -> None:
        self.ids: set[str] = set()

    async def seen(self, event_id: Any) -> bool:
        """True when the event was marked handled."""
        return str(event_id) in self.ids

    async def mark(self, event_id: Any, *, event_type: str) -> None:
        """Record the event as handled."""
        self.ids.add(str(event_id))

    @contextlib.asynccontextmanager
    async def batch(self) -> AsyncIterator[None]:
        """In memory, marks are stored as they are made."""
        yield
