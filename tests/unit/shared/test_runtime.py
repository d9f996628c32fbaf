"""The stateful runtime's pure parts: batch planning, dedupe, timer heap, views, restore."""

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from aiokafka.structs import ConsumerRecord, TopicPartition

from shared.runtime.plan import plan_batch
from shared.runtime.state import KeyNotLoaded, PartitionState, View
from shared.runtime.storage import Changes, batch_docs, restored
from shared.runtime.timers import Timer, TimerHeap
from tests.toy_service import ADDED, Added

T0 = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
MODELS = {ADDED: Added}


def record(partition: int, offset: int, body: bytes) -> ConsumerRecord:
    return ConsumerRecord(ADDED, partition, offset, 0, 0, b"k", body, None, 0, len(body), [])


def added(event_id: str | None = None) -> bytes:
    return orjson.dumps(
        {
            "event_id": event_id or str(uuid.uuid4()),
            "event_type": ADDED,
            "occurred_at": T0.isoformat(),
            "producer": "test",
            "case_id": "case-1",
        }
    )


def test_a_poll_is_planned_per_partition_in_log_order_with_every_offset_to_commit():
    states = {0: PartitionState(0), 1: PartitionState(1)}
    polled = [record(0, 5, added()), record(1, 3, b"{bad"), record(0, 6, added())]
    plan = plan_batch(polled, models=MODELS, states=states)
    assert [w.record.offset for w in plan.work[0]] == [5, 6]
    assert isinstance(plan.work[1][0].event, ValueError)  # dead-lettered by the runtime
    assert plan.offsets == {TopicPartition(ADDED, 0): 7, TopicPartition(ADDED, 1): 4}


def test_records_already_in_the_state_are_dropped_but_still_committed():
    state = PartitionState(0, checkpoint={ADDED: 10})
    state.remember(["handled-before"])
    twice = str(uuid.uuid4())
    polled = [
        record(0, 9, added()),  # below the persisted checkpoint
        record(0, 10, added(str(uuid.UUID(int=1)))),
        record(0, 11, added(twice)),
        record(0, 12, added(twice)),  # the same event again in the poll
    ]
    state.remember([str(uuid.UUID(int=1))])
    plan = plan_batch(polled, models=MODELS, states={0: state})
    assert [w.record.offset for w in plan.work[0]] == [11]
    assert plan.skipped == 3
    assert plan.offsets == {TopicPartition(ADDED, 0): 13}


def test_records_of_a_partition_no_longer_owned_are_neither_run_nor_committed():
    plan = plan_batch([record(2, 0, added())], models=MODELS, states={0: PartitionState(0)})
    assert plan.work == {} and plan.offsets == {}


def test_due_timers_run_after_their_partition_records():
    timer = Timer("t1", T0, "remind")
    plan = plan_batch(
        [record(0, 0, added())], models=MODELS, states={0: PartitionState(0)}, due=[(0, timer)]
    )
    assert [w.timer for w in plan.work[0]] == [None, timer]


def test_a_failed_rule_leaves_nothing_and_a_passed_one_folds_into_the_batch():
    state: PartitionState[int] = PartitionState(0)
    state.put("a", 1, version="0/v/a/0")
    batch = View(state)
    failed = batch.child()
    failed.set("a", 99)
    failed.put_timer(Timer("t", T0, "remind"))
    assert failed.get("a") == 99 and batch.get("a") == 1  # dropped with its view
    passed = batch.child()
    passed.set("a", 2)
    passed.delete("b")
    passed.fold()
    assert batch.get("a") == 2 and batch.timer("t") is None
    assert state.lookup("a") == 1  # the partition changes only once persisted


def test_an_evicted_key_asks_to_be_reloaded():
    state: PartitionState[int] = PartitionState(0)
    for key, idle in (("old", 1), ("busy", 0), ("new", 1)):
        state.put(key, idle, version=f"0/v/{key}/0")
    assert state.evict(keep=2, idle=lambda value: value == 1) == ["old"]
    assert set(state.values) == {"busy", "new"}  # busy is not idle: it stays
    with pytest.raises(KeyNotLoaded):
        View(state).get("old")


def test_the_timer_heap_gives_due_timers_until_their_partition_drops_them():
    timers = {"early": Timer("early", T0, "k"), "late": Timer("late", T0 + timedelta(hours=1), "k")}
    heap = TimerHeap()
    for timer in timers.values():
        heap.push(0, timer)
    heap.push(0, timers["early"])  # scheduled twice: still one firing

    def current(partition: int, timer_id: str) -> Timer | None:
        return timers.get(timer_id)

    assert heap.due(T0, current=current) == [(0, timers["early"])]
    assert heap.due(T0, current=current) == [(0, timers["early"])]  # not fired yet
    del timers["early"]  # fired and persisted
    assert heap.due(T0 + timedelta(hours=2), current=current) == [(0, timers["late"])]
    timers["late"] = Timer("late", T0 + timedelta(hours=3), "k")  # moved later
    assert heap.due(T0 + timedelta(hours=2), current=current) == []


def _docs(changes: Changes) -> list[dict[str, Any]]:
    versions, marker = batch_docs(changes, owner="me")
    return [*versions, marker]


def test_restore_keeps_the_latest_version_of_complete_batches_only():
    def changes(seq: int, values: dict[str, Any], handled: list[str]) -> Changes:
        return Changes(0, seq, values, {}, handled, [], {ADDED: seq + 1})

    docs = [
        *_docs(changes(0, {"a": 1, "b": 1}, ["e0"])),
        *_docs(changes(1, {"a": 2, "b": None}, ["e1"])),
        *_docs(changes(2, {"a": 3}, ["e2"]))[:-1],  # cut short: no marker
    ]
    state = restored(docs)
    assert {k: v for k, (v, _) in state.values.items()} == {"a": 2}
    assert state.checkpoint == {ADDED: 2}
    assert state.handled == ["e0", "e1"]
    assert state.next_seq == 3
    assert set(state.garbage) == {"0/v/a/0", "0/v/b/0", "0/v/a/2"}
    assert state.tombstones == ["0/v/b/1"]
