"""The MongoDB collections followup owns: cases, customers, requests, timers."""

from datetime import timedelta
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from services.followup.domain import (
    CareKind,
    CaseState,
    CustomerState,
    PlannedTimer,
    RequestRecord,
)
from shared.idempotency import ProcessedEvents
from shared.timers import DurableTimers


class FollowupStore:
    """Followup's state behind intention-named methods.

    Writes `$set` only the fields a step changed: a case is written by its own consumer,
    by the outcome consumer and by the timer loop, each touching different fields.
    """

    def __init__(self, db: AsyncDatabase, *, lease: timedelta = timedelta(seconds=30)) -> None:
        self.processed = ProcessedEvents(db)
        self.timers = DurableTimers(db, lease=lease)
        self.cases = db["cases"]
        self.customers = db["customers"]
        self.requests = db["requests"]

    async def prepare(self) -> None:
        """Create the indexes followup relies on."""
        await self.timers.prepare()
        await self.requests.create_index("case_id")
        await self.processed.prepare()

    async def case(self, case_id: str | None) -> CaseState | None:
        """What followup remembers of the case, or None."""
        if case_id is None:
            return None
        doc = await self.cases.find_one({"_id": case_id})
        return CaseState.model_validate({**doc, "case_id": doc["_id"]}) if doc else None

    async def save_case(self, case_id: str, changes: dict[str, Any]) -> None:
        """Store the changed fields of a case (safe to repeat)."""
        changes = {k: v for k, v in changes.items() if k != "case_id"}
        if changes:
            await self.cases.update_one({"_id": case_id}, {"$set": changes}, upsert=True)

    async def customer(self, customer_id: str | None) -> CustomerState | None:
        """What followup remembers of the customer, or None."""
        if customer_id is None:
            return None
        doc = await self.customers.find_one({"_id": customer_id})
        return CustomerState.model_validate({**doc, "customer_id": doc["_id"]}) if doc else None

    async def save_customer(self, customer_id: str, changes: dict[str, Any]) -> None:
        """Store the changed fields of a customer (safe to repeat)."""
        changes = {k: v for k, v in changes.items() if k != "customer_id"}
        if changes:
            await self.customers.update_one({"_id": customer_id}, {"$set": changes}, upsert=True)

    async def schedule(self, timers: list[PlannedTimer]) -> None:
        """Schedule planned timers (an existing timer id keeps its first schedule)."""
        for timer in timers:
            await self.timers.schedule(
                timer.id,
                due_at=timer.due_at,
                kind=str(timer.kind),
                payload=timer.payload,
                case_id=timer.case_id,
            )

    async def cancel(self, case_id: str, kinds: list[CareKind]) -> int:
        """Cancel the case's pending timers of these kinds; return how many."""
        return await self.timers.cancel(case_id=case_id, kinds=[str(k) for k in kinds])

    async def record_request(self, record: RequestRecord) -> None:
        """Keep a sent request (a re-fired timer keeps the first record)."""
        doc = record.model_dump(mode="python", exclude={"request_id"})
        await self.requests.update_one(
            {"_id": record.request_id}, {"$setOnInsert": doc}, upsert=True
        )

    async def request(self, request_id: str | None) -> RequestRecord | None:
        """A request followup sent, or None."""
        if request_id is None:
            return None
        doc = await self.requests.find_one({"_id": request_id})
        return RequestRecord.model_validate({**doc, "request_id": doc["_id"]}) if doc else None

    async def record_outcome(self, request_id: str, *, outcome: str, event_id: str) -> None:
        """Attach a reported outcome to its request."""
        await self.requests.update_one(
            {"_id": request_id},
            {"$addToSet": {"outcomes": {"outcome": outcome, "event": event_id}}},
        )
