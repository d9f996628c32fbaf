"""The desk and metrics in-process over the real broker and database, served on real ports."""

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta

import httpx
import pytest

from services.desk.app import DeskSettings
from services.desk.app import create_app as create_desk
from services.metrics.app import MetricsSettings
from services.metrics.app import create_app as create_metrics
from shared.clock import FakeClock
from shared.events import Event
from tests.integration.metrics.conftest import serve_http  # noqa: F401 (fixture)
from tests.kafka_tools import RawKafka
from tests.unit.desk.factories import T0

PASSWORDS = {
    "agent-01": "doi-mat-khau-agent",
    "law-land-01": "doi-mat-khau-lawyer",
    "mgr-01": "doi-mat-khau-manager",
}
"""The dev staff file's accounts (deploy/config/staff.yaml)."""


@dataclass
class DeskStack:
    """Desk and metrics on one fake clock; the desk's pages on a local port."""

    kafka: RawKafka
    clock: FakeClock
    desk_url: str
    metrics_url: str
    settings: DeskSettings

    async def send(self, *events: Event) -> None:
        """Publish events as their producers do: their topic, keyed by case (or person)."""
        for event in events:
            key = event.partition_key().decode()
            await self.kafka.send(event.event_type, event.to_bytes(), key=key)

    def client(self) -> httpx.AsyncClient:
        """A browser-like HTTP client of the desk (keeps its cookie)."""
        return httpx.AsyncClient(base_url=self.desk_url, timeout=20)


async def sign_in(client: httpx.AsyncClient, login: str) -> None:
    """Sign `login` in with the dev password."""
    form = {"csrf": await csrf(client, "/login"), "login": login, "password": PASSWORDS[login]}
    reply = await client.post("/login", data=form)
    assert reply.status_code == 303, reply.text


async def csrf(client: httpx.AsyncClient, path: str) -> str:
    """The CSRF token of the form on `path`."""
    page = await client.get(path)
    return re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)


@pytest.fixture
async def stack(
    request,
    infra,
    settings_for,
    run_app,
    serve_http,  # noqa: F811
) -> AsyncIterator[DeskStack]:
    """Metrics and the desk, the desk reading metrics' API (desk settings: indirect param)."""
    clock = FakeClock(T0 + timedelta(minutes=30))
    metrics_settings = settings_for(MetricsSettings, publish_interval_s=0.2)
    metrics = create_metrics(metrics_settings, clock=clock)
    await run_app(metrics)
    metrics_http = await serve_http(metrics)
    overrides = getattr(request, "param", {})
    settings = settings_for(DeskSettings, metrics_url=metrics_http.base_url, **overrides)
    desk = create_desk(settings, clock=clock)
    await run_app(desk)
    desk_http = await serve_http(desk)
    async with RawKafka(infra.kafka, settings.topic_prefix) as kafka:
        yield DeskStack(kafka, clock, desk_http.base_url, metrics_http.base_url, settings)
