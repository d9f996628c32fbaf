"""Intake's rules on the stateful runtime: contact → its identifiers → its customer → case.

Who owns what (one writer per key, docs/services/intake.md): a contact arrives keyed by
sender (or case); its rule only checks it can reach someone and passes it to the partition
of its first identifier. Each identifier's partition names the identifier's customer or
claims it for this contact's (`identifier/<key>`), then passes it to the next identifier,
and after the last to the customers found (`intake.customer`): a customer a merge folds
records where it went and hands its record on (`Merged`), the survivor (earliest created,
ties by id) decides the case last (`customer/<id>`). Case events find their customer
through the case's partition (`case/<id>`, written when the case opens).
"""

from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

import structlog

from services.intake import domain
from services.intake.model import Classifier
from services.intake.state import (
    CaseLink,
    Correction,
    CustomerRecord,
    Merged,
    Owner,
    Value,
    absorb,
    filed,
    idle,
    reclassified,
    resolved,
    signed,
    with_contact,
)
from services.intake.steps import (
    INTAKE_CASE,
    INTAKE_CUSTOMER,
    INTAKE_IDENTIFY,
    CaseStep,
    CustomerStep,
    IdentifyStep,
)
from shared import topics
from shared.clock import Clock
from shared.events import (
    CaseClassified,
    CaseReclassified,
    CaseResolved,
    Channel,
    ContactKind,
    ContactPoint,
    ContactReceived,
    ContractSigned,
    CustomerMerged,
    CustomerSegmentChanged,
    Event,
    Segment,
    derived_event_id,
)
from shared.runtime import Context, Runtime, View
from shared.settings import LexcareSettings

log = structlog.get_logger("lexcare.intake")

State = View[Any]


@dataclass(frozen=True)
class Rules:
    """What the rules need besides the events: the classifier, the thresholds, the calendar."""

    lexicon: domain.Lexicon
    policy: domain.IntakePolicy
    zone: ZoneInfo
    producer: str = "intake"
    classifier: Classifier | None = None
    """The trained model; None: the lexicon's scores decide the field (no model file)."""


def intake_runtime(
    settings: LexcareSettings,
    db: Any,
    *,
    lexicon: domain.Lexicon,
    policy: domain.IntakePolicy,
    classifier: Classifier | None = None,
    clock: Clock | None = None,
    **options: Any,
) -> Runtime[Any]:
    """Intake's rules registered on a runtime."""
    zone = ZoneInfo(settings.timezone)
    rules = Rules(lexicon, policy, zone, settings.service_name, classifier)
    runtime: Runtime[Any] = Runtime(
        settings, db, value_type=Value, clock=clock, idle=idle, **options
    )
    runtime.on(topics.CONTACT_RECEIVED, ContactReceived, stateless=True)(
        partial(on_contact_received, rules=rules)
    )
    runtime.on(topics.CASE_RESOLVED, CaseResolved, stateless=True)(
        partial(on_case_resolved, rules=rules)
    )
    runtime.on(topics.CONTRACT_SIGNED, ContractSigned, stateless=True)(
        partial(on_contract_signed, rules=rules)
    )
    runtime.on(topics.CASE_RECLASSIFIED, CaseReclassified, stateless=True)(
        partial(on_case_reclassified, rules=rules)
    )
    runtime.on(INTAKE_IDENTIFY, IdentifyStep, internal=True)(partial(on_identify, rules=rules))
    runtime.on(INTAKE_CUSTOMER, CustomerStep, internal=True)(partial(on_customer_step, rules=rules))
    runtime.on(INTAKE_CASE, CaseStep, internal=True)(partial(on_case_step, rules=rules))
    return runtime


def short_id(prefix: str, cause_id: Any, part: str) -> str:
    """A readable id derived from the event that creates the thing (stable on retries)."""
    return f"{prefix}-{derived_event_id(cause_id, part).hex[:12]}"


def survivor(candidates: dict[str, datetime]) -> str:
    """The customer a merge keeps: the earliest created, ties by id."""
    return min(candidates.items(), key=lambda item: (item[1], item[0]))[0]


