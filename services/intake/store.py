"""The MongoDB collections intake owns: identifiers, customers, cases, contacts, contracts.

Identity is atomic by unique keys: `identifiers` holds one document per phone, email or
channel sender id (`_id = "phone:+84912345678"`) naming its customer. Two contacts racing
to register one identifier insert the same `_id`; exactly one wins (FerretDB's
conditional updates are not atomic under concurrency, unique inserts are).
"""

import contextlib
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from services.intake.domain import Contact, KnownCustomer, OpenCase, Profile
from shared.events import IncomeTier, LegalAidCategory, LegalField, Segment
from shared.idempotency import ProcessedEvents
from shared.mongo import find_by_ids

OPEN, RESOLVED = "open", "resolved"


@dataclass(frozen=True)
class CustomerState:
    """A customer record as the handlers use it."""

    customer_id: str
    first_seen_at: datetime
    last_activity_at: datetime | None
    segment: Segment | None
    profile: Profile


def _customer(doc: dict[str, Any]) -> CustomerState:
    birth = doc.get("birth_date")
    return CustomerState(
        customer_id=doc["_id"],
        first_seen_at=doc["first_seen_at"],
        last_activity_at=doc.get("last_activity_at"),
        segment=Segment(doc["segment"]) if doc.get("segment") else None,
        profile=Profile(
            name=doc.get("name"),
            phones=tuple(doc.get("phones", [])),
            emails=tuple(doc.get("emails", [])),
            address=doc.get("address"),
            birth_date=date.fromisoformat(birth) if birth else None,
            income_tier=IncomeTier(doc["income_tier"]) if doc.get("income_tier") else None,
            legal_aid=tuple(LegalAidCategory(c) for c in doc.get("legal_aid", [])),
        ),
    )


