"""Intake's settings and wiring: the one place that builds its clients."""

from faststream.asgi import AsgiFastStream

from services.intake.handlers import build_router
from services.intake.store import IntakeStore
from shared.service import build_app, plumbing
from shared.settings import LexcareSettings


class IntakeSettings(LexcareSettings):
    """Intake's settings (env prefix LEXCARE_)."""

    service_name: str = "intake"
    http_port: int = 8081


def create_app(settings: IntakeSettings) -> AsgiFastStream:
    """Build intake: broker, database, handlers and HTTP endpoints."""
    parts = plumbing(settings)
    store = IntakeStore(parts.db)
    parts.broker.include_router(build_router(settings, store))
    return build_app(parts, on_startup=[store.prepare])
