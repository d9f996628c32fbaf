"""python -m services.survey: run the survey service."""

from services.survey.app import SurveySettings, create_app
from shared.service import serve

settings = SurveySettings()
serve(create_app(settings), settings)
