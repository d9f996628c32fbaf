"""Survey's rules: pure functions, no I/O, and the state they keep."""

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.events import CaseClassified, CaseResolved, SurveyAnswered, derived_event_id

Question = Literal["nps", "csat", "ces"]
ANSWERED, EXPIRED = "answered", "expired"
RECENTLY_ANSWERED = "recently_answered"
REMINDER, EXPIRY = "survey_reminder", "survey_expiry"


@dataclass(frozen=True)
class SurveyPolicy:
    """When surveys are sent, reminded and expired, and what they ask."""

    reminder_after: timedelta = timedelta(hours=24)
    expires_after: timedelta = timedelta(days=7)
    fatigue_window: timedelta = timedelta(days=30)
    questions: tuple[Question, ...] = ("nps", "csat", "ces")


@dataclass(frozen=True)
class Survey:
    """One case's survey as survey decided it: sent (with its deadlines) or skipped."""

    survey_id: str
    case_id: str
    customer_id: str
    channel: str
    legal_field: str
    segment: str | None
    lawyer_id: str | None
    contact: dict[str, Any]
    questions: tuple[Question, ...]
    requested_at: datetime
    remind_at: datetime
    expires_at: datetime
    skipped: str | None = None


@dataclass(frozen=True)
class Outcome:
    """How a survey ended: answered by one answer event, or expired (first one wins)."""

    survey_id: str
    outcome: Literal["answered", "expired"]
    at: datetime
    answer_event_id: str | None = None


def survey_id_for(case_id: str) -> str:
    """The survey id of a case: one survey per case, whatever resolves it how often."""
    return f"srv-{derived_event_id(case_id, 'survey').hex[:16]}"


def recently_answered(
    last_answered_at: datetime | None, *, now: datetime, window: timedelta
) -> bool:
    """True when the customer answered a survey within `window` before `now` (fatigue)."""
    return last_answered_at is not None and now - last_answered_at < window


def plan_survey(
    *,
    case_id: str,
    context: dict[str, Any],
    lawyer_id: str | None,
    now: datetime,
    last_answered_at: datetime | None,
    policy: SurveyPolicy,
) -> Survey:
    """Decide the case's survey: its deadlines, or that it is skipped for fatigue."""
    skipped = (
        RECENTLY_ANSWERED
        if recently_answered(last_answered_at, now=now, window=policy.fatigue_window)
        else None
    )
    return Survey(
        survey_id=survey_id_for(case_id),
        case_id=case_id,
        customer_id=context["customer_id"],
        channel=context["channel"],
        legal_field=context["legal_field"],
        segment=context.get("segment"),
        lawyer_id=lawyer_id,
        contact=context["contact"],
        questions=policy.questions,
        requested_at=now,
        remind_at=now + policy.reminder_after,
        expires_at=now + policy.expires_after,
        skipped=skipped,
    )


def handling_lawyer(*, resolved_by: str | None, assigned: str | None) -> str | None:
    """Who the survey is about: the lawyer who resolved the case, else the one assigned."""
    return resolved_by or assigned


def answer_problem(
    answer: SurveyAnswered, survey: Survey | None, outcome: Outcome | None
) -> str | None:
    """Why `answer` cannot be scored, or None when it is valid."""
    if survey is None:
        return f"unknown survey: {answer.survey_id} was never requested"
    if survey.skipped is not None:
        return f"unknown survey: {answer.survey_id} was not sent ({survey.skipped})"
    given = {q for q in ("nps", "csat", "ces") if getattr(answer, q) is not None}
    not_asked = sorted(given - set(survey.questions))
    if not_asked:
        return f"score not asked by survey {survey.survey_id}: {', '.join(not_asked)}"
    if answer.occurred_at > survey.expires_at:
        return (
            f"late answer: given at {answer.occurred_at.isoformat()}, survey "
            f"{survey.survey_id} expired at {survey.expires_at.isoformat()}"
        )
    if outcome is not None and outcome.outcome == EXPIRED:
        return f"survey {survey.survey_id} expired at {survey.expires_at.isoformat()}"
    if outcome is not None and outcome.answer_event_id != str(answer.event_id):
        return (
            f"survey {survey.survey_id} already answered "
            f"(event {outcome.answer_event_id} at {outcome.at.isoformat()})"
        )
    return None