# --- contacts, keyed by sender ----------------------------------------------------------


def on_contact_received(
    state: State, event: ContactReceived, ctx: Context, *, rules: Rules
) -> None:
    """Refuse a contact that reaches nobody; pass the others to their first identifier."""
    try:
        contact = domain.normalise_contact(event)
    except domain.Unreachable as e:
        ctx.reject(str(e))
    keys = contact.identifier_keys
    step = IdentifyStep.caused_by(
        event,
        producer=rules.producer,
        keys=keys,
        contact=event,
        new_customer=short_id("cus", contact.contact_id, "customer"),
    )
    ctx.emit(step, key=step.key)


# --- identifiers, keyed by identifier ---------------------------------------------------


def on_identify(state: State, step: IdentifyStep, ctx: Context, *, rules: Rules) -> None:
    """Name the identifier's customer, claiming it for the contact's if nobody holds it."""
    key = f"identifier/{step.key}"
    held = state.get(key)
    if step.repoint is not None:
        if isinstance(held, Owner) and step.repoint.outranks(held):
            state.set(key, step.repoint)
        return
    assert step.contact is not None
    candidates = dict(step.candidates)
    if not isinstance(held, Owner):
        claimant = survivor(candidates) if candidates else step.new_customer
        since = candidates.get(claimant, step.contact.occurred_at)
        held = Owner(customer_id=claimant, since=since)
        state.set(key, held)
    candidates[held.customer_id] = held.since
    owners = {**step.owners, step.key: held.customer_id}
    if step.position + 1 < len(step.keys):
        nxt = step.model_copy(
            update={
                "event_id": derived_event_id(step.event_id, INTAKE_IDENTIFY),
                "position": step.position + 1,
                "owners": owners,
                "candidates": candidates,
            }
        )
        ctx.emit(nxt, key=nxt.key)
        return
    _visit(step, ctx, rules, contact=step.contact, owners=owners, candidates=candidates)


def _visit(cause: Event, ctx: Context, rules: Rules, **fields: Any) -> None:
    """Pass the contact on to its next customer: those a merge folds first, the survivor last."""
    candidates: dict[str, datetime] = fields["candidates"]
    keep = survivor(candidates)
    target = min((c for c in candidates if c != keep), default=keep)
    step = CustomerStep.caused_by(cause, producer=rules.producer, customer_id=target, **fields)
    ctx.emit(step, key=target)


# --- customers, keyed by customer id ----------------------------------------------------


def on_customer_step(state: State, step: CustomerStep, ctx: Context, *, rules: Rules) -> None:
    """Fold into the survivor, decide a contact, close a case or count a contract."""
    found = state.get(f"customer/{step.customer_id}")
    if isinstance(found, Merged):
        _pass_on(step, found, ctx, rules)
        return
    record = found if isinstance(found, CustomerRecord) else None
    if step.contact is not None:
        if step.customer_id != survivor(step.candidates):
            _fold(state, step, record, ctx, rules)
        else:
            _decide(state, step, record, ctx, rules)
    elif record is None:
        log.warning("case_event_for_unknown_customer", customer_id=step.customer_id)
    elif step.resolved is not None:
        state.set(f"customer/{step.customer_id}", resolved(record, step.resolved.case_id))
        log.info("case_closed", outcome=step.resolved.outcome)
    elif step.contract is not None:
        _count_contract(state, step, step.contract, record, ctx, rules)
    elif step.reclassified is not None:
        _reclassify(state, step, step.reclassified, record, ctx, rules)


def _pass_on(step: CustomerStep, merged: Merged, ctx: Context, rules: Rules) -> None:
    """What reaches a folded customer goes on to the customer it was folded into."""
    if step.contact is None:
        nxt = step.model_copy(
            update={
                "event_id": derived_event_id(step.event_id, INTAKE_CUSTOMER),
                "customer_id": merged.into,
            }
        )
        ctx.emit(nxt, key=merged.into)
        return
    candidates = {c: t for c, t in step.candidates.items() if c != step.customer_id}
    if merged.into not in step.visited or not candidates:
        candidates.setdefault(merged.into, merged.since)
    _visit(
        step,
        ctx,
        rules,
        contact=step.contact,
        owners=step.owners,
        candidates=candidates,
        visited=[*step.visited, step.customer_id],
        absorbed=step.absorbed,
    )


