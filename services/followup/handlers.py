"""Followup's Kafka handlers and timer firing: parse → domain → store → publish."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import structlog
from faststream.kafka import KafkaRouter

from services.followup import domain
from services.followup.store import FollowupStore
from shared import topics
from shared.batching import BatchSubscriber
from shared.calendar import CareCalendar
from shared.clock import Clock
from shared.events import (
    CareContactCompleted,
    CareContactRequested,
    CareKind,
    CaseClassified,
    CaseResolved,
    CustomerSegmentChanged,
    derived_event_id,
)
from shared.kafka import make_router
from shared.settings import LexcareSettings
from shared.timers import Timer

log = structlog.get_logger("lexcare.followup")


@dataclass(frozen=True)
class Care:
    """What the rules need besides the events: the calendar, the cadence and the time."""

    calendar: CareCalendar
    policy: domain.CarePolicy
    clock: Clock


def build_router(
    settings: LexcareSettings, store: FollowupStore, care: Care
) -> tuple[KafkaRouter, Callable[[Timer], Awaitable[None]]]:
    """Followup's subscribers and publisher, and the function that fires a due timer."""
    router = make_router(settings)
    subscribe = BatchSubscriber(router, settings, store.processed.batch)
    requested = router.publisher(
        topics.CARE_CONTACT_REQUESTED,
        schema=CareContactRequested,
        description="Outbound care work for channel adapters, dialers and agents' queues.",
    )
    rules = {"calendar": care.calendar, "policy": care.policy}

    @subscribe(topics.CASE_CLASSIFIED)
    async def on_case_classified(event: CaseClassified) -> None:
        if await store.processed.seen(event.event_id):
            return
        now = care.clock.now()
        before = await store.case(event.case_id)
        remembered = domain.remember_classified(before, event)
        timers, after = domain.plan_classified(remembered, event, now=now, **rules)
        customer_before = await store.customer(event.customer_id)
        customer = domain.remember_customer(customer_before, event)
        birthday = domain.plan_birthday(customer, now=now, calendar=care.calendar)
        # The case first: a timer may fire the moment it is scheduled and needs the case.
        await store.save_case(event.case_id, domain.changed_fields(before, after))
        await store.save_customer(
            event.customer_id, domain.changed_fields(customer_before, customer)
        )
        await store.schedule([*timers, *([birthday] if birthday else [])])
        await store.processed.mark(event.event_id, event_type=event.event_type)
        log.info("care_planned", timers=[t.kind.value for t in timers], birthday=bool(birthday))

    @subscribe(topics.CASE_RESOLVED)
    async def on_case_resolved(event: CaseResolved) -> None:
        if await store.processed.seen(event.event_id):
            return
        before = await store.case(event.case_id)
        check_in, after = domain.plan_resolved(before, event, now=care.clock.now(), **rules)
        await store.save_case(event.case_id, domain.changed_fields(before, after))
        cancelled = await store.cancel(event.case_id, domain.CADENCE_KINDS)
        await store.schedule([check_in] if check_in else [])
        await store.processed.mark(event.event_id, event_type=event.event_type)
        log.info("care_ended", cancelled=cancelled, check_in_at=check_in and check_in.due_at)

    @subscribe(topics.CARE_CONTACT_COMPLETED)
    async def on_care_contact_completed(event: CareContactCompleted) -> None:
        if await store.processed.seen(event.event_id):
            return
        request = await store.request(event.request_id)
        before = await store.case(event.case_id)
        after = domain.plan_outcome(event, request, before, now=care.clock.now(), **rules)
        if request is not None:
            await store.record_outcome(
                request.request_id, outcome=event.outcome.value, event_id=str(event.event_id)
            )
        if after.case is not None:
            await store.save_case(event.case_id, domain.changed_fields(before, after.case))
        if after.cancel_kinds:
            await store.cancel(event.case_id, after.cancel_kinds)
        await store.schedule([after.retry] if after.retry else [])
        await store.processed.mark(event.event_id, event_type=event.event_type)
        log.info(
            "care_outcome",
            outcome=event.outcome.value,
            decision=after.decision,
            request_id=event.request_id,
            attempt=request and request.attempt,
        )

    @subscribe(topics.CUSTOMER_SEGMENT_CHANGED)
    async def on_customer_segment_changed(event: CustomerSegmentChanged) -> None:
        if await store.processed.seen(event.event_id):
            return
        offer = domain.plan_loyalty_offer(event, now=care.clock.now(), calendar=care.calendar)
        if event.contact is not None:
            await store.save_customer(event.customer_id, {"contact": event.contact.model_dump()})
        await store.schedule([offer] if offer else [])
        await store.processed.mark(event.event_id, event_type=event.event_type)
        log.info("segment_changed", segment=event.segment.value, offer=bool(offer))

    async def fire(timer: Timer) -> None:
        """Publish the request a due timer stands for and plan what follows it."""
        due = domain.DueTimer(
            id=timer.id,
            kind=CareKind(timer.kind),
            due_at=timer.due_at,
            case_id=timer.case_id,
            payload=timer.payload,
        )
        case = await store.case(timer.case_id)
        customer = await store.customer(
            timer.payload.get("customer_id") or (case.customer_id if case else None)
        )
        now = care.clock.now()
        firing = domain.decide_firing(due, case, customer, now=now, **rules)
        await store.schedule(firing.then)
        if firing.case is not None and case is not None:
            await store.save_case(case.case_id, domain.changed_fields(case, firing.case))
        if firing.request is None:
            log.info("care_contact_skipped", kind=due.kind.value, reason=firing.skipped)
            return
        request = firing.request
        await store.record_request(domain.request_record(due, request))
        event = CareContactRequested(
            event_id=derived_event_id(timer.id, topics.CARE_CONTACT_REQUESTED),
            correlation_id=request.correlation_id,
            occurred_at=now,
            producer=settings.service_name,
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
        await requested.publish(event, key=event.partition_key())
        log.info(
            "care_contact_requested",
            case_id=request.case_id,
            kind=request.kind.value,
            request_id=request.request_id,
            attempt=request.attempt,
            priority=request.priority.value,
        )

    return router, fire
