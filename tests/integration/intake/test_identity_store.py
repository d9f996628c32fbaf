"""Identity claims on the real database: one identifier, one customer, whatever the race."""

import asyncio

import pytest
from pymongo import AsyncMongoClient

from services.intake.app import IntakeSettings
from services.intake.store import IntakeStore

pytestmark = pytest.mark.integration


async def test_concurrent_claims_of_one_identifier_have_exactly_one_winner(settings_for):
    settings = settings_for(IntakeSettings)
    client = AsyncMongoClient(settings.mongo_url, tz_aware=True)
    try:
        store = IntakeStore(client[settings.mongo_db])
        await store.prepare()
        claimants = [f"cus-{n:02d}" for n in range(20)]
        owners = await asyncio.gather(
            *(store.claim_identifier("phone:+84912345678", c) for c in claimants)
        )
        assert len(set(owners)) == 1
        assert owners[0] in claimants
        stored = await store.identifiers.find({"_id": "phone:+84912345678"}).to_list(None)
        assert [d["customer_id"] for d in stored] == [owners[0]]
    finally:
        await client.drop_database(settings.mongo_db)
        await client.close()
