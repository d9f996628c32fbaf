"""The MongoDB collections intake owns: contacts, cases, processed events."""

from pymongo.asynchronous.database import AsyncDatabase

from shared.idempotency import ProcessedEvents


class IntakeStore:
    """Contacts and cases, behind intention-named methods."""

    def __init__(self, db: AsyncDatabase) -> None:
        self.contacts = db["contacts"]
        self.cases = db["cases"]
        self.processed = ProcessedEvents(db)

    async def prepare(self) -> None:
        """Create the indexes intake relies on."""
        await self.cases.create_index("customer_id")

    async def record_contact(self, contact_id: str, case_id: str, doc: dict) -> None:
        """Store a contact on its case (safe to repeat)."""
        await self.contacts.update_one(
            {"_id": contact_id}, {"$setOnInsert": {**doc, "case_id": case_id}}, upsert=True
        )
        await self.cases.update_one(
            {"_id": case_id}, {"$addToSet": {"contact_ids": contact_id}}, upsert=True
        )
