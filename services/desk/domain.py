"""The desk's read model: a case's timeline and open care requests, the roster; pure."""

from collections.abc import Iterable
from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from services.desk import wording
from shared.events import (
    CareContactCompleted,
    CareContactRequested,
    CaseAssigned,
    CaseClassified,
    CaseReclassified,
    CaseResolved,
    ContactPoint,
    ContractSigned,
    Event,
    FeeQuoted,
    RosterPerson,
    RosterUpdated,
    SurveyScored,
)
from shared.events.enums import CareKind, Channel, LegalField, Priority, ResolutionOutcome

TIMELINE_MAX = 300
"""Entries a case keeps: the oldest leave first (a case's whole story fits easily)."""


class Entry(BaseModel):
    """One line of a case's timeline."""

    model_config = ConfigDict(frozen=True)

    event_id: str
    event_type: str
    at: AwareDatetime
    title: str
    detail: str | None = None
    actor: str | None = None


class CareTask(BaseModel):
    """A care contact followup asked for and nobody has reported yet."""

    model_config = ConfigDict(frozen=True)

    request_id: str
    kind: CareKind
    channel: Channel
    contact: ContactPoint | None = None
    """How to reach the customer for this contact (personal data: shown, never logged)."""
    due_at: AwareDatetime
    priority: Priority = Priority.NORMAL
    attempt: int = 1
    correlation_id: str = ""


class CaseRecord(BaseModel):
    """What the desk knows of one case (personal data: shown to signed-in staff only)."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["case"] = "case"
    case_id: str
    correlation_id: str = ""
    customer_id: str | None = None
    contact: ContactPoint | None = None
    legal_field: LegalField | None = None
    is_complaint: bool = False
    assignee_id: str | None = None
    last_agent_id: str | None = None
    resolution: ResolutionOutcome | None = None
    contracts: int = 0
    open_tasks: tuple[CareTask, ...] = ()
    timeline: tuple[Entry, ...] = ()


class PersonRecord(BaseModel):
    """A roster person as the last `roster.updated` gave them."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["person"] = "person"
    person: RosterPerson
    updated_at: AwareDatetime


def case_key(case_id: str) -> str:
    """The read model's key of a case."""
    return f"case/{case_id}"


def person_key(person_id: str) -> str:
    """The read model's key of a roster person."""
    return f"person/{person_id}"


def _entry(event: Event, title: str, detail: str | None = None, actor: str | None = None) -> Entry:
    return Entry(
        event_id=str(event.event_id),
        event_type=event.event_type,
        at=event.occurred_at,
        title=title,
        detail=detail,
        actor=actor,
    )


def _with(case: CaseRecord, entry: Entry, **changes: object) -> CaseRecord:
    timeline = sorted((*case.timeline, entry), key=lambda e: e.at)[-TIMELINE_MAX:]
    return case.model_copy(update={**changes, "timeline": tuple(timeline)})


def recorded(case: CaseRecord | None, event: Event) -> CaseRecord:
    """The case after `event` (its first event opens it)."""
    case = case or CaseRecord(case_id=event.case_id or "", correlation_id=event.correlation_id)
    match event:
        case CaseClassified():
            return _with(
                case,
                _entry(event, wording.classified_title(event), wording.classified_detail(event)),
                customer_id=event.customer_id,
                contact=event.contact,
                legal_field=event.legal_field,
                is_complaint=case.is_complaint or event.is_complaint,
            )
        case CaseReclassified():
            return _with(
                case,
                _entry(
                    event,
                    wording.reclassified_title(event, case.legal_field),
                    event.reason or None,
                    event.agent_id,
                ),
                legal_field=event.legal_field,
            )
        case CaseAssigned():
            return _with(
                case, _entry(event, wording.assigned_title(event)), assignee_id=event.assignee_id
            )
        case FeeQuoted():
            return _with(case, _entry(event, wording.QUOTED, wording.quote_detail(event)))
        case CareContactRequested():
            task = CareTask(
                request_id=event.request_id,
                kind=event.kind,
                channel=event.channel,
                contact=event.contact,
                due_at=event.due_at,
                priority=event.priority,
                attempt=event.attempt,
                correlation_id=event.correlation_id,
            )
            tasks = [t for t in case.open_tasks if t.request_id != event.request_id]
            return _with(
                case,
                _entry(event, wording.requested_title(event)),
                open_tasks=(*tasks, task),
                contact=case.contact or event.contact,
                customer_id=case.customer_id or event.customer_id,
            )
        case CareContactCompleted():
            tasks = tuple(t for t in case.open_tasks if t.request_id != event.request_id)
            return _with(
                case,
                _entry(event, wording.completed_title(event), event.note, event.agent_id),
                open_tasks=tasks,
                last_agent_id=event.agent_id,
            )
        case ContractSigned():
            return _with(
                case,
                _entry(event, wording.contract_title(event), actor=event.recorded_by),
                contracts=case.contracts + 1,
            )
        case CaseResolved():
            return _with(
                case,
                _entry(event, wording.resolved_title(event), event.summary, event.recorded_by),
                resolution=event.outcome,
            )
        case SurveyScored():
            return _with(case, _entry(event, wording.scored_title(event), event.comment))
    return case


def roster_person(event: RosterUpdated) -> PersonRecord:
    """The roster person a `roster.updated` describes."""
    return PersonRecord(person=event.person, updated_at=event.occurred_at)


def is_mine(case: CaseRecord, person_id: str) -> bool:
    """True for a case the person holds (lawyer) or last called (agent)."""
    return person_id in (case.assignee_id, case.last_agent_id)


class QueueItem(BaseModel):
    """One line of today's queue."""

    model_config = ConfigDict(frozen=True)

    case: CaseRecord
    task: CareTask
    mine: bool
    overdue: bool


def todays_queue(
    cases: Iterable[CaseRecord], *, person_id: str, now: datetime, until: datetime
) -> list[QueueItem]:
    """Care contacts due by `until`: mine first, then complaints, then the most overdue."""
    items = [
        QueueItem(case=case, task=task, mine=is_mine(case, person_id), overdue=task.due_at < now)
        for case in cases
        for task in case.open_tasks
        if task.due_at <= until
    ]
    items.sort(
        key=lambda i: (not i.mine, i.task.priority != Priority.HIGH, i.task.due_at, i.case.case_id)
    )
    return items


def matches(case: CaseRecord, query: str) -> bool:
    """True when the case id, or its customer's phone, e-mail or name contains `query`."""
    needle = query.strip().casefold()
    if not needle:
        return False
    contact = case.contact
    digits = "".join(ch for ch in needle if ch.isdigit())
    haystack = [case.case_id, case.customer_id or ""]
    if contact is not None:
        haystack += [contact.email or "", contact.name or ""]
        if digits and len(digits) >= 6 and contact.phone:
            local = (
                "0" + contact.phone.removeprefix("+84") if contact.phone.startswith("+84") else ""
            )
            if digits in contact.phone or (local and digits in local):
                return True
    return any(needle in value.casefold() for value in haystack if value)


class Roster(BaseModel):
    """The roster file's shape (deploy/config/roster.yaml)."""

    people: list[RosterPerson] = Field(default_factory=list)


def current_roster(
    from_file: Iterable[RosterPerson], updates: Iterable[PersonRecord]
) -> list[RosterPerson]:
    """The roster file overlaid by the run-time updates, by id."""
    people = {p.id: p for p in from_file}
    for record in sorted(updates, key=lambda r: r.updated_at):
        people[record.person.id] = record.person
    return sorted(people.values(), key=lambda p: (not p.active, p.role, p.id))
