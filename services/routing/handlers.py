"""Routing's Kafka handlers: parse → domain → store → publish.

Ordering rule for a case: an event about it is published before the stored state that
lets another handler act on it (a waiting case becomes visible to the queue only after
its "nobody fits" went out), so a later assignment is never overtaken by an older
"nobody fits". A handler that parks a case re-checks capacity after parking it, and a
handler that frees capacity drains the queue after freeing it: one of the two always
sees the other, so no freed slot is left unused while a case waits.
"""

import structlog
from faststream.kafka import KafkaRouter

from services.routing import domain
from services.routing.store import Claim, RoutingStore, now_utc
from shared import topics
from shared.batching import BatchSubscriber
from shared.events import (
    AssignmentReason,
    CaseAssigned,
    CaseClassified,
    CaseResolved,
    ContractSigned,
    Event,
    FeeQuoted,
    RosterPerson,
    RosterUpdated,
)
from shared.kafka import make_router
from shared.settings import LexcareSettings

log = structlog.get_logger("lexcare.routing")

Loads = dict[str, frozenset[int]]


def build_router(
    settings: LexcareSettings,
    store: RoutingStore,
    fees: domain.FeeSchedule,
    *,
    queue_batch: int = 200,
) -> KafkaRouter:
    """Routing's subscribers and publishers."""
    router = make_router(settings)
    subscribe = BatchSubscriber(router, settings, store.processed.batch)
    producer = settings.service_name
    assigned = router.publisher(
        topics.CASE_ASSIGNED,
        schema=CaseAssigned,
        description="Who handles a case; assignee null with no_expert/no_capacity when nobody.",
    )
    quoted = router.publisher(
        topics.FEE_QUOTED,
        schema=FeeQuoted,
        description="A new case's price per delivery method, recommendation and basis.",
    )

    async def publish_assignment(
        cause: Event,
        case: domain.RoutedCase,
        *,
        claim: Claim | None = None,
        reason: AssignmentReason | None = None,
        previous: str | None = None,
        story: str | None = None,
    ) -> None:
        """Publish who has the case now (or that nobody fits), keyed by the case.

        `story`: the case's own correlation id, when the cause belongs to another story
        (a slot freed by another case, a roster change): the case's story stays whole.
        """
        assignee = claim.person_id if claim else None
        reason = reason or domain.assignment_reason(previous)
        out = CaseAssigned.caused_by(
            cause,
            producer=producer,
            # One cause may route several cases, or park a case and then assign it.
            discriminator=f"{case.case_id}/{assignee or reason}",
            case_id=case.case_id,
            assignee_id=assignee,
            assignee_role=claim.role if claim else None,
            reason=reason,
            legal_field=case.legal_field,
            previous_assignee_id=previous,
        )
        if story:
            out = out.model_copy(update={"correlation_id": story})
        await assigned.publish(out, key=out.partition_key())
        log.info(
            "case_assigned" if assignee else "case_waiting",
            case_id=case.case_id,
            assignee_id=assignee,
            reason=str(reason),
            legal_field=str(case.legal_field),
        )

    async def try_assign(
        cause: Event,
        case: domain.RoutedCase,
        *,
        people: list[RosterPerson],
        loads: Loads,
        previous: str | None,
        story: str | None = None,
    ) -> bool:
        """Give the case a slot of the best free candidate; False when nobody could."""
        ranked = domain.rank_candidates(case, people, loads=loads)
        claim = await store.claim_first_free(
            ranked, loads, case_id=case.case_id, cause=str(cause.event_id), at=now_utc()
        )
        if claim is None:
            return False
        if claim.cause != str(cause.event_id):
            # Another handler holds the case's slot and announces it; the case document
            # may still say waiting (a lost concurrent update): set it right.
            await store.mark_assigned(claim)
            return True
        if await store.is_resolved(case.case_id):  # resolved while we claimed: give it back
            await store.release(case.case_id)
            return True
        await publish_assignment(cause, case, claim=claim, previous=previous, story=story)
        await store.mark_assigned(claim)
        loads[claim.person_id] = loads.get(claim.person_id, frozenset()) | {claim.slot}
        return True

    async def park(
        cause: Event,
        case: domain.RoutedCase,
        *,
        people: list[RosterPerson],
        previous: str | None,
        story: str | None = None,
    ) -> None:
        """Nobody fits: say so, queue the case, then look once more for a slot freed meanwhile."""
        reason = domain.why_nobody(case, people)
        await publish_assignment(cause, case, reason=reason, previous=previous, story=story)
        await store.mark_waiting(case.case_id, reason=str(reason))
        people = await store.active_people(case.legal_field)
        loads = await store.loads([p.id for p in people])
        await try_assign(cause, case, people=people, loads=loads, previous=previous, story=story)

    async def drain_queue(cause: Event) -> None:
        """Give freed capacity to waiting cases: complaints first, then the oldest."""
        waiting = {p.case.case_id: p for p in await store.waiting_cases(limit=queue_batch)}
        if not waiting:
            return
        people = await store.active_people()
        loads = await store.loads([p.id for p in people])
        for case in domain.queue_order(p.case for p in waiting.values()):
            if not domain.anyone_free(people, loads):
                break
            if not domain.rank_candidates(case, people, loads=loads):
                continue  # no room for this one: no need to ask the database
            parked = waiting[case.case_id]
            await try_assign(
                cause,
                case,
                people=people,
                loads=loads,
                previous=parked.previous_assignee_id,
                story=parked.correlation_id,
            )

    @subscribe(topics.CASE_CLASSIFIED)
    async def on_case_classified(event: CaseClassified) -> None:
        """Quote a new case and give it to the best free expert, or queue it."""
        if await store.processed.seen(event.event_id):
            log.info("duplicate_skipped")
            return
        case = domain.RoutedCase(
            case_id=event.case_id,
            legal_field=event.legal_field,
            is_dispute=event.is_dispute,
            is_complaint=event.is_complaint,
            opened_at=event.occurred_at,
        )
        if await store.is_resolved(event.case_id):
            log.info("case_already_resolved")
        elif not event.new_case and await store.knows_case(event.case_id):
            # A contact attached to a known case: keep its assignee, remember new flags.
            await store.raise_flags(
                event.case_id, is_dispute=event.is_dispute, is_complaint=event.is_complaint
            )
            log.info("contact_attached")
        else:
            await quote_and_assign(event, case)
        await store.processed.mark(event.event_id, event_type=event.event_type)

    async def quote_and_assign(event: CaseClassified, case: domain.RoutedCase) -> None:
        """Publish the new case's fee quote, then give it to someone or queue it."""
        request = domain.QuoteRequest(
            legal_field=event.legal_field,
            is_dispute=event.is_dispute,
            is_complaint=event.is_complaint,
            legal_aid=event.legal_aid,
            channel=event.channel,
            income_tier=event.income_tier,
        )
        fee = domain.quote(request, fees)
        await store.open_case(
            case,
            {
                "legal_aid": event.legal_aid,
                "channel": str(event.channel),
                "customer_id": event.customer_id,
                "correlation_id": event.correlation_id,
                "recommended_method": str(fee.recommended_method),
            },
        )
        out = FeeQuoted.caused_by(
            event,
            producer=producer,
            case_id=case.case_id,
            legal_field=case.legal_field,
            prices_vnd=fee.prices_vnd,
            recommended_method=fee.recommended_method,
            basis=fee.basis,
            dispute_surcharge_vnd=fee.dispute_surcharge_vnd,
            legal_aid=fee.legal_aid,
            referral=fee.referral,
        )
        await quoted.publish(out, key=out.partition_key())
        log.info("fee_quoted", recommended_method=str(fee.recommended_method))
        people = await store.active_people(case.legal_field)
        loads = await store.loads([p.id for p in people])
        if not await try_assign(event, case, people=people, loads=loads, previous=None):
            await park(event, case, people=people, previous=None)

    @subscribe(topics.CASE_RESOLVED)
    async def on_case_resolved(event: CaseResolved) -> None:
        """The case is over: its slot goes to the first waiting case that fits."""
        if await store.processed.seen(event.event_id):
            log.info("duplicate_skipped")
            return
        await store.resolve(
            event.case_id,
            outcome=str(event.outcome),
            lawyer_id=event.lawyer_id,
            at=event.occurred_at,
        )
        log.info("case_resolved", outcome=str(event.outcome))
        await drain_queue(event)
        await store.processed.mark(event.event_id, event_type=event.event_type)

    @subscribe(topics.CONTRACT_SIGNED)
    async def on_contract_signed(event: ContractSigned) -> None:
        """Remember the contract on the case."""
        if await store.processed.seen(event.event_id):
            log.info("duplicate_skipped")
            return
        await store.record_contract(
            event.case_id,
            contract_id=event.contract_id,
            amount_vnd=event.amount_vnd,
            method=str(event.delivery_method),
            at=event.occurred_at,
        )
        log.info("contract_recorded", delivery_method=str(event.delivery_method))
        await store.processed.mark(event.event_id, event_type=event.event_type)

    @subscribe(topics.ROSTER_UPDATED)
    async def on_roster_updated(event: RosterUpdated) -> None:
        """Apply a roster change; a deactivated person's open cases go to someone else."""
        if await store.processed.seen(event.event_id):
            log.info("duplicate_skipped")
            return
        person = event.person
        await store.save_person(person, at=event.occurred_at)
        log.info(
            "roster_person_saved",
            person_id=person.id,
            active=person.active,
            capacity=person.capacity,
        )
        if not person.active:
            await store.take_cases_from(person.id, cause=str(event.event_id))
            released = await store.cases_released_by(str(event.event_id))
            people = await store.active_people()
            loads = await store.loads([p.id for p in people])
            for parked in released:
                story = {"previous": parked.previous_assignee_id, "story": parked.correlation_id}
                if not await try_assign(event, parked.case, people=people, loads=loads, **story):
                    await park(event, parked.case, people=people, **story)
        await drain_queue(event)
        await store.processed.mark(event.event_id, event_type=event.event_type)

    return router