def _fold(
    state: State, step: CustomerStep, record: CustomerRecord | None, ctx: Context, rules: Rules
) -> None:
    """This customer is one with the survivor: remember where it went, hand its record on."""
    keep = survivor(step.candidates)
    state.set(f"customer/{step.customer_id}", Merged(into=keep, since=step.candidates[keep]))
    candidates = {c: t for c, t in step.candidates.items() if c != step.customer_id}
    _visit(
        step,
        ctx,
        rules,
        contact=step.contact,
        owners=step.owners,
        candidates=candidates,
        visited=[*step.visited, step.customer_id],
        absorbed=[*step.absorbed, record] if record else step.absorbed,
    )
    log.info("customer_folded", customer_id=step.customer_id, into=keep)


def _decide(
    state: State, step: CustomerStep, record: CustomerRecord | None, ctx: Context, rules: Rules
) -> None:
    """Classify the contact, open a case or file it on an open one, publish the outcome."""
    event = step.contact
    assert event is not None
    contact, at, customer_id = domain.normalise_contact(event), event.occurred_at, step.customer_id
    since = step.candidates[customer_id]
    before = absorb(record, step.absorbed, customer_id=customer_id, since=since)
    if before is not None and contact.contact_id in before.contacts and not step.absorbed:
        # Sent again after the runtime's ledger forgot its id (a channel adapter replaying
        # its outbox): decided before, so nothing changes and nothing is published.
        log.info("contact_seen_before", customer_id=customer_id)
        return
    after = with_contact(before, contact, at=at, customer_id=customer_id, since=since)
    policy = rules.policy
    model = rules.classifier
    reading = domain.classify(
        message=contact.message,
        kind=contact.kind,
        form_field=contact.legal_field,
        lexicon=rules.lexicon,
        threshold=policy.confidence_threshold,
        prediction=model.predict(contact.message) if model else None,
    )
    attached = domain.case_to_attach(
        [case.open_case() for case in after.open_cases],
        legal_field=reading.legal_field,
        kind=contact.kind,
        field_is_known=reading.field_is_known,
        at=at,
        window=policy.attach_window,
        named_case_id=event.case_id,
    )
    case = after.case(attached.case_id) if attached else None
    decision = domain.decide_case(
        new_case_id=short_id("case", contact.contact_id, "case"),
        contact=contact,
        reading=reading,
        attached=attached,
        attached_is_dispute=bool(case and case.is_dispute),
        profile=after.profile,
        case_documents=case.documents if case else (),
        contracts=len(after.contracts),
        other_cases=len(after.case_ids) - (1 if attached else 0),
        last_activity=before.last_activity_at if before else None,
        at=at,
        today=at.astimezone(rules.zone).date(),
        policy=policy,
    )
    point = contact_point(contact, after.profile)
    text = domain.without_identity(contact.message, names=[after.profile.name or ""])
    state.set(f"customer/{customer_id}", filed(after, decision, contact, at=at, text=text))
    if decision.new_case:
        link = CaseStep.caused_by(
            event,
            producer=rules.producer,
            case_id=decision.case_id,
            customer_id=customer_id,
            contact=point,
        )
        ctx.emit(link, key=decision.case_id)
    if step.absorbed:
        merged = CustomerMerged.caused_by(
            event,
            producer=rules.producer,
            case_id=decision.case_id,
            customer_id=customer_id,
            merged_customer_ids=sorted(r.customer_id for r in step.absorbed),
            moved_case_ids=sorted(c for r in step.absorbed for c in r.case_ids),
        )
        ctx.emit(merged)
        log.info("customers_merged", customer_id=customer_id, merged=merged.merged_customer_ids)
    out = CaseClassified.caused_by(
        event,
        producer=rules.producer,
        **classified(
            decision, customer_id=customer_id, contact_id=contact.contact_id,
            channel=contact.channel, kind=contact.kind, point=point,
        ),
    )  # fmt: skip
    ctx.emit(out)
    previous = before.segment if before else None
    if previous is not None and previous != decision.segment:
        _announce_segment(
            event, ctx, rules, record=after, previous=previous, segment=decision.segment,
            case_id=decision.case_id, contact=out.contact,
        )  # fmt: skip
    _repoint(event, step.owners, Owner(customer_id=customer_id, since=since), ctx, rules)
    log.info(
        "case_classified",
        case_id=decision.case_id,
        new_case=decision.new_case,
        legal_field=decision.legal_field.value,
        confidence=decision.confidence,
        needs_triage=decision.needs_triage,
        segment=decision.segment.value,
    )


