"""Followup's rules on the stateful runtime: state in, domain decides, state and events out.

Case events are keyed by case id: a case's partition owns `case/<id>` and its care timers.
What concerns the customer (contact point and birthday, loyalty offers, the outcome of a
greeting or an offer) passes on as a `CustomerFact` keyed by customer id: the customer's
partition owns `customer/<id>`, its birthday and loyalty timers and their requests.
"""

from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

import structlog

from services.followup import domain, levels, sla
from services.followup.domain import CaseState, CustomerState, PlannedTimer
from services.followup.internal import CustomerFact, SlaPolicyRead
from shared import topics
from shared.calendar import CareCalendar
from shared.events import (
    CareContactCompleted,
    CareContactRequested,
    CareKind,
    CareOutcome,
    CaseClassified,
    CaseResolved,
    CustomerSegmentChanged,
    Event,
    SlaTarget,
    derived_event_id,
)
from shared.runtime import Context, Runtime, Timer, View

log = structlog.get_logger("lexcare.followup")

DEFAULT_SLA = Path(__file__).resolve().parents[2] / "deploy" / "config" / "sla.yaml"

State = View[CaseState | CustomerState]


@dataclass(frozen=True)
class Care:
    """What the rules need besides the events: the calendar, the cadence, who publishes."""

    calendar: CareCalendar
    policy: domain.CarePolicy
    producer: str = "followup"
    sla_policy: sla.SlaPolicy = field(default_factory=lambda: sla.load_policy(DEFAULT_SLA))
    """The service-level policy read at start (a partition's book holds the latest)."""
    sla_grace_s: float = 60.0
    """A breach is announced this long after its moment, so a stop in flight lands first."""

    @property
    def sla_fingerprint(self) -> str:
        """Digest of the policy read at start and the calendar."""
        return sla.fingerprint(self.sla_policy, self.calendar)

    @property
    def sla_grace(self) -> timedelta:
        """`sla_grace_s` as a duration."""
        return timedelta(seconds=self.sla_grace_s)

    @property
    def rules(self) -> dict[str, Any]:
        """The calendar and the policy, as the domain functions take them."""
        return {"calendar": self.calendar, "policy": self.policy}


def register(runtime: Runtime[Any], care: Care) -> None:
    """Followup's rules on `runtime`: its four inputs, its internal topic, its timers."""
    runtime.on(topics.CASE_CLASSIFIED, CaseClassified)(partial(on_case_classified, care=care))
    runtime.on(topics.CASE_RESOLVED, CaseResolved)(partial(on_case_resolved, care=care))
    runtime.on(topics.CARE_CONTACT_COMPLETED, CareContactCompleted)(
        partial(on_care_contact_completed, care=care)
    )
    runtime.on(topics.CUSTOMER_SEGMENT_CHANGED, CustomerSegmentChanged, stateless=True)(
        partial(on_customer_segment_changed, care=care)
    )
    runtime.on(topics.FOLLOWUP_CUSTOMER, CustomerFact, internal=True)(
        partial(on_customer_fact, care=care)
    )
    for kind in CareKind:
        runtime.on_timer(kind.value)(partial(on_care_due, care=care))
    for topic, model, rule in levels.REGISTERED:
        runtime.on(topic, model)(partial(rule, care=care))
    runtime.on(topics.FOLLOWUP_SLA_POLICY, SlaPolicyRead, internal=True)(
        partial(levels.on_policy, care=care)
    )
    for kind in (sla.WARNING, sla.BREACH):
        runtime.on_timer(kind)(partial(levels.on_due, care=care))


# --- case events, keyed by case id ----------------------------------------------------------


