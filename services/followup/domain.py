"""Followup's rules (SPEC §4): when the care team contacts a customer, and about what.

Pure: the functions here take what followup remembers (a case, a customer, a request) and
the time, and return timers to schedule, requests to send and the new memory. Timer ids
are derived from their cause, so replaying an event or re-firing a timer plans the same
timers again; a case or customer remembers the timers it planned (`planned`), and one
planned before is never scheduled again (`not_planned`).
"""

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from services.followup.sla import SlaBook, SlaClocks, SlaRunning
from shared.calendar import CareCalendar
from shared.events import (
    CareContactCompleted,
    CareKind,
    CareOutcome,
    CaseClassified,
    CaseResolved,
    Channel,
    ContactPoint,
    CustomerSegmentChanged,
    LegalField,
    Priority,
    Segment,
    derived_event_id,
)

CADENCE_KINDS = [CareKind.FIRST_CONTACT, CareKind.CARE]
"""Contacts that belong to an open case and stop when it is resolved."""
CASE_KINDS = [CareKind.FIRST_CONTACT, CareKind.CARE, CareKind.APOLOGY, CareKind.CHECK_IN]

RELATED_SERVICES: dict[LegalField, list[str]] = {
    LegalField.TRAFFIC: ["traffic_fine_appeal", "insurance_claim"],
    LegalField.FAMILY: ["inheritance_planning", "will_drafting", "property_division"],
    LegalField.CIVIL_COMMERCIAL: ["contract_review", "debt_collection"],
    LegalField.LAND: ["land_title_registration", "property_transfer", "will_drafting"],
    LegalField.LABOR: ["employment_contract_review", "social_insurance_claim"],
    LegalField.CRIMINAL: ["victim_compensation", "record_expungement_advice"],
    LegalField.ENTERPRISE: ["company_compliance_retainer", "contract_review", "trademark"],
    LegalField.ADMINISTRATIVE: ["licence_application", "administrative_appeal"],
    LegalField.INTELLECTUAL_PROPERTY: ["trademark", "copyright_registration"],
    LegalField.OTHER: ["general_legal_checkup"],
}
"""Services offered at the 7-day check-in, by the case's legal field."""


@dataclass(frozen=True)
class CarePolicy:
    """The cadence numbers of SPEC §4 (configurable)."""

    close_care_every_days: int = 1
    """Disputes and complaints: a care contact every day."""
    care_every_days: int = 2
    check_in_after_days: int = 7
    max_retries: int = 3
    """`no_answer` is retried in the next window at most this many times."""
    related_services: dict[LegalField, list[str]] = field(
        default_factory=lambda: dict(RELATED_SERVICES)
    )


class RequestRecord(BaseModel):
    """A care.contact.requested followup sent, kept to act on its outcome."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    request_id: str
    timer_id: str
    root_timer_id: str
    kind: CareKind
    attempt: int
    case_id: str
    timer_case_id: str | None = None
    payload: dict[str, Any] = {}
    outcomes: tuple[CareOutcome, ...] = ()
    """What the care team reported for it, in order."""


class CaseState(BaseModel):
    """What followup remembers of a case (state key `case/<case id>`)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    kind: Literal["case"] = "case"
    case_id: str
    customer_id: str | None = None
    channel: Channel | None = None
    contact: ContactPoint | None = None
    legal_field: LegalField | None = None
    is_dispute: bool = False
    is_complaint: bool = False
    resolved_at: datetime | None = None
    cadence: bool = False
    """An open-case care timer chain is running."""
    cadence_origin: str | None = None
    """The event that started the running chain (a replay of it plans the same timer)."""
    unreachable: bool = False
    """The contact point proved wrong; care waits for a new contact."""
    opted_out: bool = False
    """The customer declined care on this case."""
    correlation_id: str = ""
    planned: dict[str, CareKind] = {}
    """Every timer planned for the case (id → kind), pending or not: planned once."""
    requests: dict[str, RequestRecord] = {}
    """The case's requests sent, by request id, to act on their outcomes."""
    sla: SlaClocks | None = None
    """The case's service-level clocks (from its opening)."""
    assignee_id: str | None = None
    """Who holds the case, per the latest case.assigned (service-level events name them)."""

    @property
    def resolved(self) -> bool:
        """True once the case is resolved."""
        return self.resolved_at is not None


