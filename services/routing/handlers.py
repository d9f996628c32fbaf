"""Routing's rules on the stateful runtime: inputs → the roster's one partition → decisions.

Who owns what (one writer per key): any case may take any lawyer's slot, so every decision
is made in one partition. The rules of the input topics pass what a decision needs on to
the internal `routing.decide` topic keyed by the constant `roster` (`RoutingStep`, the
input as received); its rule owns the roster with each person's held slots (`roster`),
every case's routing record (`case/<id>`) and the waiting queue (`wait/<entry>`). A contract
needs none of that: it stays in its case's partition (`contract/<id>`). Published events
take their ids and correlation from the original input, as before the runtime.
"""

from dataclasses import dataclass, field
from functools import partial
from typing import Any

import structlog

from services.routing import domain
from services.routing.state import (
    QUEUE_KEY,
    RESOLVED,
    ROSTER_KEY,
    WAIT_PREFIX,
    CaseRecord,
    Contract,
    Queue,
    Resolution,
    Roster,
    RoutingValue,
    Waiting,
    case_key,
    contract_key,
    entry_case,
    entry_field,
    is_idle,
    wait_key,
    waiting_entry,
)
from services.routing.steps import RosterFileRead, RoutingStep
from shared import topics
from shared.clock import Clock
from shared.events import (
    AssignmentReason,
    CaseAssigned,
    CaseClassified,
    CaseEscalated,
    CaseResolved,
    ContractSigned,
    Event,
    FeeQuoted,
    RosterPerson,
    RosterUpdated,
    SlaBreached,
)
from shared.runtime import Context, Runtime, View
from shared.settings import LexcareSettings

log = structlog.get_logger("lexcare.routing")
PRODUCER = "routing"


def routing_runtime(
    settings: LexcareSettings,
    db: Any,
    *,
    fees: domain.FeeSchedule,
    queue_batch: int = 200,
    clock: Clock | None = None,
    **options: Any,
) -> Runtime[Any]:
    """Routing's rules registered on a runtime."""
    runtime: Runtime[Any] = Runtime(
        settings,
        db,
        value_type=RoutingValue,
        clock=clock,
        idle=is_idle,
        scanned=(WAIT_PREFIX,),
        **options,
    )
    runtime.on(topics.CASE_CLASSIFIED, CaseClassified, stateless=True)(on_case_classified)
    runtime.on(topics.CASE_RESOLVED, CaseResolved, stateless=True)(on_case_resolved)
    runtime.on(topics.ROSTER_UPDATED, RosterUpdated, stateless=True)(on_roster_updated)
    runtime.on(topics.SLA_BREACHED, SlaBreached, stateless=True)(on_sla_breached)
    runtime.on(topics.CONTRACT_SIGNED, ContractSigned)(on_contract_signed)
    decide = partial(on_routing_step, fees=fees, queue_batch=queue_batch)
    runtime.on(topics.ROUTING_DECIDE, RoutingStep, internal=True)(decide)
    return runtime


# The inputs' partitions.


def on_case_classified(state: View[Any], event: CaseClassified, ctx: Context) -> None:
    """Quote a new case and give it to the best free expert, or queue it."""
    pass_on(event, ctx)


def on_case_resolved(state: View[Any], event: CaseResolved, ctx: Context) -> None:
    """The case is over: its slot goes to the first waiting case that fits."""
    pass_on(event, ctx)


def on_roster_updated(state: View[Any], event: RosterUpdated, ctx: Context) -> None:
    """Apply a roster change; a deactivated person's open cases go to someone else."""
    pass_on(event, ctx)


def on_sla_breached(state: View[Any], event: SlaBreached, ctx: Context) -> None:
    """A case missed a service level: a more experienced lawyer takes it, or managers do."""
    pass_on(event, ctx)


def pass_on(event: Event, ctx: Context) -> None:
    """Send `event` on to the roster's partition, where every decision is made."""
    step = RoutingStep.caused_by(event, producer=PRODUCER, input=event)
    ctx.emit(step, key=ROSTER_KEY)


def on_contract_signed(state: View[Any], event: ContractSigned, ctx: Context) -> None:
    """Remember the contract on the case."""
    key = contract_key(event.contract_id)
    if state.get(key) is None:
        contract = Contract(
            case_id=event.case_id,
            amount_vnd=event.amount_vnd,
            delivery_method=event.delivery_method,
            signed_at=event.occurred_at,
        )
        state.set(key, contract)
    log.info("contract_recorded", case_id=event.case_id, delivery_method=str(event.delivery_method))


