"""Survey's settings and wiring: the one place that builds its clients."""

from datetime import timedelta

import structlog
from faststream.asgi import AsgiFastStream
from faststream.kafka import KafkaBroker
from prometheus_client import Gauge
from pydantic import Field

from services.survey.domain import CaseFacts, Question, SurveyPolicy
from services.survey.handlers import survey_runtime
from shared import topics
from shared.clock import Clock, SystemClock
from shared.events import SurveyExpired, SurveyReminded, SurveyRequested, SurveyScored
from shared.mongo import make_mongo, service_db
from shared.runtime.spec import Publishes, specification_broker
from shared.service import build_app, plumbing
from shared.settings import LexcareSettings
from shared.survey_links import SurveyLinks, SurveyLinkSettings

log = structlog.get_logger("lexcare.survey")
WAITING_RESOLUTIONS = Gauge(
    "lexcare_survey_resolutions_waiting",
    "Resolved cases whose survey waits for the case's case.classified.",
)


class SurveySettings(LexcareSettings, SurveyLinkSettings):
    """Survey's settings (env prefix LEXCARE_)."""

    service_name: str = "survey"
    http_port: int = 8084
    runtime_fetch_wait_ms: int = Field(default=100, ge=0)
    """Off the way from a contact to its lawyer: bigger batches, less CPU per event."""
    nice: int = Field(default=10, ge=0, le=19)
    """Off the way from a contact to its lawyer: yields the CPU to intake and routing."""
    survey_reminder_after_hours: float = Field(default=24.0, gt=0)
    """One reminder this long after the survey went out without an answer."""
    survey_expires_after_days: float = Field(default=7.0, gt=0)
    """Answers given later than this after the survey went out are rejected."""
    survey_fatigue_days: float = Field(default=30.0, ge=0)
    """No survey for a customer who answered one within this many days (0: always ask)."""
    survey_questions: list[Question] = Field(default=["nps", "csat", "ces"], min_length=1)
    """Scores a survey asks for (JSON list in the environment)."""
    survey_base_url: str = "http://127.0.0.1:8086"
    """Where the gateway's survey page is reached: links are `<base>/s/<token>`."""

    def policy(self) -> SurveyPolicy:
        """The survey rules these settings describe."""
        return SurveyPolicy(
            reminder_after=timedelta(hours=self.survey_reminder_after_hours),
            expires_after=timedelta(days=self.survey_expires_after_days),
            fatigue_window=timedelta(days=self.survey_fatigue_days),
            questions=tuple(self.survey_questions),
        )

    def links(self) -> SurveyLinks:
        """The survey page links survey requests carry."""
        return self.survey_links(self.survey_base_url)


def create_app(settings: SurveySettings, clock: Clock | None = None) -> AsgiFastStream:
    """Build survey: its rules on the stateful runtime, HTTP endpoints, AsyncAPI."""
    clock = clock or SystemClock()
    parts = plumbing(settings)
    if settings.survey_link_secret_is_default():
        log.warning("survey_link_secret_is_the_public_dev_default")
    runtime = survey_runtime(
        settings, parts.db, clock=clock, policy=settings.policy(), links=settings.links()
    )

    async def gauges() -> None:
        await runtime.observe()
        WAITING_RESOLUTIONS.set(sum(1 for v in runtime.loaded_values() if waits(v)))

    return build_app(parts, on_startup=[runtime.start], on_shutdown=[runtime.stop], gauges=gauges)


def waits(value: object) -> bool:
    """True for a resolved case whose survey waits for its case.classified."""
    return isinstance(value, CaseFacts) and value.resolution is not None and value.context is None


PUBLISHES: Publishes = (
    (topics.SURVEY_REQUESTED, SurveyRequested, "Send this survey."),
    (topics.SURVEY_REMINDED, SurveyReminded, "Remind of this survey."),
    (topics.SURVEY_EXPIRED, SurveyExpired, "A survey got no answer."),
    (topics.SURVEY_SCORED, SurveyScored, "A valid answer, enriched."),
)


def specification(settings: SurveySettings) -> KafkaBroker:
    """What survey consumes and publishes, for its AsyncAPI document."""
    db = service_db(make_mongo(settings), settings)
    runtime = survey_runtime(
        settings, db, clock=SystemClock(), policy=settings.policy(), links=settings.links()
    )
    return specification_broker(settings, runtime, PUBLISHES)