class CustomerState(BaseModel):
    """What followup remembers of a customer (state key `customer/<customer id>`): for
    greetings and offers."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    kind: Literal["customer"] = "customer"
    customer_id: str
    contact: ContactPoint | None = None
    birthday: str | None = None
    last_case_id: str | None = None
    correlation_id: str = ""
    planned: dict[str, CareKind] = {}
    """Every birthday and loyalty timer planned for the customer (id → kind)."""
    requests: dict[str, RequestRecord] = {}
    """The birthday and loyalty requests sent, by request id."""


Memory = Annotated[CaseState | CustomerState | SlaBook | SlaRunning, Field(discriminator="kind")]
"""One value of followup's state: a case, a customer, the partition's service-level book
or a case's running clocks, told apart by `kind`."""


def case_key(case_id: str) -> str:
    """The state key of a case."""
    return f"case/{case_id}"


def customer_key(customer_id: str) -> str:
    """The state key of a customer."""
    return f"customer/{customer_id}"


def is_idle(memory: CaseState | CustomerState | SlaBook | SlaRunning) -> bool:
    """Whether a value may leave memory (reloaded by key when needed): customers and
    resolved cases; open cases and the service-level book stay, they change often."""
    if isinstance(memory, SlaBook | SlaRunning):
        return False
    return isinstance(memory, CustomerState) or memory.resolved


@dataclass(frozen=True)
class PlannedTimer:
    """A timer to schedule (scheduling an existing id changes nothing)."""

    id: str
    due_at: datetime
    kind: CareKind
    case_id: str | None
    payload: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DueTimer:
    """A timer that came due, as the runtime hands it over."""

    id: str
    kind: CareKind
    due_at: datetime
    case_id: str | None
    payload: dict[str, Any] = field(default_factory=dict)

    @property
    def attempt(self) -> int:
        """1 for the first try, then 2, 3, ... for no_answer retries."""
        return int(self.payload.get("attempt", 1))


@dataclass(frozen=True)
class ContactRequest:
    """The care.contact.requested to publish for a due timer."""

    request_id: str
    case_id: str
    customer_id: str
    kind: CareKind
    channel: Channel
    contact: ContactPoint
    priority: Priority
    due_at: datetime
    attempt: int
    related_services: list[str] = field(default_factory=list)
    correlation_id: str = ""


@dataclass(frozen=True)
class Firing:
    """What a due timer leads to: a request (or why none), the next timers, the case."""

    request: ContactRequest | None
    then: list[PlannedTimer] = field(default_factory=list)
    case: CaseState | None = None
    skipped: str | None = None


@dataclass(frozen=True)
class AfterOutcome:
    """What a reported contact outcome leads to."""

    retry: PlannedTimer | None = None
    cancel_kinds: list[CareKind] = field(default_factory=list)
    case: CaseState | None = None
    decision: str = "recorded"


def request_id_for(timer_id: str) -> str:
    """The request id of a timer: stable, so a re-fired timer repeats the same request."""
    return f"req-{derived_event_id(timer_id, 'care.contact.requested').hex[:20]}"


def care_interval(case: CaseState, policy: CarePolicy) -> timedelta:
    """Disputes and complaints get daily care, other open cases every two days."""
    close = case.is_dispute or case.is_complaint
    return timedelta(days=policy.close_care_every_days if close else policy.care_every_days)


def next_care_due(
    after: datetime, case: CaseState, *, now: datetime, calendar: CareCalendar, policy: CarePolicy
) -> datetime:
    """The next care contact: the first window of the day `interval` days after `after`."""
    day = after.astimezone(calendar.tz).date() + care_interval(case, policy)
    return calendar.next_care_slot(max(calendar.first_slot_on_or_after(day), now))


M = TypeVar("M", CaseState, CustomerState)