# The roster's partition: every decision.


def on_routing_step(
    state: View[Any], step: RoutingStep, ctx: Context, *, fees: domain.FeeSchedule, queue_batch: int
) -> None:
    """Decide on an input with the whole roster, its held slots and the queue at hand."""
    desk = Desk.open(state, ctx, queue_batch=queue_batch)
    event = step.input
    if isinstance(event, CaseClassified):
        on_classified(desk, event, fees)
    elif isinstance(event, CaseResolved):
        on_resolved(desk, event)
    elif isinstance(event, RosterUpdated):
        desk.apply_person(event, event.person)
        log.info(
            "roster_person_saved",
            person_id=event.person.id,
            active=event.person.active,
            capacity=event.person.capacity,
        )
        desk.drain(event)
    elif isinstance(event, SlaBreached):
        on_breached(desk, event)
    else:
        on_roster_file(desk, event)
    desk.close()


def on_classified(desk: "Desk", event: CaseClassified, fees: domain.FeeSchedule) -> None:
    """A new case is quoted, then assigned or queued; a known one only keeps new flags."""
    record = desk.case(event.case_id)
    if record is not None and record.resolution is not None:
        log.info("case_already_resolved", case_id=event.case_id)
        return
    if record is not None and event.correction and record.case is not None:
        on_corrected(desk, event, record, fees)
        return
    if record is not None:
        # A contact attached to a known case: keep its assignee, remember new flags.
        flags = {"is_dispute": event.is_dispute, "is_complaint": event.is_complaint}
        record = record.with_flags(**flags)
        if record.queued is not None:  # a complaint now: its place moves up
            record = desk.enqueue(record)
        desk.save(record)
        log.info("contact_attached", case_id=event.case_id)
        return
    fee = quote(desk, event, fees)
    record = CaseRecord(
        case_id=event.case_id,
        case=domain.RoutedCase(
            case_id=event.case_id,
            legal_field=event.legal_field,
            is_dispute=event.is_dispute,
            is_complaint=event.is_complaint,
            opened_at=event.occurred_at,
        ),
        correlation_id=event.correlation_id,
        legal_aid=event.legal_aid,
        channel=str(event.channel),
        customer_id=event.customer_id,
        recommended_method=fee.recommended_method,
    )
    if not desk.try_assign(event, record):
        desk.park(event, record)


def on_corrected(
    desk: "Desk", event: CaseClassified, record: CaseRecord, fees: domain.FeeSchedule
) -> None:
    """Staff gave the case another field: quote it again; a holder who does not know the
    field (or may not take it) hands it to someone who does, or it waits; a waiting case
    waits for the new field's experts."""
    flags = {"is_dispute": event.is_dispute, "is_complaint": event.is_complaint}
    old_field = record.routed().legal_field
    record = record.with_field(event.legal_field).with_flags(**flags)
    if old_field != event.legal_field:
        fee = quote(desk, event, fees)
        record = record.model_copy(update={"recommended_method": fee.recommended_method})
    log.info("case_field_corrected", case_id=event.case_id, legal_field=str(event.legal_field))
    holder = desk.roster.people.get(record.assignee_id or "")
    if record.resolution is not None or (
        holder is not None and domain.is_expert(holder, record.routed())
    ):
        desk.save(record)
        return
    if holder is not None and record.slot is not None:
        desk.roster = desk.roster.release(holder.id, record.slot)
        record = record.released()
    record = desk.dequeue(record)
    if not desk.try_assign(event, record):
        desk.park(event, record)
    if holder is not None:
        desk.drain(event)


def quote(desk: "Desk", event: CaseClassified, fees: domain.FeeSchedule) -> domain.Quote:
    """Quote the case's advice and publish the quote."""
    fee = domain.quote(
        domain.QuoteRequest(
            legal_field=event.legal_field,
            is_dispute=event.is_dispute,
            is_complaint=event.is_complaint,
            legal_aid=event.legal_aid,
            channel=event.channel,
            income_tier=event.income_tier,
        ),
        fees,
    )
    desk.ctx.emit(
        FeeQuoted.caused_by(
            event,
            producer=PRODUCER,
            case_id=event.case_id,
            legal_field=event.legal_field,
            prices_vnd=fee.prices_vnd,
            recommended_method=fee.recommended_method,
            basis=fee.basis,
            dispute_surcharge_vnd=fee.dispute_surcharge_vnd,
            legal_aid=fee.legal_aid,
            referral=fee.referral,
        )
    )
    log.info("fee_quoted", case_id=event.case_id, recommended_method=str(fee.recommended_method))
    return fee


