"""Survey's settings and wiring: the one place that builds its clients."""

from faststream.asgi import AsgiFastStream

from services.survey.handlers import build_router
from services.survey.store import SurveyStore
from shared.service import build_app, plumbing
from shared.settings import LexcareSettings


class SurveySettings(LexcareSettings):
    """Survey's settings (env prefix LEXCARE_)."""

    service_name: str = "survey"
    http_port: int = 8084


def create_app(settings: SurveySettings) -> AsgiFastStream:
    """Build survey: broker, database, handlers and HTTP endpoints."""
    parts = plumbing(settings)
    store = SurveyStore(parts.db)
    parts.broker.include_router(build_router(settings, store))
    return build_app(parts, on_startup=[store.prepare])
