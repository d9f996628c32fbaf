"""The MongoDB collections routing owns."""

from pymongo.asynchronous.database import AsyncDatabase

from shared.idempotency import ProcessedEvents


class RoutingStore:
    """Routing's state behind intention-named methods."""

    def __init__(self, db: AsyncDatabase) -> None:
        self.processed = ProcessedEvents(db)

    async def prepare(self) -> None:
        """Create the indexes routing relies on."""
