"""Metrics' settings and wiring: the one place that builds its clients."""

from pathlib import Path
from zoneinfo import ZoneInfo

from faststream.asgi import AsgiFastStream
from pydantic import Field

from services.metrics.api import kpi_routes
from services.metrics.engine import MetricsEngine
from services.metrics.handlers import build_router
from services.metrics.live import Checkpointer, KpiPublisher
from services.metrics.store import MetricsStore
from shared.calendar import CareCalendar, load_calendar, log_calendar_loaded
from shared.clock import Clock, SystemClock
from shared.service import build_app, plumbing
from shared.settings import LexcareSettings

DEFAULT_CALENDAR = Path(__file__).resolve().parents[2] / "deploy" / "config" / "care_windows.yaml"


class MetricsSettings(LexcareSettings):
    """Metrics's settings (env prefix LEXCARE_)."""

    service_name: str = "metrics"
    http_port: int = 8085
    publish_interval_s: float = 1.0
    """metrics.kpi gets at most one message per key per this many seconds."""
    kpi_store_interval_s: float = 5.0
    """How often changed KPI values are written to the `kpis` collection."""
    max_cases_in_memory: int = Field(default=20_000, gt=0)
    """Case sheets kept in memory (least recently active set aside, reloaded on demand)."""
    care_calendar_path: Path = DEFAULT_CALENDAR
    """YAML care calendar: FRT in business time counts only time inside its windows."""


def build_engine(
    settings: MetricsSettings,
    calendar: CareCalendar | None = None,
    *,
    clock: Clock | None = None,
) -> MetricsEngine:
    """An empty engine with the firm's timezone and care calendar (its file when not given),
    reading the system clock unless given another."""
    if calendar is None:
        calendar = load_calendar(settings.care_calendar_path)
    return MetricsEngine(
        ZoneInfo(settings.timezone),
        business_seconds=calendar.business_seconds,
        clock=clock or SystemClock(),
        max_cases=settings.max_cases_in_memory,
    )


def create_app(settings: MetricsSettings, clock: Clock | None = None) -> AsgiFastStream:
    """Build metrics: broker, database, handlers and HTTP endpoints."""
    parts = plumbing(settings)
    store = MetricsStore(parts.db)
    calendar = load_calendar(settings.care_calendar_path)
    clock = clock or SystemClock()
    engine = build_engine(settings, calendar, clock=clock)
    checkpointer = Checkpointer(engine, store)
    router, publish = build_router(settings, engine, checkpointer)
    parts.broker.include_router(router)
    publisher = KpiPublisher(
        checkpointer,
        publish,
        settings.publish_interval_s,
        store_interval_s=settings.kpi_store_interval_s,
    )

    async def start() -> None:
        log_calendar_loaded(calendar, now=clock.now())
        await store.prepare()
        await checkpointer.restore()
        await checkpointer.start()
        await publisher.start()

    async def stop() -> None:
        await checkpointer.stop()
        await publisher.stop()

    return build_app(parts, on_startup=[start], on_shutdown=[stop], routes=kpi_routes(engine))
