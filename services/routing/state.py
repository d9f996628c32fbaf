"""Routing's state on the runtime: the roster with its held slots, the cases, the queue.

Keys (docs/services/routing.md, "Storage"): `roster`, `case/<id>` and the queue's
`wait/<entry>` (a key per waiting case, listed in serving order) live in the one partition
of the internal `routing.decide` topic (key `roster`), so one writer owns capacity;
`contract/<id>` lives in its case's partition. Values are immutable: every change returns
a new value.
"""

from dataclasses import replace
from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from services.routing.domain import Loads, RoutedCase, person_fingerprint
from shared.events import DeliveryMethod, LegalField, Role, RosterPerson

ROSTER_KEY = "roster"
"""The constant key of `routing.decide`, and the roster's own key in its partition."""
WAIT_PREFIX = "wait/"
"""The queue: a key per waiting case, `wait/<waiting_entry>`, listed in serving order."""
QUEUE_KEY = "queue"
"""Where the queue was one value (`Queue`) before it got a key per case: moved when read."""

ROUTING, WAITING, ASSIGNED, RESOLVED = "routing", "waiting", "assigned", "resolved"
CaseStateName = Literal["routing", "waiting", "assigned", "resolved"]


def case_key(case_id: str) -> str:
    """The key of a case's routing record."""
    return f"case/{case_id}"


def wait_key(entry: str) -> str:
    """The key a waiting case's queue entry is stored under."""
    return f"{WAIT_PREFIX}{entry}"


def contract_key(contract_id: str) -> str:
    """The key of a signed contract (in its case's partition)."""
    return f"contract/{contract_id}"


class Roster(BaseModel):
    """Everyone on the roster and the slots each holds: what capacity is counted from."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["roster"] = "roster"
    people: dict[str, RosterPerson] = Field(default_factory=dict)
    fingerprints: dict[str, str] = Field(default_factory=dict)
    """Each person's roster-file entry as last applied (a run-time change survives restarts)."""
    held: dict[str, dict[int, str]] = Field(default_factory=dict)
    """Person → slot number → the case holding it."""

    def active(self, legal_field: LegalField | None = None) -> list[RosterPerson]:
        """Active people, those who know `legal_field` when given, by id."""
        return [
            p
            for _, p in sorted(self.people.items())
            if p.active and (legal_field is None or legal_field in p.legal_fields)
        ]

    def loads(self) -> Loads:
        """Slot numbers each person holds now."""
        return {person: frozenset(slots) for person, slots in self.held.items() if slots}

    def with_person(self, person: RosterPerson, *, from_file: bool = False) -> "Roster":
        """The roster with the person's full new record (a file entry remembers its print)."""
        prints = self.fingerprints
        if from_file:
            prints = {**prints, person.id: person_fingerprint(person)}
        people = {**self.people, person.id: person}
        return self.model_copy(update={"people": people, "fingerprints": prints})

    def take(self, person_id: str, slot: int, case_id: str) -> "Roster":
        """The person's `slot` now held by the case."""
        held = {**self.held, person_id: {**self.held.get(person_id, {}), slot: case_id}}
        return self.model_copy(update={"held": held})

    def release(self, person_id: str, slot: int) -> "Roster":
        """The person's `slot` free again."""
        slots = {s: c for s, c in self.held.get(person_id, {}).items() if s != slot}
        return self.model_copy(update={"held": {**self.held, person_id: slots}})

    def slots_of(self, person_id: str) -> list[tuple[str, int]]:
        """(case id, slot) of each case the person holds, by case id."""
        return sorted((case, slot) for slot, case in self.held.get(person_id, {}).items())


class Resolution(BaseModel):
    """How a case ended (the first case.resolved counts)."""

    model_config = ConfigDict(frozen=True)

    outcome: str
    lawyer_id: str | None
    resolved_at: datetime


