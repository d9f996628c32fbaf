"""python -m services.gateway: run the channel gateway."""

from services.gateway.app import GatewaySettings, create_app
from shared.service import serve

settings = GatewaySettings()
serve(create_app(settings), settings)
