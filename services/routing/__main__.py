"""python -m services.routing: run the routing service."""

from services.routing.app import RoutingSettings, create_app
from shared.service import serve

settings = RoutingSettings()
serve(create_app(settings), settings)