def _repoint(
    event: ContactReceived, owners: dict[str, str], keep: Owner, ctx: Context, rules: Rules
) -> None:
    """Point the contact's identifiers that named a folded customer at the survivor."""
    for key, owner in sorted(owners.items()):
        if owner != keep.customer_id:
            step = IdentifyStep.caused_by(
                event, producer=rules.producer, discriminator=f"repoint/{key}", keys=[key],
                repoint=keep,
            )  # fmt: skip
            ctx.emit(step, key=key)


def _count_contract(
    state: State,
    step: CustomerStep,
    event: ContractSigned,
    record: CustomerRecord,
    ctx: Context,
    rules: Rules,
) -> None:
    """Count a contract once; announce the segment it moves the customer to."""
    if event.contract_id in record.contracts:
        return
    after = signed(record, event.contract_id, event.occurred_at)
    segment = domain.segment_for(
        contracts=len(after.contracts),
        other_cases=0,
        last_activity=None,
        at=event.occurred_at,
        policy=rules.policy.segments,
    )
    previous = record.segment or Segment.NEW
    if previous != segment:
        after = after.model_copy(update={"segment": segment})
        _announce_segment(
            event, ctx, rules, record=after, previous=previous, segment=segment,
            case_id=event.case_id, contact=step.case_contact,
        )  # fmt: skip
    state.set(f"customer/{record.customer_id}", after)


def _announce_segment(
    cause: ContactReceived | ContractSigned,
    ctx: Context,
    rules: Rules,
    *,
    record: CustomerRecord,
    previous: Segment,
    segment: Segment,
    case_id: str,
    contact: ContactPoint | None,
) -> None:
    """Publish customer.segment_changed for a change `cause` brought about."""
    ctx.emit(
        CustomerSegmentChanged.caused_by(
            cause,
            producer=rules.producer,
            case_id=case_id,
            customer_id=record.customer_id,
            previous_segment=previous,
            segment=segment,
            contracts=len(record.contracts),
            contact=contact,
        )
    )
    log.info("segment_changed", customer_id=record.customer_id, previous=previous, segment=segment)


# --- cases, keyed by case id ------------------------------------------------------------


def on_case_resolved(state: State, event: CaseResolved, ctx: Context, *, rules: Rules) -> None:
    """Close the case: pass it to the case's partition, behind the case's link."""
    ctx.emit(CaseStep.caused_by(event, producer=rules.producer, resolved=event), key=event.case_id)


def on_contract_signed(state: State, event: ContractSigned, ctx: Context, *, rules: Rules) -> None:
    """Count the contract: pass it to the case's partition, behind the case's link."""
    ctx.emit(CaseStep.caused_by(event, producer=rules.producer, contract=event), key=event.case_id)


def on_case_reclassified(
    state: State, event: CaseReclassified, ctx: Context, *, rules: Rules
) -> None:
    """Staff corrected the field: pass it to the case's partition, behind the case's link."""
    step = CaseStep.caused_by(event, producer=rules.producer, reclassified=event)
    ctx.emit(step, key=event.case_id)


