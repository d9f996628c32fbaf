"""Followup's settings and wiring: the one place that builds its clients."""

from datetime import datetime, timedelta
from pathlib import Path

from faststream.asgi import AsgiFastStream

from services.followup.domain import CarePolicy
from services.followup.handlers import Care, build_router
from services.followup.store import FollowupStore
from shared import observability
from shared.calendar import CareCalendar, load_calendar, log_calendar_loaded
from shared.clock import Clock, SystemClock
from shared.service import build_app, plumbing
from shared.settings import LexcareSettings
from shared.timers import TimerLoop

DEFAULT_CALENDAR = Path(__file__).resolve().parents[2] / "deploy" / "config" / "care_windows.yaml"


class FollowupSettings(LexcareSettings):
    """Followup's settings (env prefix LEXCARE_)."""

    service_name: str = "followup"
    http_port: int = 8083
    care_calendar_path: Path = DEFAULT_CALENDAR
    """YAML care calendar: windows, working days, timezone, the firm's changes to holidays."""
    care_every_days: int = 2
    """Open cases: a care contact every this many days."""
    close_care_every_days: int = 1
    """Disputes and complaints: a care contact every this many days."""
    check_in_after_days: int = 7
    """After resolution: a check-in this many days later."""
    max_retries: int = 3
    """`no_answer` is retried in the next window at most this many times."""
    timer_interval_s: float = 2.0
    """Pause of the timer loop when nothing was due."""
    timer_lease_s: float = 30.0
    """How long a claimed timer is reserved; a crashed instance's timers fire after it."""
    followup_clock_offset_s: float = 0.0
    """TEST ONLY: shift the service's clock by this many seconds (fault tests)."""


class OffsetClock:
    """The system clock shifted by a fixed offset (test-only time travel for processes)."""

    def __init__(self, offset: timedelta) -> None:
        self.offset = offset
        self.system = SystemClock()

    def now(self) -> datetime:
        """The shifted current time."""
        return self.system.now() + self.offset


def create_app(
    settings: FollowupSettings,
    *,
    clock: Clock | None = None,
    calendar: CareCalendar | None = None,
) -> AsgiFastStream:
    """Build followup: broker, database, handlers, the timer loop and HTTP endpoints."""
    parts = plumbing(settings)
    clock = clock or OffsetClock(timedelta(seconds=settings.followup_clock_offset_s))
    care = Care(
        calendar=calendar or load_calendar(settings.care_calendar_path),
        policy=CarePolicy(
            close_care_every_days=settings.close_care_every_days,
            care_every_days=settings.care_every_days,
            check_in_after_days=settings.check_in_after_days,
            max_retries=settings.max_retries,
        ),
        clock=clock,
    )
    store = FollowupStore(parts.db, lease=timedelta(seconds=settings.timer_lease_s))
    router, fire = build_router(settings, store, care)
    parts.broker.include_router(router)
    loop = TimerLoop(store.timers, clock, fire, interval_s=settings.timer_interval_s)

    async def gauges() -> None:
        observability.TIMERS_DUE.set(await store.timers.due_count(clock.now()))

    async def announce_calendar() -> None:
        log_calendar_loaded(care.calendar, now=clock.now())

    app = build_app(
        parts,
        on_startup=[announce_calendar, store.prepare],
        gauges=gauges,
        forget=[store.processed.forget_before, store.timers.forget_before],
    )
    app.after_startup(loop.start)  # the loop publishes: the broker must be connected
    app.on_shutdown(loop.stop)
    return app