def on_resolved(desk: "Desk", event: CaseResolved) -> None:
    """Record the end of the case (the first resolution counts), free its slot, serve the
    queue."""
    record = desk.case(event.case_id) or CaseRecord(case_id=event.case_id)
    if record.resolution is None:
        resolution = Resolution(
            outcome=str(event.outcome), lawyer_id=event.lawyer_id, resolved_at=event.occurred_at
        )
        record = record.model_copy(update={"resolution": resolution})
    if record.assignee_id is not None and record.slot is not None:
        desk.roster = desk.roster.release(record.assignee_id, record.slot)
    record = desk.dequeue(record)
    desk.save(record.model_copy(update={"state": RESOLVED, "slot": None}))
    log.info("case_resolved", case_id=event.case_id, outcome=str(event.outcome))
    desk.drain(event)


def on_breached(desk: "Desk", event: SlaBreached) -> None:
    """Escalate a breach once: to the most experienced lawyer of the field with a free slot
    (the holder's slot freed), else to the managers with `case.escalated`."""
    record = desk.case(event.case_id)
    target = event.target.value
    if record is None or record.case is None or record.resolution is not None:
        log.info("escalation_skipped", case_id=event.case_id, target=target, reason="not_open")
        return
    if target in record.escalations:
        log.info("escalation_skipped", case_id=event.case_id, target=target, reason="escalated")
        return
    record, case = record.escalated(target), record.routed()
    people = desk.roster.active(case.legal_field)
    loads = desk.roster.loads()
    ranked = domain.escalation_candidates(case, people, loads=loads, holder=record.assignee_id)
    if not ranked:
        reason = domain.why_no_escalation(case, desk.roster.active())
        desk.save(record)
        desk.ctx.emit(
            CaseEscalated.caused_by(
                event,
                producer=PRODUCER,
                case_id=case.case_id,
                target=event.target,
                reason=reason,
                legal_field=case.legal_field,
                assignee_id=record.assignee_id,
                breached_at=event.occurred_at,
            )
        )
        log.info("case_escalated", case_id=case.case_id, target=target, reason=str(reason))
        return
    if record.assignee_id is not None and record.slot is not None:
        desk.roster = desk.roster.release(record.assignee_id, record.slot)
        record = record.released()
    person = ranked[0]
    slot = domain.free_slots(person, desk.roster.loads())[0]
    desk.roster = desk.roster.take(person.id, slot, case.case_id)
    record = desk.dequeue(record).assigned(person, slot)
    desk.save(record)
    desk.announce(event, record, domain.assignment_reason(record.previous_assignee_id))
    desk.drain(event)


def on_roster_file(desk: "Desk", event: RosterFileRead) -> None:
    """Apply the roster file's new or edited entries (an unchanged one leaves a run-time
    change in place)."""
    changes = domain.file_changes(event.people, desk.roster.fingerprints)
    for person in changes:
        desk.apply_person(event, person, from_file=True)
    log.info("roster_loaded", people=len(event.people), applied=len(changes))
    if changes:
        desk.drain(event)