def on_case_step(state: State, step: CaseStep, ctx: Context, *, rules: Rules) -> None:
    """Remember whose case it is, or pass a case event on to that customer."""
    assert step.case_id is not None
    key = f"case/{step.case_id}"
    if step.customer_id is not None:
        state.set(key, CaseLink(customer_id=step.customer_id, contact=step.contact))
        return
    link = state.get(key)
    cause: Event | None = step.resolved or step.contract or step.reclassified
    assert cause is not None
    if not isinstance(link, CaseLink):
        ctx.dead_letter(cause, topic=cause.event_type, reason=f"unknown case {step.case_id}")
        return
    ctx.emit(
        CustomerStep.caused_by(
            step,
            producer=rules.producer,
            customer_id=link.customer_id,
            resolved=step.resolved,
            contract=step.contract,
            reclassified=step.reclassified,
            case_contact=link.contact,
        ),
        key=link.customer_id,
    )


def _reclassify(
    state: State,
    step: CustomerStep,
    event: CaseReclassified,
    record: CustomerRecord,
    ctx: Context,
    rules: Rules,
) -> None:
    """Give the open case staff's field, keep the correction as a labelled example and
    publish the case classified again, marked as a correction."""
    case = record.case(event.case_id)
    if case is None:
        log.warning("reclassified_case_not_open", case_id=event.case_id)
        return
    at = event.occurred_at
    after = reclassified(record, event.case_id, event.legal_field)
    state.set(f"customer/{record.customer_id}", after)
    correction = Correction(
        case_id=event.case_id, text=case.text, legal_field=event.legal_field,
        previous_field=case.legal_field, agent_id=event.agent_id, reason=event.reason,
        corrected_at=at,
    )  # fmt: skip
    state.set(f"correction/{event.case_id}", correction)
    decision = domain.corrected_decision(
        case_id=event.case_id,
        legal_field=event.legal_field,
        is_dispute=case.is_dispute,
        is_complaint=case.is_complaint,
        profile=after.profile,
        documents=case.documents,
        segment=after.segment or Segment.NEW,
        today=at.astimezone(rules.zone).date(),
        policy=rules.policy,
    )
    point = step.case_contact or ContactPoint(channel=case.channel or Channel.WEBSITE)
    payload = classified(
        decision, customer_id=record.customer_id, contact_id=case.contact_id or "",
        channel=case.channel or point.channel, kind=case.kind or ContactKind.INQUIRY, point=point,
    )  # fmt: skip
    payload["explanation"] = f"corrected by {event.agent_id} from {case.legal_field.value}"
    out = CaseClassified.caused_by(
        event,
        producer=rules.producer,
        correction=True,
        corrected_from=case.legal_field.value,
        **payload,
    )
    ctx.emit(out)
    log.info(
        "case_reclassified",
        case_id=event.case_id,
        previous=case.legal_field.value,
        legal_field=event.legal_field.value,
    )


def classified(
    decision: domain.CaseDecision,
    *,
    customer_id: str,
    contact_id: str,
    channel: Channel,
    kind: ContactKind,
    point: ContactPoint,
) -> dict[str, Any]:
    """The payload of case.classified for a decision."""
    return {
        "case_id": decision.case_id,
        "customer_id": customer_id,
        "contact_id": contact_id,
        "new_case": decision.new_case,
        "channel": channel.value,
        "kind": kind.value,
        "legal_field": decision.legal_field.value,
        "confidence": decision.confidence,
        "needs_triage": decision.needs_triage,
        "is_dispute": decision.is_dispute,
        "is_complaint": decision.is_complaint,
        "legal_aid": decision.legal_aid,
        "legal_aid_categories": [c.value for c in decision.legal_aid_categories],
        "segment": decision.segment.value,
        "age_band": decision.age_band.value if decision.age_band else None,
        "birthday": decision.birthday,
        "income_tier": decision.income_tier.value if decision.income_tier else None,
        "missing_items": decision.missing_items,
        "contact": point.model_dump(mode="json"),
        "explanation": decision.explanation,
    }


def contact_point(contact: domain.Contact, profile: domain.Profile) -> ContactPoint:
    """How to reach the customer: the contact's own channel and details, else known ones."""
    return ContactPoint(
        channel=contact.channel,
        sender_id=contact.sender_id,
        name=contact.name or profile.name,
        phone=contact.phone or next(iter(profile.phones), None),
        email=contact.email or next(iter(profile.emails), None),
    )
