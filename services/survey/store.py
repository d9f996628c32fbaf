"""The MongoDB collections survey owns."""

from pymongo.asynchronous.database import AsyncDatabase

from shared.idempotency import ProcessedEvents


class SurveyStore:
    """Survey's state behind intention-named methods."""

    def __init__(self, db: AsyncDatabase) -> None:
        self.processed = ProcessedEvents(db)

    async def prepare(self) -> None:
        """Create the indexes survey relies on."""
