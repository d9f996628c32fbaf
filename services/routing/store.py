"""The MongoDB collections routing owns: roster, capacity slots, cases, processed events.

Capacity is counted in slot documents, never in a counter. A person with capacity c has
slots `<person id>#0` .. `#c-1`; holding a case means owning the slot document whose `_id`
is one of those keys and whose `case_id` is the case. Both `_id` and `case_id` are unique,
so one insert atomically takes a free slot AND proves the case holds no other slot: two
routing instances can never give one person more than capacity, nor one case two people
(a conditional `$inc` is not atomic on FerretDB; a unique-key insert is, on MongoDB too).
"""

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from prometheus_client import Counter
from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from services.routing.domain import Loads, RoutedCase, person_fingerprint
from shared.events import LegalField, Role, RosterPerson
from shared.idempotency import ProcessedEvents

ROUTING, WAITING, ASSIGNED, RELEASING, RESOLVED = (
    "routing",
    "waiting",
    "assigned",
    "releasing",
    "resolved",
)
"""A case's states: being routed, waiting in the queue, assigned, taken from a deactivated
person and being reassigned, resolved."""

SLOT_CONFLICTS = Counter(
    "lexcare_routing_slot_conflicts_total",
    "Capacity slot claims lost to another claim of the same slot or case at the same moment.",
)

PERSON_FIELDS = ("name", "role", "legal_fields", "years_experience", "capacity", "active")


@dataclass(frozen=True)
class Claim:
    """A slot a case holds: who has the case, and which event's handling took the slot."""

    person_id: str
    slot: int
    role: Role | None
    case_id: str
    cause: str


async def _upsert(collection: Any, query: dict[str, Any], update: dict[str, Any]) -> None:
    """update_one with upsert; when two writers insert the same new _id at once, the loser
    gets DuplicateKeyError (MongoDB and FerretDB alike) and applies its update to the winner's."""
    try:
        await collection.update_one(query, update, upsert=True)
    except DuplicateKeyError:
        await collection.update_one(query, update, upsert=True)


@dataclass(frozen=True)
class Parked:
    """A case waiting for someone, with the story it belongs to."""

    case: RoutedCase
    previous_assignee_id: str | None
    correlation_id: str | None


def _parked(doc: dict[str, Any]) -> Parked:
    return Parked(_routed(doc), doc.get("previous_assignee_id"), doc.get("correlation_id"))


def _person(doc: dict[str, Any]) -> RosterPerson:
    return RosterPerson(id=doc["_id"], **{k: doc[k] for k in PERSON_FIELDS})


def _routed(doc: dict[str, Any]) -> RoutedCase:
    return RoutedCase(
        case_id=doc["_id"],
        legal_field=LegalField(doc["legal_field"]),
        is_dispute=doc.get("is_dispute", False),
        is_complaint=doc.get("is_complaint", False),
        opened_at=doc["opened_at"],
    )


def _claim(doc: dict[str, Any]) -> Claim:
    role = doc.get("role")
    return Claim(
        person_id=doc["person_id"],
        slot=int(doc["_id"].rsplit("#", 1)[1]),
        role=Role(role) if role else None,
        case_id=doc["case_id"],
        cause=doc["cause"],
    )


