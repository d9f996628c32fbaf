"""Survey's settings and wiring: the one place that builds its clients."""

from datetime import timedelta

from faststream.asgi import AsgiFastStream
from prometheus_client import Gauge
from pydantic import Field

from services.survey.domain import Question, SurveyPolicy
from services.survey.handlers import build_router
from services.survey.store import SurveyStore
from shared import observability
from shared.clock import Clock, SystemClock
from shared.service import build_app, plumbing
from shared.settings import LexcareSettings
from shared.timers import TimerLoop

WAITING_RESOLUTIONS = Gauge(
    "lexcare_survey_resolutions_waiting",
    "Resolved cases whose survey waits for the case's case.classified.",
)


class SurveySettings(LexcareSettings):
    """Survey's settings (env prefix LEXCARE_)."""

    service_name: str = "survey"
    http_port: int = 8084
    survey_reminder_after_hours: float = Field(default=24.0, gt=0)
    """One reminder this long after the survey went out without an answer."""
    survey_expires_after_days: float = Field(default=7.0, gt=0)
    """Answers given later than this after the survey went out are rejected."""
    survey_fatigue_days: float = Field(default=30.0, ge=0)
    """No survey for a customer who answered one within this many days (0: always ask)."""
    survey_questions: list[Question] = Field(default=["nps", "csat", "ces"], min_length=1)
    """Scores a survey asks for (JSON list in the environment)."""
    timer_interval_s: float = Field(default=2.0, gt=0)
    """How often the reminder/expiry timer loop looks for due timers when idle."""

    def policy(self) -> SurveyPolicy:
        """The survey rules these settings describe."""
        return SurveyPolicy(
            reminder_after=timedelta(hours=self.survey_reminder_after_hours),
            expires_after=timedelta(days=self.survey_expires_after_days),
            fatigue_window=timedelta(days=self.survey_fatigue_days),
            questions=tuple(self.survey_questions),
        )


def create_app(settings: SurveySettings, clock: Clock | None = None) -> AsgiFastStream:
    """Build survey: broker, database, handlers, reminder/expiry timers, HTTP endpoints."""
    clock = clock or SystemClock()
    parts = plumbing(settings)
    store = SurveyStore(parts.db)
    routing = build_router(settings, store, clock=clock, policy=settings.policy())
    parts.broker.include_router(routing.router)
    timers = TimerLoop(
        store.timers, clock, routing.fire_timer, interval_s=settings.timer_interval_s
    )

    async def gauges() -> None:
        observability.TIMERS_DUE.set(await store.timers.due_count(clock.now()))
        WAITING_RESOLUTIONS.set(await store.waiting_resolutions())

    app = build_app(
        parts,
        on_startup=[store.prepare],
        gauges=gauges,
        forget=[store.processed.forget_before, store.timers.forget_before],
    )
    # Timers publish, so they run only while the broker is connected.
    app.after_startup(timers.start)
    app.on_shutdown(timers.stop)
    return app
