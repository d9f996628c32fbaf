"""An in-memory IntakeStore for handler tests: same intention-named methods, plain dicts."""

from dataclasses import replace
from datetime import datetime
from typing import Any

from services.intake.domain import Contact, KnownCustomer, OpenCase, Profile
from services.intake.store import OPEN, RESOLVED, CustomerState
from shared.events import LegalField, Segment
from tests.fakes import MemoryProcessed


class FakeIntakeStore:
    """IntakeStore's behaviour without a database."""

    def __init__(self) -> None:
        self.processed = MemoryProcessed()
        self.identifiers: dict[str, str] = {}
        self.customers: dict[str, CustomerState] = {}
        self.merged_into: dict[str, str] = {}
        self.cases: dict[str, dict[str, Any]] = {}
        self.contacts: dict[str, dict[str, Any]] = {}
        self.contracts: dict[str, str] = {}
        self.merges: dict[str, dict[str, Any]] = {}
        self.segment_changes: dict[str, dict[str, Any]] = {}

    async def root_of(self, customer_id: str) -> str:
        while customer_id in self.merged_into:
            customer_id = self.merged_into[customer_id]
        return customer_id

    async def owners_of(self, keys: list[str]) -> dict[str, str]:
        return {k: await self.root_of(self.identifiers[k]) for k in keys if k in self.identifiers}

    async def claim_identifier(self, key: str, customer_id: str) -> str:
        return await self.root_of(self.identifiers.setdefault(key, customer_id))

    async def known_customers(self, customer_ids: set[str]) -> list[KnownCustomer]:
        return [
            KnownCustomer(i, self.customers[i].first_seen_at)
            for i in customer_ids
            if i in self.customers
        ]

    async def customer(self, customer_id: str) -> CustomerState | None:
        return self.customers.get(customer_id)

    async def record_customer_contact(
        self, customer_id: str, contact: Contact, at: datetime
    ) -> None:
        old = self.customers.get(customer_id) or CustomerState(customer_id, at, at, None, Profile())
        p = old.profile
        profile = Profile(
            name=contact.name or p.name,
            phones=tuple(dict.fromkeys([*p.phones, *([contact.phone] if contact.phone else [])])),
            emails=tuple(dict.fromkeys([*p.emails, *([contact.email] if contact.email else [])])),
            address=contact.address or p.address,
            birth_date=contact.birth_date or p.birth_date,
            income_tier=contact.income_tier or p.income_tier,
            legal_aid=tuple(dict.fromkeys([*p.legal_aid, *contact.legal_aid])),
        )
        last = max(old.last_activity_at or at, at)
        self.customers[customer_id] = replace(old, last_activity_at=last, profile=profile)

    async def set_segment(self, customer_id: str, segment: Segment) -> None:
        self.customers[customer_id] = replace(self.customers[customer_id], segment=segment)

    async def recorded_merge(self, contact_id: str) -> dict[str, Any] | None:
        return self.merges.get(contact_id)

    async def merge_customers(
        self, survivor: str, others: list[str], *, contact_id: str
    ) -> dict[str, Any]:
        moved = sorted(c for c, doc in self.cases.items() if doc["customer_id"] in others)
        record = {"survivor": survivor, "merged": sorted(others), "moved_case_ids": moved}
        self.merges.setdefault(contact_id, record)
        for other in others:
            self.merged_into[other] = survivor
        for key, owner in self.identifiers.items():
            if owner in others:
                self.identifiers[key] = survivor
        for doc in self.cases.values():
            if doc["customer_id"] in others:
                doc["customer_id"] = survivor
        for contract, owner in self.contracts.items():
            if owner in others:
                self.contracts[contract] = survivor
        return self.merges[contact_id]

    async def open_cases(self, customer_id: str) -> list[OpenCase]:
        return [
            OpenCase(
                c, LegalField(d["legal_field"]), d["opened_at"], d["confidence"], d["needs_triage"]
            )
            for c, d in self.cases.items()
            if d["customer_id"] == customer_id and d["status"] == OPEN
        ]

    async def count_cases(self, customer_id: str) -> int:
        return sum(d["customer_id"] == customer_id for d in self.cases.values())

    async def recorded_contact(self, contact_id: str) -> dict[str, Any] | None:
        return self.contacts.get(contact_id)

    async def record_contact(self, decision: dict[str, Any]) -> dict[str, Any]:
        return self.contacts.setdefault(decision["_id"], decision)

    async def put_contact_on_case(
        self, *, case_id: str, case_fields: dict[str, Any], contact_id: str, documents: list[str]
    ) -> list[str]:
        doc = self.cases.setdefault(
            case_id, {**case_fields, "status": OPEN, "contact_ids": [], "documents": []}
        )
        doc["contact_ids"] = list(dict.fromkeys([*doc["contact_ids"], contact_id]))
        doc["documents"] = list(dict.fromkeys([*doc["documents"], *documents]))
        return doc["documents"]

    async def mark_dispute(self, case_id: str) -> None:
        self.cases[case_id]["is_dispute"] = True

    async def case(self, case_id: str) -> dict[str, Any] | None:
        return self.cases.get(case_id)

    async def resolve_case(self, case_id: str, at: datetime) -> bool:
        if case_id not in self.cases:
            return False
        self.cases[case_id]["status"] = RESOLVED
        return True

    async def record_contract(
        self, *, contract_id: str, customer_id: str, case_id: str, at: datetime
    ) -> None:
        self.contracts.setdefault(contract_id, customer_id)

    async def count_contracts(self, customer_id: str) -> int:
        return sum(owner == customer_id for owner in self.contracts.values())

    async def segment_change(self, key: str) -> dict[str, Any] | None:
        return self.segment_changes.get(key)

    async def claim_segment_change(self, key: str, *, by: str, previous: str) -> dict[str, Any]:
        return self.segment_changes.setdefault(key, {"by": by, "previous": previous})
