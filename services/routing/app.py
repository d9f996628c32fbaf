"""Routing's settings and wiring: the one place that builds its clients."""

from faststream.asgi import AsgiFastStream

from services.routing.handlers import build_router
from services.routing.store import RoutingStore
from shared.service import build_app, plumbing
from shared.settings import LexcareSettings


class RoutingSettings(LexcareSettings):
    """Routing's settings (env prefix LEXCARE_)."""

    service_name: str = "routing"
    http_port: int = 8082


def create_app(settings: RoutingSettings) -> AsgiFastStream:
    """Build routing: broker, database, handlers and HTTP endpoints."""
    parts = plumbing(settings)
    store = RoutingStore(parts.db)
    parts.broker.include_router(build_router(settings, store))
    return build_app(parts, on_startup=[store.prepare])
