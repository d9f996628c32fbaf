"""Survey's rules on the stateful runtime: case facts → a survey per case, kept with its
customer → reminder, expiry, score.

Who owns what (one writer per key): case events arrive keyed by case, so the case's
partition gathers its facts (`case/<id>`); once the case is resolved and known it passes
the survey on to the customer's partition (`survey.step`, keyed by customer), which
decides it against the customer's last answer (`customer/<id>`), keeps it
(`survey/<id>`), runs its reminder and expiry timers and scores its answer. Answers arrive
keyed by case or survey id: the survey id's partition knows whose survey it is
(`link/<id>`, written by `survey.route` before the survey goes out) and passes the answer on.
"""

from functools import partial
from typing import Any

import structlog

from services.survey.domain import (
    ANSWERED,
    EXPIRED,
    EXPIRY,
    REMINDER,
    CaseContext,
    CaseFacts,
    CustomerSurveys,
    Outcome,
    Resolution,
    Survey,
    SurveyLink,
    SurveyPolicy,
    SurveyRecord,
    SurveyState,
    answer_problem,
    handling_lawyer,
    idle,
    plan_survey,
    survey_id_for,
    timer_id,
)
from services.survey.steps import SURVEY_ROUTE, SURVEY_STEP, DueSurvey, SurveyRoute, SurveyStep
from shared import topics
from shared.clock import Clock
from shared.events import (
    CaseAssigned,
    CaseClassified,
    CaseResolved,
    ContactPoint,
    Event,
    SurveyAnswered,
    SurveyExpired,
    SurveyReminded,
    SurveyRequested,
    SurveyScored,
    derived_event_id,
)
from shared.runtime import Context, Runtime, Timer, View
from shared.settings import LexcareSettings
from shared.survey_links import SurveyClaims, SurveyLinks

log = structlog.get_logger("lexcare.survey")
PRODUCER = "survey"


def survey_runtime(
    settings: LexcareSettings,
    db: Any,
    *,
    clock: Clock,
    policy: SurveyPolicy,
    links: SurveyLinks | None = None,
) -> Runtime[Any]:
    """Survey's rules registered on a runtime (`links`: the page link each request carries)."""
    runtime: Runtime[Any] = Runtime(settings, db, value_type=SurveyState, clock=clock, idle=idle)
    runtime.on(topics.CASE_CLASSIFIED, CaseClassified)(on_case_classified)
    runtime.on(topics.CASE_ASSIGNED, CaseAssigned)(on_case_assigned)
    runtime.on(topics.CASE_RESOLVED, CaseResolved)(on_case_resolved)
    runtime.on(topics.SURVEY_ANSWERED, SurveyAnswered, stateless=True)(on_survey_answered)
    runtime.on(SURVEY_ROUTE, SurveyRoute, internal=True)(on_survey_route)
    step = partial(on_survey_step, policy=policy, links=links)
    runtime.on(SURVEY_STEP, SurveyStep, internal=True)(step)
    runtime.on_timer(REMINDER)(partial(on_reminder, links=links))
    runtime.on_timer(EXPIRY)(on_expiry)
    return runtime


# The case's partition.


def on_case_classified(state: View[Any], event: CaseClassified, ctx: Context) -> None:
    """Keep the case's latest context; send its survey on if it waited for it."""
    case = _case(state, event.case_id).model_copy(update={"context": CaseContext.of(event)})
    _save_case(state, event.case_id, case, cause=event, ctx=ctx)


def on_case_assigned(state: View[Any], event: CaseAssigned, ctx: Context) -> None:
    """Keep the case's lawyer; a survey already passed on learns it too."""
    if event.assignee_id is None:
        return
    case = _case(state, event.case_id).model_copy(update={"lawyer_id": event.assignee_id})
    if case.survey_due and case.context is not None:
        step = SurveyStep.caused_by(
            event,
            producer=PRODUCER,
            customer_id=case.context.customer_id,
            survey_id=survey_id_for(event.case_id),
            lawyer_id=event.assignee_id,
        )
        ctx.emit(step, key=step.customer_id)
    _save_case(state, event.case_id, case, cause=event, ctx=ctx)


def on_case_resolved(state: View[Any], event: CaseResolved, ctx: Context) -> None:
    """Keep the resolution until the case's survey is passed on (the first one counts)."""
    case = _case(state, event.case_id)
    if case.survey_due:
        log.info("survey_already_decided_for_case", survey_id=survey_id_for(event.case_id))
        return
    case = case.model_copy(update={"resolution": Resolution.of(event)})
    _save_case(state, event.case_id, case, cause=event, ctx=ctx)


