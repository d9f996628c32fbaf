"""The audit trail: who did what, when, from where — a log line and a stored record."""

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import structlog
from pymongo import DESCENDING

log = structlog.get_logger("lexcare.desk")


@dataclass(frozen=True)
class AuditRecord:
    """One staff action (ids only: no customer's personal data)."""

    at: datetime
    person_id: str
    role: str
    action: str
    address: str
    case_id: str | None = None
    event_id: str | None = None
    detail: str | None = None
    """Non-personal detail: an outcome, a roster id, why a sign-in failed."""


class AuditTrail:
    """Stores each record in the desk's `audit` collection and logs it."""

    def __init__(self, db: Any) -> None:
        self.collection = db["audit"]

    async def prepare(self) -> None:
        """Index the trail by person and time."""
        await self.collection.create_index([("person_id", 1), ("at", DESCENDING)])

    async def record(self, entry: AuditRecord) -> None:
        """Log the action and store it (an insert: the trail is append-only)."""
        log.info(
            "desk_action",
            action=entry.action,
            person_id=entry.person_id,
            role=entry.role,
            case_id=entry.case_id,
            event_id=entry.event_id,
            detail=entry.detail,
        )
        await self.collection.insert_one(asdict(entry))

    async def latest(self, limit: int = 200) -> list[AuditRecord]:
        """The newest records first."""
        cursor = self.collection.find({}, {"_id": 0}).sort("at", DESCENDING).limit(limit)
        return [AuditRecord(**doc) for doc in await cursor.to_list(None)]
