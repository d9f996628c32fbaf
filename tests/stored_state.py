"""What a service's runtime stored, read as the next owner of each partition restores it."""

from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from shared.runtime.storage import ChangeStore


async def stored_values(db: AsyncDatabase, partitions: int) -> dict[str, dict[str, Any]]:
    """Every value a runtime's storage holds (encoded), by key, over all its partitions."""
    store = ChangeStore(db, "state")
    values: dict[str, dict[str, Any]] = {}
    for partition in range(partitions):
        restored = await store.restore(partition)
        values.update({key: value for key, (value, _) in restored.values.items()})
    return values
