"""MongoDB plumbing: one async client per process, one database per service."""

from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from shared.settings import LexcareSettings


def make_mongo(settings: LexcareSettings) -> AsyncMongoClient:
    """The service's MongoDB client (tz-aware datetimes, fast failure when unreachable)."""
    return AsyncMongoClient(
        settings.mongo_url,
        tz_aware=True,
        serverSelectionTimeoutMS=5_000,
        maxPoolSize=settings.mongo_pool_size,
        connectTimeoutMS=5_000,
        appname=f"lexcare-{settings.service_name}",
    )


def service_db(client: AsyncMongoClient, settings: LexcareSettings) -> AsyncDatabase:
    """The database owned by this service; no service reads another's."""
    return client[settings.mongo_db]
