"""Survey's internal events: how a case's survey reaches the partition that owns it.

Survey keeps each survey with its customer, so one partition decides fatigue, runs the
survey's timers and scores its answer. Case events arrive keyed by case, answers by case
or survey id: their rules pass what the customer's partition needs on through two
internal topics of survey's runtime (docs/services/survey.md, "One writer per key").
"""

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from services.survey.domain import CaseContext, Resolution
from shared.events import Event, SurveyAnswered

SURVEY_STEP = "survey.step"
"""Internal, keyed by customer id: a survey due, an answer, a lawyer learnt late."""
SURVEY_ROUTE = "survey.route"
"""Internal, keyed by survey id: whose survey an id is, and the answers given to it."""


class DueSurvey(BaseModel):
    """A resolved case whose survey the customer's partition decides."""

    model_config = ConfigDict(frozen=True)

    context: CaseContext
    lawyer_id: str | None
    resolution: Resolution


class SurveyStep(Event):
    """Something the customer's partition must do about one of the customer's surveys."""

    event_type: Literal["survey.step"] = Field(default=SURVEY_STEP)
    customer_id: str
    survey_id: str
    due: DueSurvey | None = None
    answer: SurveyAnswered | None = None
    lawyer_id: str | None = None
    """The case's lawyer, assigned after its survey was due."""


class SurveyRoute(Event):
    """To the survey id's partition: whose survey it is (a link), or an answer to it."""

    event_type: Literal["survey.route"] = Field(default=SURVEY_ROUTE)
    survey_id: str
    customer_id: str | None = None
    answer: SurveyAnswered | None = None
