"""Durable timers over the real database: fire once, survive a crash, never twice at once."""

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from shared.clock import FakeClock
from shared.timers import DONE, DurableTimers, Timer, TimerLoop

pytestmark = pytest.mark.integration
T0 = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)


async def test_a_timer_fires_once_when_due_and_scheduling_twice_changes_nothing(db):
    timers = DurableTimers(db)
    await timers.prepare()
    clock = FakeClock(T0)
    fired: list[str] = []

    async def fire(timer: Timer) -> None:
        fired.append(timer.id)

    loop = TimerLoop(timers, clock, fire)
    await timers.schedule("t1", due_at=T0 + timedelta(hours=1), kind="care", case_id="c1")
    await timers.schedule("t1", due_at=T0 + timedelta(hours=9), kind="care", case_id="c1")
    assert await loop.run_once() == 0
    clock.advance(timedelta(hours=1))
    assert await loop.run_once() == 1
    assert await loop.run_once() == 0
    assert fired == ["t1"]
    assert (await timers.get("t1"))["state"] == DONE


async def test_a_timer_leased_by_a_crashed_instance_fires_again_after_the_lease(db):
    clock = FakeClock(T0)
    crashed = DurableTimers(db, owner="crashed", lease=timedelta(seconds=30))
    survivor = DurableTimers(db, owner="survivor", lease=timedelta(seconds=30))
    await survivor.prepare()
    await survivor.schedule("t2", due_at=T0, kind="care", case_id="c2")
    [claimed] = await crashed.claim_due(clock.now())  # then the process dies: never done
    assert claimed.id == "t2"
    assert await survivor.claim_due(clock.now()) == []
    clock.advance(timedelta(seconds=31))
    [again] = await survivor.claim_due(clock.now())
    assert again.id == "t2"
    assert again.claims == 2


async def test_two_instances_claiming_together_never_share_a_timer(db):
    clock = FakeClock(T0)
    first, second = DurableTimers(db, owner="a"), DurableTimers(db, owner="b")
    await first.prepare()
    for i in range(40):
        await first.schedule(f"t{i}", due_at=T0, kind="care", case_id=f"c{i}")
    a, b = await asyncio.gather(first.claim_due(clock.now()), second.claim_due(clock.now()))
    ids_a, ids_b = {t.id for t in a}, {t.id for t in b}
    assert not ids_a & ids_b
    assert ids_a | ids_b == {f"t{i}" for i in range(40)}


async def test_cancelled_timers_never_fire(db):
    timers = DurableTimers(db)
    clock = FakeClock(T0)
    await timers.schedule("t3", due_at=T0, kind="care", case_id="c3")
    await timers.schedule("t4", due_at=T0, kind="check_in", case_id="c3")
    assert await timers.cancel(case_id="c3", kinds=["care"]) == 1
    assert [t.id for t in await timers.claim_due(clock.now())] == ["t4"]
