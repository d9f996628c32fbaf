"""A running gateway over the real broker, reached through its ASGI app."""

import httpx
import pytest

from services.gateway.app import GatewaySettings, create_app
from tests.kafka_tools import RawKafka

APP_SECRET = "fb-app-secret-test"
VERIFY_TOKEN = "fb-verify-test"
ZALO_APP_ID = "4321"
ZALO_SECRET = "zalo-oa-secret-test"
SITE_KEY = "site-key-test"
ORIGIN = "https://luatsu.example.vn"
CALL_TOKEN = "call-token-test"


def gateway_settings(settings_for, **overrides) -> GatewaySettings:
    """Gateway settings with every channel's test secrets (no mail listener unless asked)."""
    overrides.setdefault("gateway_smtp_port", 0)
    return settings_for(
        GatewaySettings,
        facebook_app_secret=APP_SECRET,
        facebook_verify_token=VERIFY_TOKEN,
        zalo_app_id=ZALO_APP_ID,
        zalo_oa_secret=ZALO_SECRET,
        website_site_keys=[SITE_KEY],
        website_origins=[ORIGIN],
        call_token=CALL_TOKEN,
        **overrides,
    )


@pytest.fixture
async def gateway(infra, settings_for, run_app):
    """An HTTP client of a running gateway and a raw Kafka client in its namespace."""
    settings = gateway_settings(
        settings_for, website_rate_per_minute=3, gateway_max_body_bytes=20_000
    )
    app = create_app(settings)
    await run_app(app)
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 40000))
    async with (
        httpx.AsyncClient(transport=transport, base_url="http://gateway") as client,
        RawKafka(infra.kafka, settings.topic_prefix) as kafka,
    ):
        yield client, kafka
