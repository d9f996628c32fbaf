"""Followup's settings and wiring: the one place that builds its clients."""

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import structlog
from faststream.asgi import AsgiFastStream
from faststream.kafka import KafkaBroker
from pydantic import Field

from services.followup import sla
from services.followup.domain import CarePolicy, Memory, is_idle
from services.followup.handlers import DEFAULT_SLA, Care, register
from services.followup.policy_feed import PolicyFeed
from shared import topics
from shared.calendar import CareCalendar, load_calendar, log_calendar_loaded
from shared.clock import Clock, SystemClock
from shared.events import CareContactRequested, SlaBreached, SlaMet, SlaWarning
from shared.mongo import make_mongo, service_db
from shared.runtime import Runtime
from shared.runtime.spec import specification_broker
from shared.service import build_app, plumbing
from shared.settings import LexcareSettings

DEFAULT_CALENDAR = Path(__file__).resolve().parents[2] / "deploy" / "config" / "care_windows.yaml"
log = structlog.get_logger("lexcare.followup")


class FollowupSettings(LexcareSettings):
    """Followup's settings (env prefix LEXCARE_)."""

    service_name: str = "followup"
    http_port: int = 8083
    runtime_fetch_wait_ms: int = Field(default=100, ge=0)
    """Off the way from a contact to its lawyer: bigger batches, less CPU per event."""
    nice: int = Field(default=10, ge=0, le=19)
    """Off the way from a contact to its lawyer: yields the CPU to intake and routing."""
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
    sla_policy_path: Path = DEFAULT_SLA
    """YAML service-level policy: targets per priority, refinements, warning share."""
    sla_reload_every_s: float = 30.0
    """How often the policy file is read again (a change re-plans the clocks); 0: never."""
    sla_breach_grace_s: float = 60.0
    """A breach is announced this long after its moment: a stop stamped before it lands first."""
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
    """Build followup: its rules on the stateful runtime, and the HTTP endpoints."""
    parts = plumbing(settings)
    clock = clock or OffsetClock(timedelta(seconds=settings.followup_clock_offset_s))
    care = care_of(settings, calendar)
    runtime = followup_runtime(settings, parts.db, care=care, clock=clock)
    feed = PolicyFeed(settings, runtime, calendar=care.calendar)

    async def announce_calendar() -> None:
        log_calendar_loaded(care.calendar, now=clock.now())

    return build_app(
        parts,
        on_startup=[announce_calendar, feed.start, runtime.start],
        on_shutdown=[feed.stop, runtime.stop],
        gauges=runtime.observe,
    )


def followup_runtime(
    settings: LexcareSettings, db: Any, *, care: Care, clock: Clock, **options: Any
) -> Runtime[Any]:
    """Followup's rules on a runtime (one consumer group over its co-partitioned inputs)."""
    runtime: Runtime[Any] = Runtime(
        settings,
        db,
        value_type=Memory,
        clock=clock,
        idle=is_idle,
        scanned=(sla.RUNNING_PREFIX,),
        **options,
    )
    register(runtime, care)
    return runtime


def care_of(settings: "FollowupSettings", calendar: CareCalendar | None = None) -> Care:
    """The calendar, cadence and producer followup's rules need."""
    return Care(
        calendar=calendar or load_calendar(settings.care_calendar_path),
        policy=CarePolicy(
            close_care_every_days=settings.close_care_every_days,
            care_every_days=settings.care_every_days,
            check_in_after_days=settings.check_in_after_days,
            max_retries=settings.max_retries,
        ),
        producer=settings.service_name,
        sla_policy=sla.load_policy(settings.sla_policy_path),
        sla_grace_s=settings.sla_breach_grace_s,
    )


def specification(settings: "FollowupSettings") -> KafkaBroker:
    """What followup consumes and publishes, for its AsyncAPI document."""
    db = service_db(make_mongo(settings), settings)
    runtime = followup_runtime(settings, db, care=care_of(settings), clock=SystemClock())
    publishes = (
        (
            topics.CARE_CONTACT_REQUESTED,
            CareContactRequested,
            "Outbound care work for channel adapters, dialers and agents' queues.",
        ),
        (topics.SLA_WARNING, SlaWarning, "A service-level clock used its warning share."),
        (topics.SLA_BREACHED, SlaBreached, "A service-level clock reached its target."),
        (topics.SLA_MET, SlaMet, "A service-level clock stopped before its target."),
    )
    return specification_broker(settings, runtime, publishes)
