"""Routing over the real broker and database: a small roster file, a raw Kafka client."""

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from services.routing.app import RoutingSettings
from shared.events import RosterPerson
from tests.infra import Infra
from tests.kafka_tools import RawKafka
from tests.runtime_state import Stored, stored_state
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


async def everything_on(bootstrap: str, topic: str, *, quiet: float = 1.5) -> list[dict]:
    """Every event on `topic` (full name), read until nothing new comes for `quiet` s."""
    reader = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await reader.start()
    events: list[dict] = []
    try:
        while True:
            batch = await reader.getmany(timeout_ms=int(quiet * 1000))
            if not batch and reader.assignment():
                return events
            for records in batch.values():
                events.extend(orjson.loads(r.value) for r in records)
    finally:
        await reader.stop()


async def latest_assignment(kafka: RawKafka, *, count: int) -> dict:
    """The `count`-th case.assigned, once it is there."""
    return (await kafka.events("case.assigned", count=count))[count - 1]


def outcome(assigned: dict) -> tuple[str, str | None, str]:
    """(case, assignee, reason) of a case.assigned."""
    return assigned["case_id"], assigned["assignee_id"], assigned["reason"]


async def routing_state(db: AsyncDatabase, settings: RoutingSettings) -> Stored:
    """Routing's stored state (every partition), as its next owner restores it."""
    return await stored_state(db, settings.partitions)


def held(stored: Stored) -> dict[str, str]:
    """Case → the person holding a slot for it, per the stored roster (one slot per case)."""
    roster = stored.values.get("roster", {"held": {}})
    holders = [(case, person) for person, s in roster["held"].items() for case in s.values()]
    assert len({case for case, _ in holders}) == len(holders), f"a case holds two slots: {holders}"
    return dict(holders)
