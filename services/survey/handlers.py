"""Survey's Kafka handlers and timer actions: parse → domain → store → publish."""

from collections.abc import Awaitable, Callable
from typing import Any, NamedTuple

import structlog
from faststream.kafka import KafkaRouter

from services.survey import domain
from services.survey.domain import (
    ANSWERED,
    EXPIRED,
    EXPIRY,
    REMINDER,
    Outcome,
    Survey,
    SurveyPolicy,
)
from services.survey.store import SurveyStore
from shared import topics
from shared.batching import BatchSubscriber
from shared.clock import Clock
from shared.delivery import Rejected
from shared.events import (
    CaseAssigned,
    CaseClassified,
    CaseResolved,
    ContactPoint,
    SurveyAnswered,
    SurveyExpired,
    SurveyReminded,
    SurveyRequested,
    SurveyScored,
    derived_event_id,
)
from shared.kafka import make_router
from shared.settings import LexcareSettings
from shared.timers import Timer

log = structlog.get_logger("lexcare.survey")


class SurveyRouting(NamedTuple):
    """Survey's Kafka router and the action its durable timers run when due."""

    router: KafkaRouter
    fire_timer: Callable[[Timer], Awaitable[None]]


def case_context(event: CaseClassified) -> dict[str, Any]:
    """What survey keeps from a case.classified to send and enrich the case's survey."""
    return {
        "customer_id": event.customer_id,
        "channel": str(event.channel),
        "legal_field": str(event.legal_field),
        "segment": str(event.segment),
        "contact": event.contact.model_dump(mode="json"),
    }


