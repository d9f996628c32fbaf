"""Handled event ids and finished timers are forgotten after the retention, by every service."""

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from shared.idempotency import ProcessedEvents
from shared.retention import Retention
from shared.timers import CANCELLED, DONE, FAILED, LEASED, PENDING, DurableTimers
from tests.conftest import eventually

pytestmark = pytest.mark.integration


def mark(age: timedelta) -> dict:
    """A ledger mark as `ProcessedEvents.mark` writes it, made `age` ago."""
    return {"_id": str(uuid.uuid4()), "type": "case.resolved", "at": datetime.now(UTC) - age}


async def test_marks_older_than_the_retention_are_forgotten_and_younger_ones_kept(db):
    ledger = ProcessedEvents(db)
    await ledger.prepare()
    old, older, young = (mark(timedelta(days=d)) for d in (31, 400, 29))
    await db.processed_events.insert_many([old, older, young])
    just_handled = uuid.uuid4()
    await ledger.mark(just_handled, event_type="case.resolved")
    retention = Retention(
        [ledger.forget_before],
        keep=timedelta(days=30),
        every=timedelta(hours=1),
    )

    assert await retention.prune() == 2
    assert not await ledger.seen(old["_id"])
    assert not await ledger.seen(older["_id"])
    assert await ledger.seen(young["_id"])
    assert await ledger.seen(just_handled)
    assert await retention.prune() == 0


async def test_finished_timers_and_their_claims_are_forgotten_and_live_ones_kept(db):
    timers = DurableTimers(db)
    await timers.prepare()
    now = datetime.now(UTC)
    ages = {DONE: 40, CANCELLED: 40, FAILED: 40, PENDING: 40, LEASED: 40}
    for state, days in ages.items():
        await timers.schedule(f"old-{state}", due_at=now - timedelta(days=days), kind="k")
        await timers.collection.update_one({"_id": f"old-{state}"}, {"$set": {"state": state}})
    await timers.schedule("young-done", due_at=now - timedelta(days=2), kind="k")
    await timers.collection.update_one({"_id": "young-done"}, {"$set": {"state": DONE}})
    await timers.claims.insert_many(
        [
            {"_id": "old-done#1", "owner": "x", "at": now - timedelta(days=40)},
            {"_id": "young-done#1", "owner": "x", "at": now - timedelta(days=2)},
        ]
    )

    assert await timers.forget_before(now - timedelta(days=30)) == 4  # 3 timers, 1 claim
    left = {doc["_id"] async for doc in timers.collection.find({})}
    assert left == {f"old-{PENDING}", f"old-{LEASED}", "young-done"}  # unfired ones stay
    assert [doc["_id"] async for doc in timers.claims.find({})] == ["young-done#1"]
    # A finished timer still remembered keeps scheduling idempotent: it is not re-armed.
    await timers.schedule("young-done", due_at=now, kind="k")
    assert (await timers.get("young-done"))["state"] == DONE


async def test_the_retention_keeps_pruning_in_the_background_until_stopped(db):
    ledger = ProcessedEvents(db)
    retention = Retention(
        [ledger.forget_before],
        keep=timedelta(days=30),
        every=timedelta(seconds=0.1),
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
