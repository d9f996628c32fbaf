"""A scratch database for the shared plumbing's tests, dropped after each test."""

import pytest
from pymongo import AsyncMongoClient


@pytest.fixture
async def db(infra, namespace):
    client = AsyncMongoClient(infra.mongo_url, tz_aware=True)
    yield client[f"{namespace}_scratch"]
    await client.drop_database(f"{namespace}_scratch")
    await client.close()
