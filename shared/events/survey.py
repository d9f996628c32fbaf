"""Events of the satisfaction survey (NPS, CSAT, CES)."""

from typing import Literal, Self

from pydantic import AwareDatetime, Field, model_validator

from shared import topics

from .base import Event
from .contact import ContactPoint
from .enums import Channel, LegalField, Segment


class SurveyRequested(Event):
    """Survey asks an adapter to send the customer a survey."""

    event_type: Literal["survey.requested"] = Field(
        default=topics.SURVEY_REQUESTED, description="The event type, equal to its topic."
    )
    survey_id: str = Field(description="Id the answer must carry.", examples=["srv-91c0"])
    case_id: str = Field(description="The case.", examples=["case-7d1c2a40"])
    customer_id: str = Field(description="The customer.")
    channel: Channel = Field(description="Channel to send it on (the case's channel).")
    contact: ContactPoint = Field(description="How to reach the customer.")
    questions: list[Literal["nps", "csat", "ces"]] = Field(
        default_factory=lambda: ["nps", "csat", "ces"],
        description="Scores asked for.",
    )
    expires_at: AwareDatetime = Field(description="Answers after this are rejected.")
    legal_field: LegalField | None = Field(
        default=None,
        description="The case's legal field, so metrics can count requests by field.",
        examples=["land"],
    )
    lawyer_id: str | None = Field(
        default=None,
        description="Who handled the case, so metrics can count requests by lawyer.",
        examples=["law-land-01"],
    )
    survey_url: str | None = Field(
        default=None,
        max_length=2_000,
        description="The survey page for this survey (its token is sealed: no id in clear).",
        examples=["https://lexcare.example.vn/s/3q2x0pVq9Yc1e8Wn"],
    )


class SurveyReminded(Event):
    """Survey asks an adapter to remind the customer of an unanswered survey."""

    event_type: Literal["survey.reminded"] = Field(
        default=topics.SURVEY_REMINDED, description="The event type, equal to its topic."
    )
    survey_id: str = Field(description="The survey.")
    case_id: str = Field(description="The case.")
    channel: Channel = Field(description="Channel to send the reminder on.")
    contact: ContactPoint = Field(description="How to reach the customer.")
    expires_at: AwareDatetime = Field(description="Answers after this are rejected.")
    survey_url: str | None = Field(
        default=None,
        max_length=2_000,
        description="The survey page, the same link as the survey's request.",
        examples=["https://lexcare.example.vn/s/3q2x0pVq9Yc1e8Wn"],
    )


class SurveyExpired(Event):
    """A survey got no answer before it expired."""

    event_type: Literal["survey.expired"] = Field(
        default=topics.SURVEY_EXPIRED, description="The event type, equal to its topic."
    )
    survey_id: str = Field(description="The survey.")
    case_id: str = Field(description="The case.")
    channel: Channel = Field(description="Channel the survey went out on.")
    legal_field: LegalField | None = Field(
        default=None, description="The case's legal field.", examples=["land"]
    )
    lawyer_id: str | None = Field(
        default=None, description="Who handled the case.", examples=["law-land-01"]
    )


class SurveyAnswered(Event):
    """A customer's answer to a survey (published by channel adapters)."""

    event_type: Literal["survey.answered"] = Field(
        default=topics.SURVEY_ANSWERED, description="The event type, equal to its topic."
    )
    survey_id: str = Field(min_length=1, max_length=200, description="The survey answered.")
    nps: int | None = Field(default=None, ge=0, le=10, description="Likelihood to recommend.")
    csat: int | None = Field(default=None, ge=1, le=5, description="Satisfaction.")
    ces: int | None = Field(default=None, ge=1, le=7, description="Effort.")
    comment: str | None = Field(default=None, max_length=20_000, description="Free text.")

    @model_validator(mode="after")
    def _at_least_one_score(self) -> Self:
        if self.nps is None and self.csat is None and self.ces is None:
            raise ValueError("a survey answer needs at least one of nps, csat, ces")
        return self


class SurveyScored(Event):
    """A valid survey answer, enriched with the case's context for KPIs."""

    event_type: Literal["survey.scored"] = Field(
        default=topics.SURVEY_SCORED, description="The event type, equal to its topic."
    )
    survey_id: str = Field(description="The survey.")
    case_id: str = Field(description="The case.")
    customer_id: str = Field(description="The customer.")
    channel: Channel = Field(description="The case's channel.")
    legal_field: LegalField = Field(description="The case's legal field.")
    lawyer_id: str | None = Field(default=None, description="Who handled the case.")
    segment: Segment | None = Field(default=None, description="Customer segment.")
    nps: int | None = Field(default=None, ge=0, le=10, description="NPS answer, 0–10.")
    csat: int | None = Field(default=None, ge=1, le=5, description="CSAT answer, 1–5.")
    ces: int | None = Field(default=None, ge=1, le=7, description="CES answer, 1–7.")
    comment: str | None = Field(default=None, description="Free text (personal data possible).")