def on_case_classified(state: State, event: CaseClassified, ctx: Context, *, care: Care) -> None:
    """Remember the contact on the case, plan its care; tell the customer's owner."""
    case = domain.remember_classified(_case(state, event.case_id), event)
    timers, case = domain.plan_classified(case, event, now=ctx.now, **care.rules)
    case = levels.on_classified(state, case, event, ctx, care)
    state.set(domain.case_key(event.case_id), _schedule(case, timers, ctx))
    _tell_customer(event, event.customer_id, ctx, care)
    log.info("care_planned", timers=[t.kind.value for t in timers])


def on_case_resolved(state: State, event: CaseResolved, ctx: Context, *, care: Care) -> None:
    """Stop the case's cadence and plan its check-in."""
    before = _case(state, event.case_id)
    check_in, case = domain.plan_resolved(before, event, now=ctx.now, **care.rules)
    _cancel(case, domain.CADENCE_KINDS, ctx)
    case = levels.on_stop(state, case, list(SlaTarget), event.occurred_at, ctx, care)
    state.set(domain.case_key(event.case_id), _schedule(case, [check_in] if check_in else [], ctx))
    log.info("care_ended", check_in_at=check_in and check_in.due_at)


def on_care_contact_completed(
    state: State, event: CareContactCompleted, ctx: Context, *, care: Care
) -> None:
    """Act on a contact's outcome on the case; a greeting's or an offer's request belongs
    to the customer's owner: pass it on."""
    case = _case(state, event.case_id)
    request = case.requests.get(event.request_id or "") if case else None
    after = domain.plan_outcome(event, request, case, now=ctx.now, **care.rules)
    if after.case is not None:
        case = after.case
        _cancel(case, after.cancel_kinds, ctx)
    if case is not None:
        case = _schedule(case, [after.retry] if after.retry else [], ctx)
        case = domain.with_outcome(case, event.request_id or "", event.outcome)
        if event.outcome == CareOutcome.REACHED:
            first = [SlaTarget.FIRST_RESPONSE]
            case = levels.on_stop(state, case, first, event.occurred_at, ctx, care)
        state.set(domain.case_key(event.case_id), case)
        if request is None and event.request_id and case.customer_id:
            _tell_customer(event, case.customer_id, ctx, care)
    log.info("care_outcome", outcome=event.outcome.value, decision=after.decision)


def on_customer_segment_changed(
    state: State, event: CustomerSegmentChanged, ctx: Context, *, care: Care
) -> None:
    """Pass the change on to the customer's owner (it arrives keyed by case)."""
    _tell_customer(event, event.customer_id, ctx, care)


# --- customer facts, keyed by customer id ---------------------------------------------------


def on_customer_fact(state: State, event: CustomerFact, ctx: Context, *, care: Care) -> None:
    """Keep the customer's contact point and birthday, plan greetings and offers, retry them."""
    key = domain.customer_key(event.customer_id)
    found = state.get(key)
    customer = found if isinstance(found, CustomerState) else None
    fact = event.fact
    if isinstance(fact, CaseClassified):
        customer = domain.remember_customer(customer, fact)
        birthday = domain.plan_birthday(customer, now=ctx.now, calendar=care.calendar)
        customer = _schedule(customer, [birthday] if birthday else [], ctx)
    elif isinstance(fact, CustomerSegmentChanged):
        customer = _noted_segment(customer, fact, ctx, care)
    elif customer is not None and fact.request_id in customer.requests:
        request = customer.requests[fact.request_id]
        after = domain.plan_outcome(fact, request, None, now=ctx.now, **care.rules)
        customer = _schedule(customer, [after.retry] if after.retry else [], ctx)
        customer = domain.with_outcome(customer, request.request_id, fact.outcome)
    if customer is not None:
        state.set(key, customer)


def _noted_segment(
    customer: CustomerState | None, event: CustomerSegmentChanged, ctx: Context, care: Care
) -> CustomerState:
    base = customer or CustomerState(
        customer_id=event.customer_id, correlation_id=event.correlation_id
    )
    if event.contact is not None:
        base = base.model_copy(update={"contact": event.contact})
    offer = domain.plan_loyalty_offer(event, now=ctx.now, calendar=care.calendar)
    log.info("segment_changed", segment=event.segment.value, offer=bool(offer))
    return _schedule(base, [offer] if offer else [], ctx)


