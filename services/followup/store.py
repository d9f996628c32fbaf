"""The MongoDB collections followup owns."""

from pymongo.asynchronous.database import AsyncDatabase

from shared.idempotency import ProcessedEvents


class FollowupStore:
    """Followup's state behind intention-named methods."""

    def __init__(self, db: AsyncDatabase) -> None:
        self.processed = ProcessedEvents(db)

    async def prepare(self) -> None:
        """Create the indexes followup relies on."""
