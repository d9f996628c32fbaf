"""Routing over the real broker and database: a small roster file, a raw Kafka client."""

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from services.routing.app import RoutingSettings
from shared.events import RosterPerson
from tests.infra import Infra
from tests.unit.routing.factories import roster_yaml


@pytest.fixture
def routing_settings(
    settings_for: Callable[..., Any], tmp_path: Path
) -> Callable[..., RoutingSettings]:
    """Routing settings for this test with its own roster file."""

    def build(*people: RosterPerson, **overrides: Any) -> RoutingSettings:
        roster = tmp_path / "roster.yaml"
        roster.write_text(roster_yaml(*people), encoding="utf-8")
        return settings_for(RoutingSettings, roster_file=roster, **overrides)

    return build


@pytest.fixture
async def database(infra: Infra) -> AsyncIterator[Callable[[RoutingSettings], AsyncDatabase]]:
    """Open routing's database of given settings, as an operator would inspect it."""
    client: AsyncMongoClient = AsyncMongoClient(infra.mongo_url, tz_aware=True)

    def open_db(settings: RoutingSettings) -> AsyncDatabase:
        return client[settings.mongo_db]

    yield open_db
    await client.close()