def build_router(
    settings: LexcareSettings, store: SurveyStore, *, clock: Clock, policy: SurveyPolicy
) -> SurveyRouting:
    """Survey's subscribers, publishers and timer action."""
    router = make_router(settings)
    subscribe = BatchSubscriber(router, settings, store.processed.batch)
    producer = settings.service_name
    requested = router.publisher(
        topics.SURVEY_REQUESTED, schema=SurveyRequested, description="Send this survey."
    )
    reminded = router.publisher(
        topics.SURVEY_REMINDED, schema=SurveyReminded, description="Remind of this survey."
    )
    expired = router.publisher(
        topics.SURVEY_EXPIRED, schema=SurveyExpired, description="A survey got no answer."
    )
    scored = router.publisher(
        topics.SURVEY_SCORED, schema=SurveyScored, description="A valid answer, enriched."
    )

    async def request_survey(case: dict[str, Any], resolution: CaseResolved) -> None:
        """Decide the resolved case's survey; publish it and start its timers unless skipped."""
        context = case.get("context")
        if context is None:
            log.info("survey_waiting_for_case_context")  # sent when case.classified arrives
            return
        plan = domain.plan_survey(
            case_id=resolution.case_id,
            context=context,
            lawyer_id=domain.handling_lawyer(
                resolved_by=resolution.lawyer_id, assigned=case.get("assigned_lawyer_id")
            ),
            now=clock.now(),
            last_answered_at=await store.last_answered_at(context["customer_id"]),
            policy=policy,
        )
        survey = await store.save_survey(plan, cause_id=str(resolution.event_id))
        if survey is None:
            log.info("survey_already_decided_for_case", survey_id=plan.survey_id)
        elif survey.skipped is not None:
            log.info("survey_skipped", survey_id=survey.survey_id, reason=survey.skipped)
        else:
            await schedule_timers(survey, correlation_id=resolution.correlation_id)
            out = SurveyRequested.caused_by(
                resolution,
                producer=producer,
                occurred_at=survey.requested_at,
                survey_id=survey.survey_id,
                customer_id=survey.customer_id,
                channel=survey.channel,
                contact=ContactPoint.model_validate(survey.contact),
                questions=list(survey.questions),
                expires_at=survey.expires_at,
                legal_field=survey.legal_field,
                lawyer_id=survey.lawyer_id,
            )
            await requested.publish(out, key=out.partition_key())
            log.info("survey_requested", survey_id=survey.survey_id, channel=survey.channel)
        await store.mark_survey_decided(resolution.case_id)

    async def schedule_timers(survey: Survey, *, correlation_id: str) -> None:
        payload = {"survey_id": survey.survey_id, "correlation_id": correlation_id}
        for kind, due_at in ((REMINDER, survey.remind_at), (EXPIRY, survey.expires_at)):
            await store.timers.schedule(
                domain.timer_id(survey.survey_id, kind),
                due_at=due_at,
                kind=kind,
                payload=payload,
                case_id=survey.case_id,
            )

    @subscribe(topics.CASE_CLASSIFIED)
    async def on_case_classified(event: CaseClassified) -> None:
        if await store.processed.seen(event.event_id):
            return
        case = await store.remember_context(event.case_id, case_context(event))
        if case.get("resolution") and not case.get("survey_decided"):
            await request_survey(case, CaseResolved.model_validate(case["resolution"]))
        await store.processed.mark(event.event_id, event_type=event.event_type)

    @subscribe(topics.CASE_ASSIGNED)
    async def on_case_assigned(event: CaseAssigned) -> None:
        if event.assignee_id is None or await store.processed.seen(event.event_id):
            return
        await store.remember_lawyer(event.case_id, event.assignee_id)
        await store.processed.mark(event.event_id, event_type=event.event_type)

    @subscribe(topics.CASE_RESOLVED)
    async def on_case_resolved(event: CaseResolved) -> None:
        if await store.processed.seen(event.event_id):
            return
        # The summary may hold personal data survey has no use for: it is not kept.
        resolution = event.model_dump(mode="json", exclude={"summary"})
        case = await store.remember_resolution(event.case_id, resolution)
        if not case.get("survey_decided"):  # else an earlier resolution decided it
            await request_survey(case, event)
        await store.processed.mark(event.event_id, event_type=event.event_type)

    @subscribe(topics.SURVEY_ANSWERED)
    async def on_survey_answered(event: SurveyAnswered) -> None:
        if await store.processed.seen(event.event_id):
            log.info("duplicate_answer_skipped", survey_id=event.survey_id)
            return
        survey = await store.survey(event.survey_id)
        reject_if(domain.answer_problem(event, survey, None))
        assert survey is not None
        claimed = Outcome(
            survey.survey_id, ANSWERED, at=event.occurred_at, answer_event_id=str(event.event_id)
        )
        # A concurrent expiry or another answer may have ended the survey first.
        holding = await store.claim_outcome(claimed, customer_id=survey.customer_id)
        reject_if(domain.answer_problem(event, survey, holding))
        lawyer_id = survey.lawyer_id or (await store.case(survey.case_id) or {}).get(
            "assigned_lawyer_id"
        )
        out = SurveyScored.caused_by(
            event,
            producer=producer,
            survey_id=survey.survey_id,
            case_id=survey.case_id,
            customer_id=survey.customer_id,
            channel=survey.channel,
            legal_field=survey.legal_field,
            lawyer_id=lawyer_id,
            segment=survey.segment,
            nps=event.nps,
            csat=event.csat,
            ces=event.ces,
            comment=event.comment,
        )
        await scored.publish(out, key=out.partition_key())
        await store.timers.cancel(case_id=survey.case_id, kinds=[REMINDER, EXPIRY])
        await store.processed.mark(event.event_id, event_type=event.event_type)
        log.info("survey_scored", survey_id=survey.survey_id, case_id=survey.case_id)

    async def fire_timer(timer: Timer) -> None:
        """Remind of, or expire, the timer's survey unless it already ended."""
        survey = await store.survey(timer.payload["survey_id"])
        if survey is None:
            log.warning("timer_for_unknown_survey", timer_kind=timer.kind)
            return
        envelope = {
            "event_id": derived_event_id(timer.id, timer.kind),
            "correlation_id": timer.payload.get("correlation_id", ""),
            "occurred_at": timer.due_at,
            "producer": producer,
            "case_id": survey.case_id,
            "survey_id": survey.survey_id,
            "channel": survey.channel,
        }
        if timer.kind == REMINDER:
            if await store.outcome(survey.survey_id) is not None:
                return  # answered (or expired) already: no reminder
            reminder = SurveyReminded(
                contact=ContactPoint.model_validate(survey.contact),
                expires_at=survey.expires_at,
                **envelope,
            )
            await reminded.publish(reminder, key=reminder.partition_key())
            log.info("survey_reminded", survey_id=survey.survey_id)
        elif timer.kind == EXPIRY:
            ended = Outcome(survey.survey_id, EXPIRED, at=timer.due_at)
            holding = await store.claim_outcome(ended, customer_id=survey.customer_id)
            if holding.outcome != EXPIRED:
                return  # answered in time
            expiry = SurveyExpired(
                legal_field=survey.legal_field, lawyer_id=survey.lawyer_id, **envelope
            )
            await expired.publish(expiry, key=expiry.partition_key())
            log.info("survey_expired", survey_id=survey.survey_id)

    return SurveyRouting(router, fire_timer)


def reject_if(problem: str | None) -> None:
    """Dead-letter the message with `problem` as its reason, when there is one."""
    if problem is not None:
        raise Rejected(problem)