@dataclass
class Desk:
    """The roster's partition during one decision: the roster in hand, the cases and the
    queue's entries by key; `close` stores the roster if it changed."""

    state: View[Any]
    ctx: Context
    roster: Roster
    queue_batch: int
    _opened: Roster = field(init=False)

    def __post_init__(self) -> None:
        self._opened = self.roster

    @classmethod
    def open(cls, state: View[Any], ctx: Context, *, queue_batch: int) -> "Desk":
        """The desk with the partition's roster (a queue stored as one value moved to keys)."""
        roster = state.get(ROSTER_KEY)
        desk = cls(state, ctx, roster if isinstance(roster, Roster) else Roster(), queue_batch)
        legacy = state.get(QUEUE_KEY)
        if isinstance(legacy, Queue):
            desk.unpack(legacy)
        return desk

    def unpack(self, legacy: Queue) -> None:
        """Give each case of a queue stored as one value its own entry key."""
        for entry in legacy.entries:
            record = self.case(entry_case(entry))
            if record is not None:
                self.state.set(wait_key(entry), Waiting())
                self.save(record.model_copy(update={"queued": entry}))
        self.state.delete(QUEUE_KEY)
        log.info("queue_moved_to_keys", waiting=len(legacy.entries))

    def close(self) -> None:
        """Store the roster if it changed."""
        if self.roster is not self._opened:
            self.state.set(ROSTER_KEY, self.roster)

    def enqueue(self, record: CaseRecord) -> CaseRecord:
        """The case in its place in the queue (moved if its place changed)."""
        record = self.dequeue(record)
        entry = waiting_entry(record.routed())
        self.state.set(wait_key(entry), Waiting())
        return record.model_copy(update={"queued": entry})

    def dequeue(self, record: CaseRecord) -> CaseRecord:
        """The case out of the queue (as it was when it is not waiting)."""
        if record.queued is None:
            return record
        self.state.delete(wait_key(record.queued))
        return record.model_copy(update={"queued": None})

    def case(self, case_id: str) -> CaseRecord | None:
        """The case's routing record, if routing knows the case."""
        record = self.state.get(case_key(case_id))
        return record if isinstance(record, CaseRecord) else None

    def save(self, record: CaseRecord) -> None:
        """Store the case's record."""
        self.state.set(case_key(record.case_id), record)

    def try_assign(self, cause: Event, record: CaseRecord) -> bool:
        """Give the case a free slot of the best candidate; False when nobody has one."""
        case, loads = record.routed(), self.roster.loads()
        ranked = domain.rank_candidates(case, self.roster.active(case.legal_field), loads=loads)
        if not ranked:
            return False
        person = ranked[0]
        slot = domain.free_slots(person, loads)[0]
        self.roster = self.roster.take(person.id, slot, case.case_id)
        record = self.dequeue(record).assigned(person, slot)
        self.save(record)
        self.announce(cause, record, domain.assignment_reason(record.previous_assignee_id))
        return True

    def park(self, cause: Event, record: CaseRecord) -> None:
        """Nobody fits: say so and queue the case."""
        reason = domain.why_nobody(record.routed(), self.roster.active())
        record = self.enqueue(record.waiting(str(reason)))
        self.save(record)
        self.announce(cause, record, reason)

    def drain(self, cause: Event) -> None:
        """Give free capacity to waiting cases: complaints first, then the oldest (the
        queue's order); a field nobody has room for is passed over for the rest.

        Which fields have room is worked out once, and again after each assignment, not per
        waiting case: with thousands waiting, each freed slot would otherwise cost the
        roster's loads once per case in the queue."""
        people = self.roster.active()
        room = domain.fields_with_room(people, self.roster.loads())
        tries = 0
        for key in self.state.scan(WAIT_PREFIX):
            if tries >= self.queue_batch or not room:
                break
            entry = key.removeprefix(WAIT_PREFIX)
            field = entry_field(entry)
            if field not in room:
                continue
            record = self.case(entry_case(entry))
            if record is None or record.case is None:
                continue
            tries += 1
            if self.try_assign(cause, record):
                room &= domain.fields_with_room(people, self.roster.loads())
            else:  # nobody able to take it has room: the field's later cases wait too
                room.discard(field)

    def apply_person(self, cause: Event, person: RosterPerson, *, from_file: bool = False) -> None:
        """Store the person's new record; a deactivated person's cases go to someone else,
        or wait."""
        self.roster = self.roster.with_person(person, from_file=from_file)
        if person.active:
            return
        for case_id, slot in self.roster.slots_of(person.id):
            self.roster = self.roster.release(person.id, slot)
            record = self.case(case_id)
            if record is None or record.case is None:
                continue
            record = record.released()
            if not self.try_assign(cause, record):
                self.park(cause, record)

    def announce(self, cause: Event, record: CaseRecord, reason: AssignmentReason) -> None:
        """Publish who has the case now (or that nobody fits), in the case's own story."""
        case = record.routed()
        out = CaseAssigned.caused_by(
            cause,
            producer=PRODUCER,
            # One cause may route several cases, or park a case and then assign it.
            discriminator=f"{case.case_id}/{record.assignee_id or reason}",
            case_id=case.case_id,
            assignee_id=record.assignee_id,
            assignee_role=record.assignee_role,
            reason=reason,
            legal_field=case.legal_field,
            previous_assignee_id=record.previous_assignee_id,
        )
        if record.correlation_id:  # a slot freed by another case keeps this case's story
            out = out.model_copy(update={"correlation_id": record.correlation_id})
        self.ctx.emit(out)
        log.info(
            "case_assigned" if record.assignee_id else "case_waiting",
            case_id=case.case_id,
            assignee_id=record.assignee_id,
            reason=str(reason),
            legal_field=str(case.legal_field),
        )
