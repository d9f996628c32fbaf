"""python -m services.intake: run the intake service."""

from services.intake.app import IntakeSettings, create_app
from shared.service import serve

settings = IntakeSettings()
serve(create_app(settings), settings)