def plan_once(memory: M, timers: list[PlannedTimer]) -> tuple[list[PlannedTimer], M]:
    """The timers never planned before for this case or customer, and the memory that
    remembers them: a replayed cause or a second resolution plans nothing twice."""
    new = [t for t in timers if t.id not in memory.planned]
    planned = {**memory.planned, **{t.id: t.kind for t in new}}
    return new, memory.model_copy(update={"planned": planned})


def planned_of(memory: CaseState | CustomerState, kinds: list[CareKind]) -> list[str]:
    """Ids of the timers planned for the case or customer of these kinds (maybe fired)."""
    return [timer_id for timer_id, kind in memory.planned.items() if kind in kinds]


def with_request(memory: M, record: RequestRecord) -> M:
    """The memory keeping a sent request (a re-fired timer keeps the first record)."""
    if record.request_id in memory.requests:
        return memory
    return memory.model_copy(update={"requests": {**memory.requests, record.request_id: record}})


def with_outcome(memory: M, request_id: str, outcome: CareOutcome) -> M:
    """The memory with a reported outcome attached to its request (when it is known)."""
    request = memory.requests.get(request_id)
    if request is None:
        return memory
    reported = request.model_copy(update={"outcomes": (*request.outcomes, outcome)})
    return memory.model_copy(update={"requests": {**memory.requests, request_id: reported}})


def _short(text: str) -> str:
    return derived_event_id(text, "timer").hex[:12]


# --- events in -----------------------------------------------------------------------------


def remember_classified(case: CaseState | None, event: CaseClassified) -> CaseState:
    """The case after a contact: latest contact point, dispute/complaint flags stay set."""
    base = case or CaseState(case_id=event.case_id, correlation_id=event.correlation_id)
    return base.model_copy(
        update={
            "customer_id": event.customer_id,
            "channel": event.channel,
            "contact": event.contact,
            "legal_field": event.legal_field,
            "is_dispute": base.is_dispute or event.is_dispute,
            "is_complaint": base.is_complaint or event.is_complaint,
            # The customer just reached us (the contact point works); a correction by staff
            # (case.reclassified) is not a contact.
            "unreachable": base.unreachable and event.correction,
        }
    )


def plan_classified(
    case: CaseState,
    event: CaseClassified,
    *,
    now: datetime,
    calendar: CareCalendar,
    policy: CarePolicy,
) -> tuple[list[PlannedTimer], CaseState]:
    """Timers a classified contact starts; `case` is already updated by remember_classified.

    A complaint gets an apology at once, whatever the window (it replaces the first contact
    of a new case); a new case gets a first contact in the next window; an open case without
    a running cadence starts one.
    """
    start = max(event.occurred_at, now)
    base = {"correlation_id": event.correlation_id}
    timers: list[PlannedTimer] = []
    if event.is_complaint:
        timers.append(
            PlannedTimer(f"apology:{event.contact_id}", start, CareKind.APOLOGY, case.case_id, base)
        )
    open_for_care = not case.resolved and not case.opted_out and not case.unreachable
    if event.new_case and not event.is_complaint and open_for_care:
        due = calendar.next_care_slot(start)
        timers.append(
            PlannedTimer(
                f"first_contact:{case.case_id}", due, CareKind.FIRST_CONTACT, case.case_id, base
            )
        )
    replayed = case.cadence_origin == str(event.event_id)
    if open_for_care and (not case.cadence or replayed):
        due = next_care_due(start, case, now=now, calendar=calendar, policy=policy)
        timer_id = f"care:{case.case_id}:{_short(str(event.event_id))}"
        timers.append(PlannedTimer(timer_id, due, CareKind.CARE, case.case_id, base))
        case = case.model_copy(update={"cadence": True, "cadence_origin": str(event.event_id)})
    return timers, case


def remember_customer(customer: CustomerState | None, event: CaseClassified) -> CustomerState:
    """The customer after a contact: latest contact point, case and birthday."""
    base = customer or CustomerState(
        customer_id=event.customer_id, correlation_id=event.correlation_id
    )
    return base.model_copy(
        update={
            "contact": event.contact,
            "last_case_id": event.case_id,
            "birthday": event.birthday or base.birthday,
        }
    )