class CaseRecord(BaseModel):
    """Routing's record of a case: its facts, who holds it, whether it waits or is over."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["case"] = "case"
    case_id: str
    case: RoutedCase | None = None
    """None while only its resolution is known (the classification comes late)."""
    state: CaseStateName = ROUTING
    assignee_id: str | None = None
    assignee_role: Role | None = None
    slot: int | None = None
    previous_assignee_id: str | None = None
    waiting_reason: str | None = None
    correlation_id: str = ""
    """The case's story: the correlation id of the case.classified that opened it."""
    legal_aid: bool = False
    channel: str | None = None
    customer_id: str | None = None
    recommended_method: DeliveryMethod | None = None
    resolution: Resolution | None = None
    escalations: tuple[str, ...] = ()
    """The breached clocks (sla targets) routing already escalated: once each."""
    queued: str | None = None
    """The queue entry the case waits under (`wait_key`), while it waits."""

    def routed(self) -> RoutedCase:
        """The case's routing facts (only for a classified case)."""
        assert self.case is not None
        return self.case

    def assigned(self, person: RosterPerson, slot: int) -> "CaseRecord":
        """The case now with `person`, in `slot`."""
        update = {"state": ASSIGNED, "assignee_id": person.id, "assignee_role": person.role}
        return self.model_copy(update={**update, "slot": slot, "waiting_reason": None})

    def waiting(self, reason: str) -> "CaseRecord":
        """Nobody could take the case: it waits."""
        update = {"state": WAITING, "assignee_id": None, "assignee_role": None, "slot": None}
        return self.model_copy(update={**update, "waiting_reason": reason})

    def released(self) -> "CaseRecord":
        """Taken from its deactivated holder, to be reassigned."""
        previous = self.assignee_id
        update = {"state": ROUTING, "assignee_id": None, "assignee_role": None, "slot": None}
        return self.model_copy(update={**update, "previous_assignee_id": previous})

    def with_field(self, legal_field: LegalField) -> "CaseRecord":
        """Staff corrected the case's field."""
        case = self.routed()
        return self.model_copy(update={"case": replace(case, legal_field=legal_field)})

    def escalated(self, target: str) -> "CaseRecord":
        """The case with the breach of `target` escalated."""
        return self.model_copy(update={"escalations": (*self.escalations, target)})

    def with_flags(self, *, is_dispute: bool, is_complaint: bool) -> "CaseRecord":
        """A later contact made the case a dispute or a complaint: it stays so."""
        case = self.routed()
        raised = RoutedCase(
            case_id=case.case_id,
            legal_field=case.legal_field,
            is_dispute=case.is_dispute or is_dispute,
            is_complaint=case.is_complaint or is_complaint,
            opened_at=case.opened_at,
        )
        return self.model_copy(update={"case": raised})


def waiting_entry(case: RoutedCase) -> str:
    """A waiting case as the queue lists it: one string whose order is the serving order
    (complaints first, then the oldest, then by id) and which names the field it needs."""
    opened = case.opened_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")
    return "|".join(("0" if case.is_complaint else "1", opened, case.case_id, case.legal_field))


def entry_case(entry: str) -> str:
    """The case id of a queue entry."""
    return entry.split("|")[2]


def entry_field(entry: str) -> str:
    """The legal field a queue entry's case needs."""
    return entry.split("|")[3]


class Waiting(BaseModel):
    """The value of a queue entry's key (the entry itself is the key)."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["waiting"] = "waiting"


class Queue(BaseModel):
    """The queue as one value, as stored before each waiting case got its own key (a
    value rewritten whole by every batch that changed it): moved to keys when read."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["queue"] = "queue"
    entries: tuple[str, ...] = ()
    """`waiting_entry` of each waiting case, sorted."""


class Contract(BaseModel):
    """A contract signed on a case (kept in the case's partition)."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["contract"] = "contract"
    case_id: str
    amount_vnd: int
    delivery_method: DeliveryMethod
    signed_at: datetime


RoutingValue = Annotated[
    Roster | CaseRecord | Waiting | Queue | Contract, Field(discriminator="kind")
]
"""Every value routing's runtime stores, told apart by `kind`."""


def is_idle(value: object) -> bool:
    """Values that may leave memory (reloaded by key when needed): resolved cases, contracts."""
    return isinstance(value, Contract) or (
        isinstance(value, CaseRecord) and value.state == RESOLVED
    )
