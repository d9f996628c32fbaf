"""Handled event ids are forgotten after the retention, by every service that keeps them."""

import uuid
from datetime import UTC, datetime, timedelta

import pytest
import structlog
from pymongo import AsyncMongoClient

from services.followup.app import FollowupSettings
from services.followup.app import create_app as followup_app
from services.intake.app import IntakeSettings
from services.intake.app import create_app as intake_app
from services.routing.app import RoutingSettings
from services.routing.app import create_app as routing_app
from services.survey.app import SurveySettings
from services.survey.app import create_app as survey_app
from shared.idempotency import LedgerRetention, ProcessedEvents
from tests.conftest import eventually

pytestmark = pytest.mark.integration


def mark(age: timedelta) -> dict:
    """A ledger mark as `ProcessedEvents.mark` writes it, made `age` ago."""
    return {"_id": str(uuid.uuid4()), "type": "case.resolved", "at": datetime.now(UTC) - age}


@pytest.fixture
async def db(infra, namespace):
    client = AsyncMongoClient(infra.mongo_url, tz_aware=True)
    yield client[f"{namespace}_ledger"]
    await client.drop_database(f"{namespace}_ledger")
    await client.close()


async def test_marks_older_than_the_retention_are_forgotten_and_younger_ones_kept(db):
    ledger = ProcessedEvents(db)
    await ledger.prepare()
    old, older, young = (mark(timedelta(days=d)) for d in (31, 400, 29))
    await db.processed_events.insert_many([old, older, young])
    just_handled = uuid.uuid4()
    await ledger.mark(just_handled, event_type="case.resolved")
    retention = LedgerRetention(
        ledger, keep=timedelta(days=30), every=timedelta(hours=1), logger=structlog.get_logger()
    )

    assert await retention.prune() == 2
    assert not await ledger.seen(old["_id"])
    assert not await ledger.seen(older["_id"])
    assert await ledger.seen(young["_id"])
    assert await ledger.seen(just_handled)
    assert await retention.prune() == 0


async def test_the_retention_keeps_pruning_in_the_background_until_stopped(db):
    ledger = ProcessedEvents(db)
    retention = LedgerRetention(
        ledger, keep=timedelta(days=30), every=timedelta(seconds=0.1), logger=structlog.get_logger()
    )
    await retention.start()
    try:
        late = mark(timedelta(days=90))  # written after the first pass: a later pass takes it
        await db.processed_events.insert_one(late)

        async def forgotten() -> bool:
            return not await ledger.seen(late["_id"])

        await eventually(forgotten, timeout=10)
    finally:
        await retention.stop()
    kept = mark(timedelta(days=90))
    await db.processed_events.insert_one(kept)
    assert await ledger.seen(kept["_id"])  # stopped: nothing prunes any more


@pytest.mark.parametrize(
    ("settings_class", "create_app"),
    [
        (IntakeSettings, intake_app),
        (RoutingSettings, routing_app),
        (FollowupSettings, followup_app),
        (SurveySettings, survey_app),
    ],
    ids=["intake", "routing", "followup", "survey"],
)
async def test_each_service_forgets_the_event_ids_it_handled_longer_ago_than_the_retention(
    settings_class, create_app, settings_for, run_app, namespace
):
    settings = settings_for(
        settings_class,
        service_name=f"{settings_class.__name__}-{namespace}",
        ledger_retention_days=7,
    )
    client = AsyncMongoClient(settings.mongo_url, tz_aware=True)
    ledger = ProcessedEvents(client[settings.mongo_db])
    old, young = mark(timedelta(days=8)), mark(timedelta(days=6))
    await ledger.collection.insert_many([old, young])
    try:
        await run_app(create_app(settings))

        async def forgotten() -> bool:
            return not await ledger.seen(old["_id"])

        await eventually(forgotten, timeout=30)
        assert await ledger.seen(young["_id"])
    finally:
        await client.close()