def _case(state: View[Any], case_id: str) -> CaseFacts:
    case = state.get(f"case/{case_id}")
    return case if isinstance(case, CaseFacts) else CaseFacts()


def _save_case(
    state: View[Any], case_id: str, case: CaseFacts, *, cause: Event, ctx: Context
) -> None:
    """Store the case; once it is resolved and known, pass its survey on to its customer."""
    if case.ready():
        assert case.context is not None and case.resolution is not None
        survey_id, customer_id = survey_id_for(case_id), case.context.customer_id
        due = DueSurvey(
            context=case.context,
            lawyer_id=handling_lawyer(
                resolved_by=case.resolution.lawyer_id, assigned=case.lawyer_id
            ),
            resolution=case.resolution,
        )
        # The link first: it reaches the survey id's partition before any answer can.
        link = SurveyRoute.caused_by(
            cause, producer=PRODUCER, survey_id=survey_id, customer_id=customer_id
        )
        ctx.emit(link, key=survey_id)
        step = SurveyStep.caused_by(
            cause, producer=PRODUCER, customer_id=customer_id, survey_id=survey_id, due=due
        )
        ctx.emit(step, key=customer_id)
        case = case.model_copy(update={"survey_due": True})
    elif case.resolution is not None and case.context is None:
        log.info("survey_waiting_for_case_context")  # sent when case.classified arrives
    state.set(f"case/{case_id}", case)


# Answers, by survey id.


def on_survey_answered(state: View[Any], event: SurveyAnswered, ctx: Context) -> None:
    """Pass the answer on to its survey id's partition."""
    route = SurveyRoute.caused_by(event, producer=PRODUCER, survey_id=event.survey_id, answer=event)
    ctx.emit(route, key=event.survey_id)


def on_survey_route(state: View[Any], route: SurveyRoute, ctx: Context) -> None:
    """Remember whose survey the id is, or pass an answer on to that customer's partition."""
    key = f"link/{route.survey_id}"
    if route.answer is None:
        assert route.customer_id is not None
        state.set(key, SurveyLink(customer_id=route.customer_id))
        return
    link = state.get(key)
    if not isinstance(link, SurveyLink):
        reason = f"unknown survey: {route.survey_id} was never requested"
        ctx.dead_letter(route.answer, topic=topics.SURVEY_ANSWERED, reason=reason)
        return
    step = SurveyStep.caused_by(
        route,
        producer=PRODUCER,
        customer_id=link.customer_id,
        survey_id=route.survey_id,
        answer=route.answer,
    )
    ctx.emit(step, key=link.customer_id)


# The customer's partition: the survey itself.


def on_survey_step(
    state: View[Any],
    step: SurveyStep,
    ctx: Context,
    *,
    policy: SurveyPolicy,
    links: SurveyLinks | None = None,
) -> None:
    """Decide a due survey, score an answer, or note a lawyer learnt late."""
    if step.due is not None:
        _decide(state, step, step.due, ctx, policy, links)
    elif step.answer is not None:
        _score(state, step, step.answer, ctx)
    elif step.lawyer_id is not None:
        record = _record(state, step.survey_id)
        if record is not None:
            state.set(f"survey/{step.survey_id}", record.with_lawyer(step.lawyer_id))


def _record(state: View[Any], survey_id: str) -> SurveyRecord | None:
    record = state.get(f"survey/{survey_id}")
    return record if isinstance(record, SurveyRecord) else None


def _customer(state: View[Any], customer_id: str) -> CustomerSurveys:
    customer = state.get(f"customer/{customer_id}")
    return customer if isinstance(customer, CustomerSurveys) else CustomerSurveys()


def _decide(
    state: View[Any],
    step: SurveyStep,
    due: DueSurvey,
    ctx: Context,
    policy: SurveyPolicy,
    links: SurveyLinks | None,
) -> None:
    """Send the case's survey unless the customer answered one recently; start its timers."""
    if _record(state, step.survey_id) is not None:
        return  # decided already
    assert step.case_id is not None
    survey = plan_survey(
        case_id=step.case_id,
        context=due.context.model_dump(),
        lawyer_id=due.lawyer_id,
        now=ctx.now,
        last_answered_at=_customer(state, step.customer_id).last_answered_at,
        policy=policy,
    )
    state.set(f"survey/{survey.survey_id}", SurveyRecord(survey=survey))
    if survey.skipped is not None:
        log.info("survey_skipped", survey_id=survey.survey_id, reason=survey.skipped)
        return
    payload = {"survey_id": survey.survey_id, "correlation_id": due.resolution.correlation_id}
    for kind, due_at in ((REMINDER, survey.remind_at), (EXPIRY, survey.expires_at)):
        ctx.schedule(timer_id(survey.survey_id, kind), due_at=due_at, kind=kind, payload=payload)
    ctx.emit(
        SurveyRequested(
            event_id=derived_event_id(due.resolution.event_id, topics.SURVEY_REQUESTED, ""),
            correlation_id=due.resolution.correlation_id,
            occurred_at=survey.requested_at,
            producer=PRODUCER,
            case_id=survey.case_id,
            survey_id=survey.survey_id,
            customer_id=survey.customer_id,
            channel=survey.channel,
            contact=ContactPoint.model_validate(survey.contact),
            questions=list(survey.questions),
            expires_at=survey.expires_at,
            legal_field=survey.legal_field,
            lawyer_id=survey.lawyer_id,
            survey_url=_page_url(survey, links),
        )
    )
    log.info("survey_requested", survey_id=survey.survey_id, channel=survey.channel)