# --- timers ---------------------------------------------------------------------------------


def on_care_due(state: State, timer: Timer, ctx: Context, *, care: Care) -> None:
    """Send the request a due care timer stands for; plan what follows it."""
    due = _due(timer)
    if due.kind in domain.CASE_KINDS:
        key = domain.case_key(due.case_id or "")
        case, customer = _case(state, due.case_id or ""), None
    else:
        key = domain.customer_key(due.payload.get("customer_id", ""))
        found = state.get(key)
        case, customer = None, found if isinstance(found, CustomerState) else None
    firing = domain.decide_firing(due, case, customer, now=ctx.now, **care.rules)
    memory = firing.case or case or customer
    if memory is None:
        log.info("care_contact_skipped", kind=due.kind.value, reason=firing.skipped)
        return
    memory = _schedule(memory, firing.then, ctx)
    if firing.request is not None:
        memory = domain.with_request(memory, domain.request_record(due, firing.request))
        ctx.emit(_requested(timer, firing.request, ctx, care))
    else:
        log.info("care_contact_skipped", kind=due.kind.value, reason=firing.skipped)
    state.set(key, memory)


def _requested(
    timer: Timer, request: domain.ContactRequest, ctx: Context, care: Care
) -> CareContactRequested:
    """The event of a request; its id derived from the timer id (a re-fire repeats it)."""
    log.info(
        "care_contact_requested",
        case_id=request.case_id,
        kind=request.kind.value,
        request_id=request.request_id,
        attempt=request.attempt,
        priority=request.priority.value,
    )
    return CareContactRequested(
        event_id=derived_event_id(timer.id, topics.CARE_CONTACT_REQUESTED),
        correlation_id=request.correlation_id,
        occurred_at=ctx.now,
        producer=care.producer,
        request_id=request.request_id,
        case_id=request.case_id,
        customer_id=request.customer_id,
        kind=request.kind,
        channel=request.channel,
        contact=request.contact,
        priority=request.priority,
        due_at=request.due_at,
        attempt=request.attempt,
        related_services=request.related_services,
    )


# --- helpers --------------------------------------------------------------------------------


def _case(state: State, case_id: str) -> CaseState | None:
    found = state.get(domain.case_key(case_id))
    return found if isinstance(found, CaseState) else None


def _tell_customer(event: Event, customer_id: str, ctx: Context, care: Care) -> None:
    fact = CustomerFact.caused_by(
        event, producer=care.producer, customer_id=customer_id, fact=event
    )
    ctx.emit(fact, key=customer_id)


def _schedule(memory: domain.M, timers: list[PlannedTimer], ctx: Context) -> domain.M:
    """Schedule the timers not planned before; the memory remembers them."""
    new, memory = domain.plan_once(memory, timers)
    for planned in new:
        payload = {**planned.payload, **({"case_id": planned.case_id} if planned.case_id else {})}
        ctx.schedule(planned.id, due_at=planned.due_at, kind=planned.kind.value, payload=payload)
    return memory


def _cancel(memory: CaseState, kinds: list[CareKind], ctx: Context) -> None:
    """Cancel the case's pending timers of these kinds (without asking: one due beyond the
    runtime's timer horizon is not in memory)."""
    for timer_id in domain.planned_of(memory, kinds):
        ctx.cancel(timer_id)


def _due(timer: Timer) -> domain.DueTimer:
    payload = {k: v for k, v in timer.payload.items() if k != "case_id"}
    return domain.DueTimer(
        id=timer.id,
        kind=CareKind(timer.kind),
        due_at=timer.due_at,
        case_id=timer.payload.get("case_id"),
        payload=payload,
    )
