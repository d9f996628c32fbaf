"""Metrics's settings and wiring: the one place that builds its clients."""

from faststream.asgi import AsgiFastStream

from services.metrics.handlers import build_router
from services.metrics.store import MetricsStore
from shared.service import build_app, plumbing
from shared.settings import LexcareSettings


class MetricsSettings(LexcareSettings):
    """Metrics's settings (env prefix LEXCARE_)."""

    service_name: str = "metrics"
    http_port: int = 8085


def create_app(settings: MetricsSettings) -> AsgiFastStream:
    """Build metrics: broker, database, handlers and HTTP endpoints."""
    parts = plumbing(settings)
    store = MetricsStore(parts.db)
    parts.broker.include_router(build_router(settings, store))
    return build_app(parts, on_startup=[store.prepare])
