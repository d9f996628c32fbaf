"""python -m services.metrics: run the metrics service."""

from services.metrics.app import MetricsSettings, create_app
from shared.service import serve

settings = MetricsSettings()
serve(create_app(settings), settings)
