"""Gateway's settings and wiring: the one place that builds its clients."""

import contextlib
from collections.abc import Sequence
from zoneinfo import ZoneInfo

import httpx
import structlog
from faststream.asgi import AsgiFastStream
from pydantic import Field, SecretStr
from starlette.applications import Starlette
from starlette.routing import BaseRoute

from services.gateway.handlers import Deliverer, RetryPolicy, subscribe_outbound
from services.gateway.mail_listener import CareMailbox, MailListener
from services.gateway.senders import Platforms, Senders
from services.gateway.survey_page import SurveyPage, survey_routes
from services.gateway.webhooks import call, facebook, website, zalo
from services.gateway.webhooks.common import Inbox
from shared import topics
from shared.batching import BatchSubscriber
from shared.clock import Clock, SystemClock
from shared.events import ContactReceived, DeliveryAttempted, SurveyAnswered
from shared.kafka import make_router
from shared.service import build_app, plumbing
from shared.settings import LexcareSettings
from shared.survey_links import SurveyLinkSettings

log = structlog.get_logger("lexcare.gateway")


class GatewaySettings(LexcareSettings, SurveyLinkSettings):
    """Gateway's settings (env prefix LEXCARE_); secrets never have a default."""

    service_name: str = "gateway"
    http_port: int = 8086
    gateway_max_body_bytes: int = Field(default=256_000, gt=0)
    """Webhook and form bodies larger than this are refused with 413."""

    facebook_verify_token: SecretStr = SecretStr("")
    """Answer to Facebook's subscription check (hub.verify_token); empty: refuse it."""
    facebook_app_secret: SecretStr = SecretStr("")
    """Checks X-Hub-Signature-256 of each Messenger webhook; empty: refuse them all."""
    facebook_page_token: SecretStr = SecretStr("")
    """Page access token for the Messenger Send API."""
    facebook_api_url: str = "https://graph.facebook.com/v21.0"

    zalo_app_id: str = ""
    zalo_oa_secret: SecretStr = SecretStr("")
    """OA secret key: checks X-ZEvent-Signature; empty: refuse every Zalo webhook."""
    zalo_access_token: SecretStr = SecretStr("")
    """OA access token for the Zalo OA message API."""
    zalo_api_url: str = "https://openapi.zalo.me"

    website_site_keys: list[SecretStr] = Field(default_factory=list)
    """Keys the firm's sites send with a form (JSON list); none: refuse every form."""
    website_origins: list[str] = Field(default_factory=list)
    """CORS allow-list: origins whose pages may post the form (JSON list)."""
    website_rate_per_minute: float = Field(default=10.0, gt=0)
    """Forms accepted per client address and minute."""

    call_token: SecretStr = SecretStr("")
    """Bearer token the switchboard and reception desk send; empty: refuse them."""

    gateway_smtp_port: int = Field(default=8025, ge=0, le=65535)
    """Inbound SMTP listener (on LEXCARE_HTTP_HOST) for the relay's care mail; 0: off."""
    gateway_smtp_max_bytes: int = Field(default=26_214_400, gt=0)
    """Larger mails are refused with 552 (announced in EHLO's SIZE)."""
    care_mailboxes: list[str] = Field(default_factory=list)
    """Recipient addresses the listener accepts mail for (JSON list); others: 550."""

    smtp_host: str = "127.0.0.1"
    smtp_port: int = 25
    smtp_username: str = ""
    smtp_password: SecretStr = SecretStr("")
    smtp_starttls: bool = False
    mail_from: str = "cskh@lexcare.example.vn"

    delivery_attempts: int = Field(default=4, ge=1)
    """Tries of one outbound delivery before it is dead-lettered."""
    delivery_backoff_s: float = Field(default=1.0, ge=0)
    """Pause before the second try; doubles per try, capped, with full jitter."""
    delivery_backoff_max_s: float = Field(default=30.0, ge=0)
    delivery_timeout_s: float = Field(default=10.0, gt=0)
    """Time one platform call (HTTP or SMTP) may take."""

    def platforms(self) -> Platforms:
        """Where and as whom outbound messages are sent."""
        return Platforms(
            facebook_api_url=self.facebook_api_url.rstrip("/"),
            facebook_page_token=self.facebook_page_token.get_secret_value(),
            zalo_api_url=self.zalo_api_url.rstrip("/"),
            zalo_access_token=self.zalo_access_token.get_secret_value(),
            smtp_host=self.smtp_host,
            smtp_port=self.smtp_port,
            smtp_username=self.smtp_username or None,
            smtp_password=self.smtp_password.get_secret_value() or None,
            smtp_starttls=self.smtp_starttls,
            mail_from=self.mail_from,
            timeout_s=self.delivery_timeout_s,
        )