def next_birthday(birthday: str, today: date) -> date | None:
    """The next date on or after `today` that is the "MM-DD" birthday (29 Feb → 28 Feb in
    common years); None when "MM-DD" is no date at all."""
    month, day = (int(part) for part in birthday.split("-"))
    if (month, day) != (2, 29) and not _is_date(2024, month, day):
        return None
    for year in (today.year, today.year + 1):
        candidate = date(year, month, day) if _is_date(year, month, day) else date(year, 2, 28)
        if candidate >= today:
            return candidate
    return None  # unreachable: next year's date is always later than today


def _is_date(year: int, month: int, day: int) -> bool:
    try:
        date(year, month, day)
    except ValueError:
        return False
    return True


def plan_birthday(
    customer: CustomerState, *, now: datetime, calendar: CareCalendar
) -> PlannedTimer | None:
    """A greeting in the morning window of the next birthday (next working day if closed)."""
    if not customer.birthday:
        return None
    day = next_birthday(customer.birthday, now.astimezone(calendar.tz).date())
    if day is None:
        return None
    return PlannedTimer(
        f"birthday:{customer.customer_id}:{day.isoformat()}",
        calendar.first_slot_on_or_after(day),
        CareKind.BIRTHDAY,
        None,
        {
            "customer_id": customer.customer_id,
            "birthday": customer.birthday,
            "correlation_id": customer.correlation_id,
        },
    )


def plan_loyalty_offer(
    event: CustomerSegmentChanged, *, now: datetime, calendar: CareCalendar
) -> PlannedTimer | None:
    """A loyalty offer in the next window when a customer becomes loyal."""
    if event.segment != Segment.LOYAL or event.previous_segment == Segment.LOYAL:
        return None
    return PlannedTimer(
        f"loyalty_offer:{event.customer_id}:{event.event_id}",
        calendar.next_care_slot(max(event.occurred_at, now)),
        CareKind.LOYALTY_OFFER,
        None,
        {"customer_id": event.customer_id, "correlation_id": event.correlation_id},
    )


def plan_resolved(
    case: CaseState | None,
    event: CaseResolved,
    *,
    now: datetime,
    calendar: CareCalendar,
    policy: CarePolicy,
) -> tuple[PlannedTimer | None, CaseState]:
    """Resolution stops the cadence and plans the check-in 7 days later, in a window."""
    base = case or CaseState(case_id=event.case_id, correlation_id=event.correlation_id)
    resolved_at = base.resolved_at or event.occurred_at
    case = base.model_copy(update={"resolved_at": resolved_at, "cadence": False})
    if case.opted_out:
        return None, case
    target = resolved_at + timedelta(days=policy.check_in_after_days)
    check_in = PlannedTimer(
        f"check_in:{case.case_id}",
        calendar.next_care_slot(max(target, now)),
        CareKind.CHECK_IN,
        case.case_id,
        {"correlation_id": event.correlation_id},
    )
    return check_in, case


def plan_outcome(
    event: CareContactCompleted,
    request: RequestRecord | None,
    case: CaseState | None,
    *,
    now: datetime,
    calendar: CareCalendar,
    policy: CarePolicy,
) -> AfterOutcome:
    """no_answer retries in the next window (at most max_retries); wrong_number pauses care
    until a new contact; declined ends care on the case; reached is recorded."""
    if event.outcome == CareOutcome.REACHED:
        return AfterOutcome(decision="reached")
    if event.outcome == CareOutcome.WRONG_NUMBER:
        updated = case and case.model_copy(update={"unreachable": True, "cadence": False})
        return AfterOutcome(cancel_kinds=CADENCE_KINDS, case=updated, decision="care_paused")
    if event.outcome == CareOutcome.DECLINED:
        updated = case and case.model_copy(update={"opted_out": True, "cadence": False})
        return AfterOutcome(cancel_kinds=CASE_KINDS, case=updated, decision="care_stopped")
    if request is None:
        return AfterOutcome(decision="no_answer_unknown_request")
    if request.attempt > policy.max_retries:
        return AfterOutcome(decision="retries_exhausted")
    if case is not None and request.kind in CADENCE_KINDS and (case.resolved or case.opted_out):
        return AfterOutcome(decision="case_closed_no_retry")
    attempt = request.attempt + 1
    retry = PlannedTimer(
        f"{request.root_timer_id}:retry{attempt}",
        calendar.next_window_opening(max(event.occurred_at, now)),
        request.kind,
        request.timer_case_id,
        {**request.payload, "attempt": attempt, "retry_of": request.root_timer_id},
    )
    return AfterOutcome(retry=retry, decision="retry_scheduled")


