"""Followup's settings and wiring: the one place that builds its clients."""

from faststream.asgi import AsgiFastStream

from services.followup.handlers import build_router
from services.followup.store import FollowupStore
from shared.service import build_app, plumbing
from shared.settings import LexcareSettings


class FollowupSettings(LexcareSettings):
    """Followup's settings (env prefix LEXCARE_)."""

    service_name: str = "followup"
    http_port: int = 8083


def create_app(settings: FollowupSettings) -> AsgiFastStream:
    """Build followup: broker, database, handlers and HTTP endpoints."""
    parts = plumbing(settings)
    store = FollowupStore(parts.db)
    parts.broker.include_router(build_router(settings, store))
    return build_app(parts, on_startup=[store.prepare])