class IntakeStore:
    """Intake's collections, behind intention-named methods."""

    def __init__(self, db: AsyncDatabase) -> None:
        self.identifiers = db["identifiers"]
        self.customers = db["customers"]
        self.cases = db["cases"]
        self.contacts = db["contacts"]
        self.contracts = db["contracts"]
        self.merges = db["merges"]
        self.segment_changes = db["segment_changes"]
        self.processed = ProcessedEvents(db)

    async def prepare(self) -> None:
        """Create the indexes intake relies on."""
        await self.identifiers.create_index("customer_id")
        await self.cases.create_index([("customer_id", 1), ("status", 1)])
        await self.contracts.create_index("customer_id")
        await self.processed.prepare()

    # ------------------------------------------------------------ identity

    async def root_of(self, customer_id: str) -> str:
        """The surviving customer id, following merges."""
        seen = {customer_id}
        while True:
            doc = await self.customers.find_one({"_id": customer_id}, {"merged_into": 1})
            nxt = doc.get("merged_into") if doc else None
            if not nxt or nxt in seen:
                return customer_id
            seen.add(nxt)
            customer_id = nxt

    async def owners_of(self, keys: list[str]) -> dict[str, str]:
        """The surviving customer of each identifier key already known."""
        docs = await find_by_ids(self.identifiers, keys)
        return {d["_id"]: await self.root_of(d["customer_id"]) for d in docs}

    async def claim_identifier(self, key: str, customer_id: str) -> str:
        """Register `key` for `customer_id` unless someone holds it: return its owner."""
        try:
            await self.identifiers.insert_one({"_id": key, "customer_id": customer_id})
        except DuplicateKeyError:
            doc = await self.identifiers.find_one({"_id": key})
            return await self.root_of(doc["customer_id"]) if doc else customer_id
        return customer_id

    async def known_customers(self, customer_ids: set[str]) -> list[KnownCustomer]:
        """The given customers with their first-seen time, for choosing a merge survivor."""
        docs = await find_by_ids(self.customers, sorted(customer_ids), {"first_seen_at": 1})
        return [KnownCustomer(d["_id"], d["first_seen_at"]) for d in docs]

    async def customer(self, customer_id: str) -> CustomerState | None:
        """A customer record, or None."""
        doc = await self.customers.find_one({"_id": customer_id})
        return _customer(doc) if doc else None

    async def record_customer_contact(
        self, customer_id: str, contact: Contact, at: datetime
    ) -> None:
        """Create the customer on first sight and fold the contact's details in (repeatable)."""
        details: dict[str, Any] = {
            "name": contact.name,
            "address": contact.address,
            "birth_date": contact.birth_date.isoformat() if contact.birth_date else None,
            "income_tier": contact.income_tier.value if contact.income_tier else None,
        }
        update: dict[str, Any] = {
            "$setOnInsert": {"first_seen_at": at},
            "$max": {"last_activity_at": at},
        }
        given = {k: v for k, v in details.items() if v is not None}
        if given:
            update["$set"] = given
        additions = {
            "phones": [contact.phone] if contact.phone else [],
            "emails": [contact.email] if contact.email else [],
            "legal_aid": [c.value for c in contact.legal_aid],
        }
        additions = {k: {"$each": v} for k, v in additions.items() if v}
        if additions:
            update["$addToSet"] = additions
        await self.customers.update_one({"_id": customer_id}, update, upsert=True)

    async def set_segment(self, customer_id: str, segment: Segment) -> None:
        """Remember the customer's current segment."""
        await self.customers.update_one({"_id": customer_id}, {"$set": {"segment": segment.value}})

    async def recorded_merge(self, contact_id: str) -> dict[str, Any] | None:
        """The merge a contact caused, if it caused one."""
        return await self.merges.find_one({"_id": contact_id})

    async def merge_customers(
        self, survivor: str, others: list[str], *, contact_id: str
    ) -> dict[str, Any]:
        """Fold `others` into `survivor`: identifiers, cases, contracts, profile. Repeatable."""
        moved = await self.cases.find({"customer_id": {"$in": others}}, {"_id": 1}).to_list(None)
        record = {
            "_id": contact_id,
            "survivor": survivor,
            "merged": sorted(others),
            "moved_case_ids": sorted(d["_id"] for d in moved),
        }
        with contextlib.suppress(DuplicateKeyError):
            await self.merges.insert_one(record)
        folded = await find_by_ids(self.customers, others)
        await self.customers.update_many(
            {"_id": {"$in": others}}, {"$set": {"merged_into": survivor}}
        )
        for collection in (self.identifiers, self.cases, self.contracts):
            await collection.update_many(
                {"customer_id": {"$in": others}}, {"$set": {"customer_id": survivor}}
            )
        update: dict[str, Any] = {
            "$addToSet": {
                k: {"$each": sorted({v for d in folded for v in d.get(k, [])})}
                for k in ("phones", "emails", "legal_aid")
            }
        }
        firsts = [d["first_seen_at"] for d in folded if d.get("first_seen_at")]
        lasts = [d["last_activity_at"] for d in folded if d.get("last_activity_at")]
        if firsts:
            update["$min"] = {"first_seen_at": min(firsts)}
        if lasts:
            update["$max"] = {"last_activity_at": max(lasts)}
        await self.customers.update_one({"_id": survivor}, update)
        return (await self.recorded_merge(contact_id)) or record

    # ------------------------------------------------------------ cases and contacts

    async def open_cases(self, customer_id: str) -> list[OpenCase]:
        """The customer's cases that are not resolved."""
        docs = await self.cases.find({"customer_id": customer_id, "status": OPEN}).to_list(None)
        return [
            OpenCase(
                case_id=d["_id"],
                legal_field=LegalField(d["legal_field"]),
                opened_at=d["opened_at"],
                confidence=d.get("confidence", 0.0),
                needs_triage=d.get("needs_triage", False),
            )
            for d in docs
        ]

    async def count_cases(self, customer_id: str) -> int:
        """How many cases the customer has had."""
        return await self.cases.count_documents({"customer_id": customer_id})

    async def recorded_contact(self, contact_id: str) -> dict[str, Any] | None:
        """The decision stored for a contact, if it was already handled (fully or not)."""
        return await self.contacts.find_one({"_id": contact_id})

    async def record_contact(self, decision: dict[str, Any]) -> dict[str, Any]:
        """Store a contact's decision once; a repeat returns the first one stored."""
        try:
            await self.contacts.insert_one(decision)
        except DuplicateKeyError:
            return await self.contacts.find_one({"_id": decision["_id"]}) or decision
        return decision

    async def put_contact_on_case(
        self, *, case_id: str, case_fields: dict[str, Any], contact_id: str, documents: list[str]
    ) -> list[str]:
        """Open the case if new and add the contact and its documents; return all documents."""
        update: dict[str, Any] = {
            "$setOnInsert": {**case_fields, "status": OPEN},
            "$addToSet": {"contact_ids": contact_id},
        }
        if documents:
            update["$addToSet"]["documents"] = {"$each": documents}
        await self.cases.update_one({"_id": case_id}, update, upsert=True)
        doc = await self.cases.find_one({"_id": case_id}, {"documents": 1})
        return list(doc.get("documents", [])) if doc else documents

    async def mark_dispute(self, case_id: str) -> None:
        """A contact on the case describes a dispute: the case is one."""
        await self.cases.update_one({"_id": case_id}, {"$set": {"is_dispute": True}})

    async def case(self, case_id: str) -> dict[str, Any] | None:
        """A case document, or None."""
        return await self.cases.find_one({"_id": case_id})

    async def resolve_case(self, case_id: str, at: datetime) -> bool:
        """Close the case (repeatable); False when intake does not know it."""
        result = await self.cases.update_one(
            {"_id": case_id}, {"$set": {"status": RESOLVED, "resolved_at": at}}
        )
        return result.matched_count > 0

    # ------------------------------------------------------------ contracts and segments

    async def record_contract(
        self, *, contract_id: str, customer_id: str, case_id: str, at: datetime
    ) -> None:
        """Count a signed contract once, whatever the redeliveries."""
        with contextlib.suppress(DuplicateKeyError):
            await self.contracts.insert_one(
                {"_id": contract_id, "customer_id": customer_id, "case_id": case_id, "at": at}
            )
        await self.customers.update_one({"_id": customer_id}, {"$max": {"last_activity_at": at}})

    async def count_contracts(self, customer_id: str) -> int:
        """Contracts the customer signed."""
        return await self.contracts.count_documents({"customer_id": customer_id})

    async def segment_change(self, key: str) -> dict[str, Any] | None:
        """The claim announcing one segment change, if someone made it."""
        return await self.segment_changes.find_one({"_id": key})

    async def claim_segment_change(self, key: str, *, by: str, previous: str) -> dict[str, Any]:
        """Claim the right to announce one segment change; return the winning claim."""
        claim = {"_id": key, "by": by, "previous": previous}
        try:
            await self.segment_changes.insert_one(claim)
        except DuplicateKeyError:
            return await self.segment_changes.find_one({"_id": key}) or claim
        return claim