def timer_id(survey_id: str, kind: str) -> str:
    """The durable timer id of a survey's reminder or expiry."""
    return f"{survey_id}:{kind}"


# The state survey keeps, per key (see handlers: which partition owns which key).


class CaseContext(BaseModel):
    """What survey keeps from a case.classified to send and enrich the case's survey."""

    model_config = ConfigDict(frozen=True)

    customer_id: str
    channel: str
    legal_field: str
    segment: str | None
    contact: dict[str, Any]

    @classmethod
    def of(cls, event: CaseClassified) -> "CaseContext":
        """The context a case.classified gives its case."""
        return cls(
            customer_id=event.customer_id,
            channel=str(event.channel),
            legal_field=str(event.legal_field),
            segment=str(event.segment),
            contact=event.contact.model_dump(mode="json"),
        )


class Resolution(BaseModel):
    """A case.resolved as survey keeps it: its free-text summary is not kept."""

    model_config = ConfigDict(frozen=True)

    event_id: str
    correlation_id: str
    lawyer_id: str | None

    @classmethod
    def of(cls, event: CaseResolved) -> "Resolution":
        """The resolution `event` records."""
        return cls(
            event_id=str(event.event_id),
            correlation_id=event.correlation_id,
            lawyer_id=event.lawyer_id,
        )


class CaseFacts(BaseModel):
    """What survey learnt about a case until its survey is due (`case/<case id>`)."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["case"] = "case"
    context: CaseContext | None = None
    lawyer_id: str | None = None
    resolution: Resolution | None = None
    survey_due: bool = False

    def ready(self) -> bool:
        """True when the case is resolved, known, and its survey not yet passed on."""
        return self.resolution is not None and self.context is not None and not self.survey_due


class SurveyLink(BaseModel):
    """Whose survey a survey id is (`link/<survey id>`): where its answers go."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["link"] = "link"
    customer_id: str


class CustomerSurveys(BaseModel):
    """What fatigue needs of a customer (`customer/<customer id>`)."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["customer"] = "customer"
    last_answered_at: datetime | None = None

    def answered(self, at: datetime) -> "CustomerSurveys":
        """The customer after answering a survey at `at`."""
        latest = at if self.last_answered_at is None else max(at, self.last_answered_at)
        return self.model_copy(update={"last_answered_at": latest})


class SurveyRecord(BaseModel):
    """A case's survey as decided, and how it ended (`survey/<survey id>`)."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["survey"] = "survey"
    survey: Survey
    outcome: Outcome | None = None

    def with_lawyer(self, lawyer_id: str) -> "SurveyRecord":
        """The record once the case's lawyer is known (kept when one was known already)."""
        if self.survey.lawyer_id is not None:
            return self
        return self.model_copy(update={"survey": replace(self.survey, lawyer_id=lawyer_id)})


SurveyState = Annotated[
    CaseFacts | SurveyLink | CustomerSurveys | SurveyRecord, Field(discriminator="kind")
]


def idle(value: CaseFacts | SurveyLink | CustomerSurveys | SurveyRecord) -> bool:
    """True when a value may leave memory: reloaded by key if an event needs it again.

    A survey waiting for its answer may leave too: most are never answered, and each
    waits for days (the answer, the reminder or the expiry brings it back), so keeping
    them made memory follow the surveys of the last week, not the cap. A case stays
    until its survey is due: its events come while it is open."""
    if isinstance(value, CaseFacts):
        return value.survey_due
    return True