# --- timers out ----------------------------------------------------------------------------


def _priority(kind: CareKind, case: CaseState | None) -> Priority:
    if kind == CareKind.APOLOGY:
        return Priority.HIGH
    if kind in CADENCE_KINDS and case is not None and case.is_complaint:
        return Priority.HIGH
    return Priority.NORMAL


def _skip(reason: str, case: CaseState | None = None) -> Firing:
    return Firing(request=None, case=case, skipped=reason)


def decide_firing(
    timer: DueTimer,
    case: CaseState | None,
    customer: CustomerState | None,
    *,
    now: datetime,
    calendar: CareCalendar,
    policy: CarePolicy,
) -> Firing:
    """The request a due timer sends (or why not) and the timers that follow it."""
    kind = timer.kind
    then: list[PlannedTimer] = []
    if kind in CASE_KINDS:
        if case is None or case.contact is None or case.customer_id is None:
            return _skip("case_unknown")
        if kind in CADENCE_KINDS and (case.resolved or case.opted_out or case.unreachable):
            stopped = case.model_copy(update={"cadence": False}) if kind == CareKind.CARE else None
            return _skip("case_closed_or_unreachable", stopped)
        if kind == CareKind.CHECK_IN and case.opted_out:
            return _skip("customer_declined")
        if kind == CareKind.CARE and "retry_of" not in timer.payload:
            due = next_care_due(timer.due_at, case, now=now, calendar=calendar, policy=policy)
            then.append(
                PlannedTimer(
                    f"care:{case.case_id}:{_short(timer.id)}",
                    due,
                    CareKind.CARE,
                    case.case_id,
                    {"correlation_id": timer.payload.get("correlation_id", "")},
                )
            )
        case_id, customer_id, contact = case.case_id, case.customer_id, case.contact
    else:
        if customer is None or customer.contact is None or customer.last_case_id is None:
            return _skip("customer_unknown")
        if kind == CareKind.BIRTHDAY:
            if customer.birthday != timer.payload.get("birthday"):
                return _skip("birthday_changed")
            if "retry_of" not in timer.payload:
                following = plan_birthday(
                    customer, now=timer.due_at + timedelta(days=2), calendar=calendar
                )
                then.extend([following] if following else [])
        case_id, customer_id, contact = (
            customer.last_case_id,
            customer.customer_id,
            customer.contact,
        )
    related = (
        policy.related_services.get(case.legal_field, [])
        if kind == CareKind.CHECK_IN and case is not None and case.legal_field is not None
        else []
    )
    request = ContactRequest(
        request_id=request_id_for(timer.id),
        case_id=case_id,
        customer_id=customer_id,
        kind=kind,
        channel=contact.channel,
        contact=contact,
        priority=_priority(kind, case),
        due_at=timer.due_at,
        attempt=timer.attempt,
        related_services=related,
        correlation_id=timer.payload.get("correlation_id", ""),
    )
    return Firing(request=request, then=then)


def request_record(timer: DueTimer, request: ContactRequest) -> RequestRecord:
    """What followup keeps of a sent request, to act on its outcome."""
    return RequestRecord(
        request_id=request.request_id,
        timer_id=timer.id,
        root_timer_id=timer.payload.get("retry_of", timer.id),
        kind=timer.kind,
        attempt=timer.attempt,
        case_id=request.case_id,
        timer_case_id=timer.case_id,
        payload={k: v for k, v in timer.payload.items() if k not in ("attempt", "retry_of")},
    )
