"""Metrics' settings and wiring: the one place that builds its clients."""

from pathlib import Path
from zoneinfo import ZoneInfo

from faststream.asgi import AsgiFastStream
from faststream.kafka import KafkaBroker
from pydantic import Field

from services.metrics.api import kpi_routes
from services.metrics.board import KpiBoard
from services.metrics.engine import MetricsEngine
from services.metrics.handlers import metrics_runtime
from shared import topics
from shared.calendar import CareCalendar, load_calendar, log_calendar_loaded
from shared.clock import Clock, SystemClock
from shared.events import KpiUpdated
from shared.mongo import make_mongo, service_db
from shared.runtime import Runtime
from shared.runtime.spec import Publishes, specification_broker
from shared.service import build_app, plumbing
from shared.settings import LexcareSettings

DEFAULT_CALENDAR = Path(__file__).resolve().parents[2] / "deploy" / "config" / "care_windows.yaml"


class MetricsSettings(LexcareSettings):
    """Metrics's settings (env prefix LEXCARE_)."""

    service_name: str = "metrics"
    http_port: int = 8085
    runtime_fetch_wait_ms: int = Field(default=100, ge=0)
    """Off the way from a contact to its lawyer: bigger batches, less CPU per event."""
    nice: int = Field(default=10, ge=0, le=19)
    """Off the way from a contact to its lawyer: yields the CPU to intake and routing."""
    publish_interval_s: float = 1.0
    """metrics.kpi gets at most one message per key per this many seconds."""
    care_calendar_path: Path = DEFAULT_CALENDAR
    """YAML care calendar: FRT in business time counts only time inside its windows."""


def build_engine(
    settings: MetricsSettings,
    calendar: CareCalendar | None = None,
    *,
    clock: Clock | None = None,
) -> MetricsEngine:
    """An empty in-memory engine (the reference: replay, tests) with the firm's timezone and
    care calendar (its file when not given), reading the system clock unless given another."""
    if calendar is None:
        calendar = load_calendar(settings.care_calendar_path)
    return MetricsEngine(
        ZoneInfo(settings.timezone),
        business_seconds=calendar.business_seconds,
        clock=clock or SystemClock(),
    )


def build_runtime(
    settings: MetricsSettings, db: object, calendar: CareCalendar, today: Clock, **options: object
) -> Runtime[object]:
    """Metrics' rules on the stateful runtime."""
    return metrics_runtime(
        settings,
        db,
        tz=ZoneInfo(settings.timezone),
        business_seconds=calendar.business_seconds,
        today=today,
        publish_interval_s=settings.publish_interval_s,
        **options,
    )


def create_app(settings: MetricsSettings, clock: Clock | None = None) -> AsgiFastStream:
    """Build metrics: its rules on the runtime, the KPI board and the HTTP endpoints.

    `clock` tells retention which day it is (the runtime's timers run on the system clock).
    """
    parts = plumbing(settings)
    calendar = load_calendar(settings.care_calendar_path)
    clock = clock or SystemClock()
    runtime = build_runtime(settings, parts.db, calendar, clock)
    board = KpiBoard(settings)

    async def start() -> None:
        log_calendar_loaded(calendar, now=clock.now())
        await runtime.start()
        await board.start()

    async def stop() -> None:
        await board.stop()
        await runtime.stop()

    return build_app(
        parts,
        on_startup=[start],
        on_shutdown=[stop],
        routes=kpi_routes(board),
        gauges=runtime.observe,
    )


PUBLISHES: Publishes = (
    (
        topics.METRICS_KPI,
        KpiUpdated,
        "KPI values per window, period and dimension (compacted, no personal data).",
    ),
)


def specification(settings: MetricsSettings) -> KafkaBroker:
    """What metrics consumes and publishes, for its AsyncAPI document."""
    db = service_db(make_mongo(settings), settings)
    calendar = load_calendar(settings.care_calendar_path)
    runtime = build_runtime(settings, db, calendar, SystemClock())
    return specification_broker(settings, runtime, PUBLISHES)