def inbound_routes(settings: GatewaySettings, inbox: Inbox) -> list[BaseRoute]:
    """Every channel's webhook routes (another router adds its list beside these)."""
    return [
        *facebook.routes(
            inbox,
            verify_token=settings.facebook_verify_token.get_secret_value(),
            app_secret=settings.facebook_app_secret.get_secret_value(),
        ),
        *zalo.routes(
            inbox,
            app_id=settings.zalo_app_id,
            oa_secret=settings.zalo_oa_secret.get_secret_value(),
        ),
        *website.routes(
            inbox,
            site_keys=[key.get_secret_value() for key in settings.website_site_keys],
            origins=settings.website_origins,
            per_minute=settings.website_rate_per_minute,
        ),
        *call.routes(inbox, token=settings.call_token.get_secret_value()),
    ]


def create_app(settings: GatewaySettings, clock: Clock | None = None) -> AsgiFastStream:
    """Build the gateway: webhooks in, deliveries out, health and metrics."""
    clock = clock or SystemClock()
    parts = plumbing(settings)
    router = make_router(settings)
    contacts = router.publisher(
        topics.CONTACT_RECEIVED, schema=ContactReceived, description="A customer's message."
    )
    attempts = router.publisher(
        topics.DELIVERY_ATTEMPTED,
        schema=DeliveryAttempted,
        description="The outcome of each try to deliver a request.",
    )
    answers = router.publisher(
        topics.SURVEY_ANSWERED, schema=SurveyAnswered, description="An answer from the survey page."
    )

    async def publish_contacts(events: Sequence[ContactReceived]) -> None:
        for event in events:  # keyed by sender: aiokafka's default partitioner is murmur2
            await contacts.publish(event.to_bytes(), key=event.partition_key())

    async def report(event: DeliveryAttempted) -> None:
        await attempts.publish(event.to_bytes(), key=event.partition_key())

    async def publish_answer(event: SurveyAnswered) -> None:
        await answers.publish(event.to_bytes(), key=event.partition_key())  # the case id

    http = httpx.AsyncClient()
    deliverer = Deliverer(
        senders=Senders(settings.platforms(), http),
        report=report,
        retry=RetryPolicy(
            settings.delivery_attempts, settings.delivery_backoff_s, settings.delivery_backoff_max_s
        ),
        clock=clock,
        zone=ZoneInfo(settings.timezone),
    )
    # Deliveries leave nothing for the end of a batch: each reports its own tries.
    subscribe_outbound(BatchSubscriber(router, settings, contextlib.nullcontext), deliverer)
    parts.broker.include_router(router)
    if settings.survey_link_secret_is_default():
        log.warning("survey_link_secret_is_the_public_dev_default")
    page = SurveyPage(
        links=settings.survey_links(),
        publish=publish_answer,
        clock=clock,
        zone=ZoneInfo(settings.timezone),
        max_body_bytes=settings.gateway_max_body_bytes,
    )
    inbox = Inbox(publish_contacts, settings.gateway_max_body_bytes, clock)
    web = Starlette(routes=[*inbound_routes(settings, inbox), *survey_routes(page)])
    app = build_app(parts, on_shutdown=[http.aclose], web=web)
    if settings.gateway_smtp_port:
        listener = MailListener(
            CareMailbox(inbox, settings.care_mailboxes),
            host=settings.http_host,
            port=settings.gateway_smtp_port,
            max_bytes=settings.gateway_smtp_max_bytes,
        )
        app.after_startup(listener.start)  # once the broker runs: mail is published at once
        app.on_shutdown(listener.stop)  # before the broker stops
    return app
