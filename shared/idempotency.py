"""Processed-event ledger: the guard that makes every handler idempotent by event id.

A handler checks `seen` first; when the event is new it stores its effects (each write
itself safe to repeat), publishes its events (ids derived from the cause, so a repeat
publishes the same ids), and only then calls `mark`. A crash before `mark` replays the
whole handler, which changes nothing twice; after `mark` a redelivery is skipped.
"""

import contextlib
from datetime import UTC, datetime
from uuid import UUID

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError


class ProcessedEvents:
    """The `processed_events` collection of one service."""

    def __init__(self, db: AsyncDatabase) -> None:
        self.collection = db["processed_events"]

    async def seen(self, event_id: UUID | str) -> bool:
        """True when the event's effects are already stored and published."""
        return await self.collection.find_one({"_id": str(event_id)}, {"_id": 1}) is not None

    async def mark(self, event_id: UUID | str, *, event_type: str) -> None:
        """Record that the event is fully handled (safe to call twice)."""
        with contextlib.suppress(DuplicateKeyError):
            await self.collection.insert_one(
                {"_id": str(event_id), "type": event_type, "at": datetime.now(UTC)}
            )

    async def count(self) -> int:
        """How many events were handled."""
        return await self.collection.count_documents({})
