"""The MongoDB collections metrics owns: facts counted once by event id."""

from typing import Any

from pymongo.asynchronous.database import AsyncDatabase


class MetricsStore:
    """KPI facts, one document per counted event (an event counts once)."""

    def __init__(self, db: AsyncDatabase) -> None:
        self.facts = db["facts"]

    async def prepare(self) -> None:
        """Create the indexes metrics relies on."""
        await self.facts.create_index([("kind", 1), ("channel", 1)])

    async def add_fact(self, event_id: str, fact: dict[str, Any]) -> None:
        """Record a fact keyed by its event id (a repeat changes nothing)."""
        await self.facts.update_one({"_id": event_id}, {"$setOnInsert": fact}, upsert=True)

    async def count(self, **match: Any) -> int:
        """How many facts match."""
        return await self.facts.count_documents(match)