def _score(state: View[Any], step: SurveyStep, answer: SurveyAnswered, ctx: Context) -> None:
    """Score a valid answer with its case's context, end the survey, stop its timers."""
    record = _record(state, step.survey_id)
    survey, outcome = (record.survey, record.outcome) if record else (None, None)
    problem = answer_problem(answer, survey, outcome)
    if problem is not None:
        ctx.dead_letter(answer, topic=topics.SURVEY_ANSWERED, reason=problem)
        return
    assert record is not None and survey is not None
    if outcome is not None:
        return  # this very answer, scored already
    answered = Outcome(
        survey.survey_id, ANSWERED, at=answer.occurred_at, answer_event_id=str(answer.event_id)
    )
    state.set(f"survey/{survey.survey_id}", record.model_copy(update={"outcome": answered}))
    key = f"customer/{step.customer_id}"
    state.set(key, _customer(state, step.customer_id).answered(answer.occurred_at))
    for kind in (REMINDER, EXPIRY):
        ctx.cancel(timer_id(survey.survey_id, kind))
    ctx.emit(
        SurveyScored.caused_by(
            answer,
            producer=PRODUCER,
            survey_id=survey.survey_id,
            case_id=survey.case_id,
            customer_id=survey.customer_id,
            channel=survey.channel,
            legal_field=survey.legal_field,
            lawyer_id=survey.lawyer_id,
            segment=survey.segment,
            nps=answer.nps,
            csat=answer.csat,
            ces=answer.ces,
            comment=answer.comment,
        )
    )
    log.info("survey_scored", survey_id=survey.survey_id, case_id=survey.case_id)


def _page_url(survey: Survey, links: SurveyLinks | None) -> str | None:
    """The survey page's address for `survey` (sealed token), if survey makes links."""
    if links is None:
        return None
    claims = SurveyClaims(
        survey_id=survey.survey_id,
        case_id=survey.case_id,
        channel=survey.channel,
        questions=survey.questions,
        expires_at=survey.expires_at,
    )
    return links.url_for(claims)


def on_reminder(
    state: View[Any], timer: Timer, ctx: Context, *, links: SurveyLinks | None = None
) -> None:
    """Remind the customer of a survey still open a day after it went out."""
    record = _record(state, timer.payload["survey_id"])
    if record is None or record.outcome is not None:
        return  # answered (or expired) already
    survey = record.survey
    ctx.emit(
        SurveyReminded(
            contact=ContactPoint.model_validate(survey.contact),
            expires_at=survey.expires_at,
            survey_url=_page_url(survey, links),
            **_timer_envelope(timer, record),
        )
    )
    log.info("survey_reminded", survey_id=survey.survey_id)


def on_expiry(state: View[Any], timer: Timer, ctx: Context) -> None:
    """End a survey nobody answered in time."""
    record = _record(state, timer.payload["survey_id"])
    if record is None or record.outcome is not None:
        return  # answered in time
    survey = record.survey
    ended = Outcome(survey.survey_id, EXPIRED, at=timer.due_at)
    state.set(f"survey/{survey.survey_id}", record.model_copy(update={"outcome": ended}))
    ctx.emit(
        SurveyExpired(
            legal_field=survey.legal_field,
            lawyer_id=survey.lawyer_id,
            **_timer_envelope(timer, record),
        )
    )
    log.info("survey_expired", survey_id=survey.survey_id)


def _timer_envelope(timer: Timer, record: SurveyRecord) -> dict[str, Any]:
    """The envelope of what a survey's timer publishes: its id derived from the timer's."""
    return {
        "event_id": derived_event_id(timer.id, timer.kind),
        "correlation_id": timer.payload.get("correlation_id", ""),
        "occurred_at": timer.due_at,
        "producer": PRODUCER,
        "case_id": record.survey.case_id,
        "survey_id": record.survey.survey_id,
        "channel": record.survey.channel,
    }