class RoutingStore:
    """Routing's state behind intention-named methods."""

    def __init__(self, db: AsyncDatabase) -> None:
        self.roster = db["roster"]
        self.slots = db["slots"]
        self.cases = db["cases"]
        # Facts other consumers record live in documents of their own: FerretDB can lose
        # one of two concurrent updates of one document, even of different fields.
        self.contracts = db["contracts"]
        self.resolutions = db["resolutions"]
        self.processed = ProcessedEvents(db)

    async def prepare(self) -> None:
        """Create the indexes routing relies on (the unique case_id makes claims atomic)."""
        await self.slots.create_index("case_id", unique=True)
        await self.slots.create_index("person_id")
        await self.roster.create_index([("active", ASCENDING), ("legal_fields", ASCENDING)])
        await self.cases.create_index(
            [("state", ASCENDING), ("is_complaint", DESCENDING), ("opened_at", ASCENDING)]
        )
        await self.cases.create_index("released_by")
        await self.processed.prepare()
        await self.contracts.create_index("case_id")

    # --- roster ----------------------------------------------------------------------------

    async def file_fingerprints(self) -> dict[str, str]:
        """Each person's fingerprint as last loaded from the roster file."""
        cursor = self.roster.find({"file_fingerprint": {"$exists": True}}, {"file_fingerprint": 1})
        return {doc["_id"]: doc["file_fingerprint"] async for doc in cursor}

    async def load_from_file(self, people: list[RosterPerson], *, at: datetime) -> None:
        """Apply roster file entries and remember what was loaded (safe to repeat)."""
        for person in people:
            await _upsert(
                self.roster,
                {"_id": person.id},
                {
                    "$set": {
                        **person.model_dump(mode="json", exclude={"id"}),
                        "file_fingerprint": person_fingerprint(person),
                        "updated_at": at,
                    }
                },
            )

    async def save_person(self, person: RosterPerson, *, at: datetime) -> None:
        """Store a person's full new record from a run-time change (safe to repeat)."""
        await _upsert(
            self.roster,
            {"_id": person.id},
            {"$set": {**person.model_dump(mode="json", exclude={"id"}), "updated_at": at}},
        )

    async def active_people(self, legal_field: LegalField | None = None) -> list[RosterPerson]:
        """Active roster people, those who know `legal_field` when given."""
        query: dict[str, Any] = {"active": True}
        if legal_field is not None:
            query["legal_fields"] = str(legal_field)
        return [_person(doc) async for doc in self.roster.find(query).sort("_id", ASCENDING)]

    # --- capacity slots --------------------------------------------------------------------

    async def loads(self, person_ids: list[str]) -> dict[str, frozenset[int]]:
        """Slot numbers each of these people holds now."""
        held: dict[str, set[int]] = defaultdict(set)
        cursor = self.slots.find({"person_id": {"$in": person_ids}}, {"person_id": 1})
        async for doc in cursor:
            held[doc["person_id"]].add(int(doc["_id"].rsplit("#", 1)[1]))
        return {person: frozenset(slots) for person, slots in held.items()}

    async def slot_of(self, case_id: str) -> Claim | None:
        """The slot the case holds, if any."""
        doc = await self.slots.find_one({"case_id": case_id})
        return _claim(doc) if doc else None

    async def claim_first_free(
        self,
        candidates: list[RosterPerson],
        loads: Loads,
        *,
        case_id: str,
        cause: str,
        at: datetime,
    ) -> Claim | None:
        """Take a free slot of the first candidate who still has one, for the case.

        Returns the new claim, or the claim the case already holds (taken by an earlier try
        of the same event, or by another instance: compare `cause`), or None.
        """
        if not candidates:
            return await self.slot_of(case_id)
        for person in candidates:
            for slot in range(person.capacity):
                if slot in loads.get(person.id, frozenset()):
                    continue
                doc = {
                    "_id": f"{person.id}#{slot}",
                    "person_id": person.id,
                    "role": str(person.role),
                    "case_id": case_id,
                    "cause": cause,
                    "at": at,
                }
                try:
                    await self.slots.insert_one(doc)
                except DuplicateKeyError:
                    SLOT_CONFLICTS.inc()
                    held = await self.slot_of(case_id)
                    if held is not None:
                        return held
                    continue  # another instance took this slot just now: try the next
                if await self.slots.count_documents({"person_id": person.id}) > person.capacity:
                    # Slots above a lowered capacity are still held: give this one back.
                    await self.slots.delete_one({"_id": doc["_id"]})
                    break
                return _claim(doc)
        return None

    async def release(self, case_id: str) -> None:
        """Free the slot the case holds, if any (safe to repeat)."""
        await self.slots.delete_many({"case_id": case_id})

    async def take_cases_from(self, person_id: str, *, cause: str) -> None:
        """Move a deactivated person's open cases out of their slots, to be reassigned."""
        for slot in await self.slots.find({"person_id": person_id}).to_list(None):
            await self.cases.update_one(
                {"_id": slot["case_id"]},
                {
                    "$set": {
                        "state": RELEASING,
                        "released_by": cause,
                        "previous_assignee_id": person_id,
                        "assignee_id": None,
                    }
                },
            )
            await self.slots.delete_one({"_id": slot["_id"], "case_id": slot["case_id"]})

    async def cases_released_by(self, cause: str) -> list[Parked]:
        """Cases a roster change took from someone and not reassigned yet."""
        cursor = self.cases.find({"released_by": cause, "state": RELEASING}).sort("_id")
        return [_parked(doc) async for doc in cursor]

    # --- cases -----------------------------------------------------------------------------

    async def knows_case(self, case_id: str) -> bool:
        """True when routing has a record of the case."""
        return await self.cases.find_one({"_id": case_id}, {"_id": 1}) is not None

    async def open_case(self, case: RoutedCase, facts: dict[str, Any]) -> None:
        """Record a new case about to be routed (safe to repeat)."""
        await _upsert(
            self.cases,
            {"_id": case.case_id},
            {
                "$set": {
                    "legal_field": str(case.legal_field),
                    "is_dispute": case.is_dispute,
                    "is_complaint": case.is_complaint,
                    **facts,
                },
                "$min": {"opened_at": case.opened_at},
                "$setOnInsert": {"state": ROUTING},
            },
        )

    async def raise_flags(self, case_id: str, *, is_dispute: bool, is_complaint: bool) -> None:
        """A later contact made the case a dispute or a complaint: it stays so."""
        flags = {"is_dispute": True} if is_dispute else {}
        if is_complaint:
            flags["is_complaint"] = True
        if flags:
            await self.cases.update_one({"_id": case_id}, {"$set": flags})

    async def mark_assigned(self, claim: Claim) -> None:
        """The case is with `claim.person_id` (unless it was resolved meanwhile)."""
        await self.cases.update_one(
            {"_id": claim.case_id, "state": {"$ne": RESOLVED}},
            {
                "$set": {
                    "state": ASSIGNED,
                    "assignee_id": claim.person_id,
                    "assignee_role": str(claim.role) if claim.role else None,
                    "waiting_reason": None,
                }
            },
        )

    async def mark_waiting(self, case_id: str, *, reason: str) -> None:
        """Nobody could take the case: it waits in the queue."""
        await self.cases.update_one(
            {"_id": case_id, "state": {"$ne": RESOLVED}},
            {"$set": {"state": WAITING, "assignee_id": None, "waiting_reason": reason}},
        )

    async def waiting_cases(self, *, limit: int) -> list[Parked]:
        """Cases in the queue, complaints first, then the oldest."""
        cursor = (
            self.cases.find({"state": WAITING})
            .sort([("is_complaint", DESCENDING), ("opened_at", ASCENDING), ("_id", ASCENDING)])
            .limit(limit)
        )
        return [_parked(doc) async for doc in cursor]

    async def resolve(
        self, case_id: str, *, outcome: str, lawyer_id: str | None, at: datetime
    ) -> None:
        """The case is over: record it, take it out of the queue, free its slot (repeatable).

        The resolution is stored before the slot is freed, and whoever claims a slot checks
        for a resolution after claiming: a claim racing a resolution never keeps its slot.
        """
        await _upsert(
            self.resolutions,
            {"_id": case_id},
            {"$setOnInsert": {"outcome": outcome, "lawyer_id": lawyer_id, "resolved_at": at}},
        )
        await self.cases.update_one({"_id": case_id}, {"$set": {"state": RESOLVED}})
        await self.release(case_id)

    async def is_resolved(self, case_id: str) -> bool:
        """True once a case.resolved for the case was handled."""
        return await self.resolutions.find_one({"_id": case_id}, {"_id": 1}) is not None

    async def record_contract(
        self, case_id: str, *, contract_id: str, amount_vnd: int, method: str, at: datetime
    ) -> None:
        """A contract was signed on the case (safe to repeat)."""
        await _upsert(
            self.contracts,
            {"_id": contract_id},
            {
                "$setOnInsert": {
                    "case_id": case_id,
                    "amount_vnd": amount_vnd,
                    "delivery_method": method,
                    "signed_at": at,
                }
            },
        )

    async def open_cases_of(self, person_id: str) -> int:
        """How many cases the person holds now."""
        return await self.slots.count_documents({"person_id": person_id})

    async def waiting_count(self) -> int:
        """How many cases wait in the queue."""
        return await self.cases.count_documents({"state": WAITING})

    async def open_cases_by_person(self) -> dict[str, int]:
        """Open cases per person now (workload)."""
        counts: dict[str, int] = defaultdict(int)
        async for doc in self.slots.find({}, {"person_id": 1}):
            counts[doc["person_id"]] += 1
        return dict(counts)


def now_utc() -> datetime:
    """The processing time, for bookkeeping fields only (rules use event times)."""
    return datetime.now(UTC)
