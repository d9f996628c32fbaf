"""The processed-events ledger over the real database, one event at a time and per batch."""

import uuid

import pytest
from pymongo import AsyncMongoClient, monitoring

from shared.idempotency import ProcessedEvents

pytestmark = pytest.mark.integration


class CommandCounter(monitoring.CommandListener):
    """Counts the database commands sent to the ledger's collection."""

    def __init__(self) -> None:
        self.commands: list[str] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command.get(event.command_name) == "processed_events":
            self.commands.append(event.command_name)

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None: ...

    def failed(self, event: monitoring.CommandFailedEvent) -> None: ...


@pytest.fixture
async def ledger(infra, namespace):
    counter = CommandCounter()
    client = AsyncMongoClient(infra.mongo_url, tz_aware=True, event_listeners=[counter])
    yield ProcessedEvents(client[f"{namespace}_ledger"]), counter
    await client.drop_database(f"{namespace}_ledger")
    await client.close()


async def test_a_batch_writes_its_marks_at_once_and_remembers_what_was_handled(ledger):
    processed, counter = ledger
    before = uuid.uuid4()
    await processed.mark(before, event_type="case.resolved")
    batch = [before, *(uuid.uuid4() for _ in range(50))]
    counter.commands.clear()

    async with processed.batch():
        assert await processed.seen(before)
        for event_id in batch[1:]:
            assert not await processed.seen(event_id)
            await processed.mark(event_id, event_type="case.resolved")
            assert await processed.seen(event_id)  # from the batch, not yet written
        assert await processed.count() == 1

    assert counter.commands == ["find"] * 51 + ["aggregate", "insert"]
    assert await processed.count() == 51
    assert all([await processed.seen(e) for e in batch])


async def test_a_replayed_batch_writes_its_marks_again_without_error(ledger):
    processed, _ = ledger
    batch = [uuid.uuid4() for _ in range(5)]
    for _ in range(2):  # the second run is a crash-replay: the ledger already holds them
        async with processed.batch():
            for event_id in batch:
                await processed.mark(event_id, event_type="case.resolved")
    assert await processed.count() == 5


async def test_marks_made_before_a_failure_in_the_batch_are_kept(ledger):
    processed, _ = ledger
    done, failed = uuid.uuid4(), uuid.uuid4()
    with pytest.raises(RuntimeError):
        async with processed.batch():
            await processed.mark(done, event_type="case.resolved")
            raise RuntimeError("the second handler failed")
    assert await processed.seen(done)
    assert not await processed.seen(failed)
