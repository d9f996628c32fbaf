"""python -m services.followup: run the followup service."""

from services.followup.app import FollowupSettings, create_app
from shared.service import serve

settings = FollowupSettings()
serve(create_app(settings), settings)
