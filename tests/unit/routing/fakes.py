"""An in-memory RoutingStore with the same claims semantics (unique slot and case)."""

from datetime import datetime
from typing import Any

from services.routing.domain import Loads, RoutedCase
from services.routing.store import (
    ASSIGNED,
    RELEASING,
    RESOLVED,
    ROUTING,
    WAITING,
    Claim,
    Parked,
)
from shared.events import LegalField, RosterPerson
from tests.fakes import MemoryProcessed


class FakeRoutingStore:
    """Routing's collections as dicts."""

    def __init__(self, *people: RosterPerson) -> None:
        self.people = {p.id: p for p in people}
        self.slots: dict[str, Claim] = {}
        self.cases: dict[str, dict[str, Any]] = {}
        self.contracts: dict[str, dict[str, Any]] = {}
        self.resolutions: dict[str, dict[str, Any]] = {}
        self.processed = MemoryProcessed()

    async def save_person(self, person: RosterPerson, *, at: datetime) -> None:
        self.people[person.id] = person

    async def active_people(self, legal_field: LegalField | None = None) -> list[RosterPerson]:
        return sorted(
            (
                p
                for p in self.people.values()
                if p.active and (legal_field is None or legal_field in p.legal_fields)
            ),
            key=lambda p: p.id,
        )

    async def loads(self, person_ids: list[str]) -> dict[str, frozenset[int]]:
        held: dict[str, set[int]] = {}
        for claim in self.slots.values():
            if claim.person_id in person_ids:
                held.setdefault(claim.person_id, set()).add(claim.slot)
        return {pid: frozenset(s) for pid, s in held.items()}

    async def slot_of(self, case_id: str) -> Claim | None:
        return next((c for c in self.slots.values() if c.case_id == case_id), None)

    async def claim_first_free(
        self, candidates: list[RosterPerson], loads: Loads, *, case_id: str, cause: str, at: Any
    ) -> Claim | None:
        held = await self.slot_of(case_id)
        if held is not None or not candidates:
            return held
        for person in candidates:
            for slot in range(person.capacity):
                if f"{person.id}#{slot}" not in self.slots:
                    claim = Claim(person.id, slot, person.role, case_id, cause)
                    self.slots[f"{person.id}#{slot}"] = claim
                    return claim
        return None

    async def release(self, case_id: str) -> None:
        self.slots = {k: c for k, c in self.slots.items() if c.case_id != case_id}

    async def take_cases_from(self, person_id: str, *, cause: str) -> None:
        for key, claim in list(self.slots.items()):
            if claim.person_id == person_id:
                self.cases[claim.case_id].update(
                    state=RELEASING, released_by=cause, previous_assignee_id=person_id
                )
                del self.slots[key]

    async def cases_released_by(self, cause: str) -> list[Parked]:
        return [
            self._parked(doc)
            for doc in self.cases.values()
            if doc.get("released_by") == cause and doc["state"] == RELEASING
        ]

    async def knows_case(self, case_id: str) -> bool:
        return case_id in self.cases

    async def open_case(self, case: RoutedCase, facts: dict[str, Any]) -> None:
        doc = self.cases.setdefault(case.case_id, {"state": ROUTING})
        doc.update(routed=case, **facts)

    async def raise_flags(self, case_id: str, *, is_dispute: bool, is_complaint: bool) -> None:
        doc = self.cases[case_id]
        routed = doc["routed"]
        doc["routed"] = RoutedCase(
            case_id,
            routed.legal_field,
            routed.is_dispute or is_dispute,
            routed.is_complaint or is_complaint,
            routed.opened_at,
        )

    async def mark_assigned(self, claim: Claim) -> None:
        doc = self.cases[claim.case_id]
        if doc["state"] != RESOLVED:
            doc.update(state=ASSIGNED, assignee_id=claim.person_id)

    async def mark_waiting(self, case_id: str, *, reason: str) -> None:
        doc = self.cases[case_id]
        if doc["state"] != RESOLVED:
            doc.update(state=WAITING, assignee_id=None, waiting_reason=reason)

    async def waiting_cases(self, *, limit: int) -> list[Parked]:
        waiting = [self._parked(d) for d in self.cases.values() if d["state"] == WAITING]
        return waiting[:limit]

    @staticmethod
    def _parked(doc: dict[str, Any]) -> Parked:
        return Parked(doc["routed"], doc.get("previous_assignee_id"), doc.get("correlation_id"))

    async def resolve(
        self, case_id: str, *, outcome: str, lawyer_id: str | None, at: datetime
    ) -> None:
        self.resolutions.setdefault(case_id, {"outcome": outcome, "lawyer_id": lawyer_id})
        if case_id in self.cases:
            self.cases[case_id]["state"] = RESOLVED
        await self.release(case_id)

    async def is_resolved(self, case_id: str) -> bool:
        return case_id in self.resolutions

    async def record_contract(
        self, case_id: str, *, contract_id: str, amount_vnd: int, method: str, at: datetime
    ) -> None:
        self.contracts.setdefault(
            contract_id, {"case_id": case_id, "amount_vnd": amount_vnd, "delivery_method": method}
        )

    def holder(self, case_id: str) -> str | None:
        """Who holds the case's slot now."""
        return next((c.person_id for c in self.slots.values() if c.case_id == case_id), None)
